"""Which days of a window a version has embedded: missing days, late notes, the version a
build picks (Spark for the accounting, plain values for the rest)."""

from __future__ import annotations

import pytest

from notellm2_udf.embedding.window_days import (
    DayAccount,
    account_days,
    check_complete,
    choose_version,
    late_notes,
    missing_days,
)
from notellm2_udf.errors import JobInputError

ACCOUNTS = {"2026-11-23": DayAccount("2026-11-23", 3, 0),
            "2026-11-24": DayAccount("2026-11-24", 2, 2),
            "2026-11-25": DayAccount("2026-11-25", 4, 1)}


def test_a_day_with_nothing_accounted_is_missing_and_a_partial_one_holds_late_notes():
    assert missing_days(ACCOUNTS) == ["2026-11-24"]
    assert late_notes(ACCOUNTS) == {"2026-11-25": 1}
    assert not DayAccount("2026-11-26", 0, 0).missing


def test_an_incomplete_window_is_refused_naming_its_missing_days():
    with pytest.raises(JobInputError, match=r"no embeddings on 2026-11-24 \(1 of 3 days"):
        check_complete(ACCOUNTS, "v2", "2026-11-23", "2026-11-25")
    check_complete({"2026-11-23": ACCOUNTS["2026-11-23"]}, "v2", "2026-11-23", "2026-11-25")


def test_the_first_complete_candidate_is_chosen_else_the_last():
    complete = {"2026-11-23": ACCOUNTS["2026-11-23"]}
    windows = {"pending": ACCOUNTS, "serving": complete}
    assert choose_version(["pending", "serving"], windows.get) == ("serving", complete)
    assert choose_version(["pending"], windows.get) == ("pending", ACCOUNTS)
    with pytest.raises(JobInputError, match="nothing serves yet"):
        choose_version([], windows.get)


def test_accounting_counts_embeddings_and_errors_of_the_version_only(spark):
    notes = spark.createDataFrame(
        [("2026-11-24", "a"), ("2026-11-24", "b"), ("2026-11-25", "c"), ("2026-11-25", "d"),
         ("2026-11-26", "e")], "dt string, note_id string")
    rows = "dt string, note_id string, model_version string"
    embeddings = spark.createDataFrame(
        [("2026-11-24", "a", "v1"), ("2026-11-25", "c", "v2"), ("2026-11-25", "d", "v1")], rows)
    errors = spark.createDataFrame([("2026-11-24", "b", "v1")], rows)
    accounts = account_days(notes, embeddings, errors, "v1", "2026-11-24", "2026-11-25")
    assert accounts == {"2026-11-24": DayAccount("2026-11-24", 2, 0),
                        "2026-11-25": DayAccount("2026-11-25", 2, 1)}
