"""The argparse types of the flags: each value they accept, and a refusal for the rest."""

from __future__ import annotations

import argparse
import re

import pytest

from notellm2_udf.settings.values import (
    comma_list,
    day_arg,
    manual_run_id,
    non_negative_int_arg,
    positive_int_arg,
    run_id_arg,
)


def test_a_day_must_be_a_real_date():
    assert day_arg("2026-02-28") == "2026-02-28"
    for text in ["2026-02-30", "2026-2-1", "26-02-01", "2026-02-01' OR 1=1"]:
        with pytest.raises(argparse.ArgumentTypeError):
            day_arg(text)


def test_counts():
    assert positive_int_arg("3") == 3 and non_negative_int_arg("0") == 0
    for parse, text in [(positive_int_arg, "0"), (non_negative_int_arg, "-1"),
                        (positive_int_arg, "1.5"), (positive_int_arg, "x")]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_a_comma_list_is_a_tuple_of_parsed_items():
    assert comma_list(positive_int_arg)("10,20,,50") == (10, 20, 50)
    with pytest.raises(argparse.ArgumentTypeError, match="must be >= 1"):
        comma_list(positive_int_arg)("10,0")


def test_run_ids_take_airflow_ids_and_refuse_quotes_and_paths():
    airflow_id = "scheduled__2026-11-25T00:00:00+00:00"
    assert run_id_arg(airflow_id) == airflow_id
    for text in ["", "a'b", "../x", "a b", "x" * 251]:
        with pytest.raises(argparse.ArgumentTypeError):
            run_id_arg(text)
    made = manual_run_id()
    assert re.fullmatch(r"manual-\d{8}T\d{6}Z-[0-9a-f]{6}", made) and run_id_arg(made) == made
    assert manual_run_id() != made
