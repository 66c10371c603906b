"""Which days of a window a model version has embedded: the check before an index is built,
the to-do list of a rollout, and the count of notes that arrived after their day was embedded.

A note is *accounted* for version V when it has a `note_embeddings` or an `embedding_errors`
row of V on its day. Per day: a day with notes and none accounted is *missing* (never
embedded by V); a day with some unaccounted notes holds *late* notes (they arrived after the
day was embedded, or a run died between its two commits); rerunning the day embeds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from notellm2_udf.errors import JobInputError


@dataclass(frozen=True)
class DayAccount:
    day: str
    notes: int
    unaccounted: int

    @property
    def missing(self) -> bool:
        return self.notes > 0 and self.unaccounted == self.notes

    @property
    def late(self) -> int:
        """Notes of a day that was embedded, yet not accounted (0 for a missing day)."""
        return 0 if self.missing else self.unaccounted


def known_notes(embeddings_df: DataFrame, errors_df: DataFrame) -> DataFrame:
    """(dt, note_id) seen by any version: the notes of a window when `notes` is not given."""
    return (embeddings_df.select("dt", "note_id")
            .unionByName(errors_df.where(F.col("note_id").isNotNull()).select("dt", "note_id")))


def account_days(notes_df: DataFrame, embeddings_df: DataFrame, errors_df: DataFrame,
                 version: str, first: str, last: str) -> dict[str, DayAccount]:
    """DayAccount of every day in [first, last] that has notes (`notes_df`: dt, note_id)."""
    def of_version(df: DataFrame) -> DataFrame:
        return df.where(F.col("dt").between(first, last) & (F.col("model_version") == version)
                        ).select("dt", "note_id")

    accounted_df = (of_version(embeddings_df).unionByName(of_version(errors_df))
                    .distinct().withColumn("accounted", F.lit(1)))
    # One row per day of the window.
    rows = (notes_df.where(F.col("dt").between(first, last)).distinct()
            .join(accounted_df, ["dt", "note_id"], "left")
            .groupBy("dt")
            .agg(F.count(F.lit(1)).alias("notes"),
                 F.sum(F.when(F.col("accounted").isNull(), 1).otherwise(0)).alias("unaccounted"))
            .collect())
    return {row["dt"]: DayAccount(row["dt"], row["notes"], row["unaccounted"])
            for row in sorted(rows, key=lambda row: row["dt"])}


def missing_days(accounts: dict[str, DayAccount]) -> list[str]:
    return [day for day, account in accounts.items() if account.missing]


def late_notes(accounts: dict[str, DayAccount]) -> dict[str, int]:
    return {day: account.late for day, account in accounts.items() if account.late}


def check_complete(accounts: dict[str, DayAccount], version: str, first: str, last: str) -> None:
    """JobInputError naming the days of the window that have notes but nothing of `version`."""
    missing = missing_days(accounts)
    if missing:
        raise JobInputError(
            f"window [{first}, {last}] is incomplete for model {version}: no embeddings on "
            f"{', '.join(missing)} ({len(missing)} of {len(accounts)} days with notes); "
            "embed them first (jobs/embed_window.py, oldest first), or pass "
            "--allow-incomplete-window to index what is there")


def choose_version(candidates: list[str], account: Callable[[str], dict[str, DayAccount]],
                   ) -> tuple[str, dict[str, DayAccount]]:
    """The first candidate whose window is complete, else the last one (the serving version:
    its gaps are then reported by `check_complete`). Candidates: pending first, then serving."""
    if not candidates:
        raise JobInputError("no model version to index: nothing serves yet")
    for version in candidates:
        accounts = account(version)
        if not missing_days(accounts):
            return version, accounts
    return version, accounts
