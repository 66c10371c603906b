"""Recall@K with the paper's protocol (../shared/NOTELLM2.md, "Evaluation protocol").

Each note appears in at most one test pair; the query is the pair's first note; the candidate
pool is every held-out note except the queries; candidates are ranked by inner product.
Everything but `select_test_pairs` (the greedy's reference, and its last step in one task)
runs as Spark aggregations: only counts reach the driver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

DEFAULT_KS = (10, 20, 50, 100, 1000)


def select_test_pairs(pairs_pdf: pd.DataFrame) -> pd.DataFrame:
    """A subset of (note_id, related_note_id, ...) pairs in which every note appears once.

    Greedy over pairs by descending score (ties by ids, so the result does not depend on the
    input order): a pair is kept when neither of its notes is in a kept pair.
    """
    ordered = pairs_pdf.sort_values(["score", "note_id", "related_note_id"],
                                    ascending=[False, True, True])
    seen: set[str] = set()
    keep = []
    for index, query, partner in zip(ordered.index, ordered["note_id"], ordered["related_note_id"]):
        if query == partner or query in seen or partner in seen:
            continue
        seen.update((query, partner))
        keep.append(index)
    return ordered.loc[keep].reset_index(drop=True)


def recall_by_set(ranked_df: DataFrame, names: Sequence[str],
                  ks: Sequence[int] = DEFAULT_KS) -> dict[str, dict[str, float]]:
    """{test_set: {"recall@K": share of its pairs whose `rank` (null: a miss) is below K}}
    for each of `names`; NaN for a set without pairs."""
    # Bounded: one row per test-pair set.
    rows = ranked_df.groupBy("test_set").agg(*hit_counts(ks)).collect()
    counts = {row["test_set"]: row.asDict() for row in rows}
    return {name: recalls_of(counts.get(name, {"pairs": 0}), ks) for name in names}


def pair_kind_recalls(ranked_df: DataFrame, ks: Sequence[int]) -> dict[str, dict[str, float]]:
    """Recall@K per `pair_kind` (sample data only: which modality defines a pair), as
    "<kind>_pairs"; empty when the pairs have no such column."""
    if "pair_kind" not in ranked_df.columns:
        return {}
    # Bounded: one row per pair kind (the sample data has two).
    rows = (ranked_df.where(F.col("pair_kind").isNotNull()).groupBy("pair_kind")
            .agg(*hit_counts(ks)).orderBy("pair_kind").collect())
    return {f"{row['pair_kind']}_pairs": recalls_of(row.asDict(), ks) for row in rows}


def hit_counts(ks: Sequence[int]) -> list:
    return [F.count(F.lit(1)).alias("pairs"),
            *[F.sum(F.when(F.col("rank") < k, 1).otherwise(0)).alias(f"recall@{k}")
              for k in ks]]


def recalls_of(counts: dict, ks: Sequence[int]) -> dict[str, float]:
    pairs = counts["pairs"]
    return {f"recall@{k}": counts[f"recall@{k}"] / pairs if pairs else math.nan for k in ks}


def length_subsets(pairs_df: DataFrame, chars_df: DataFrame) -> dict[str, DataFrame]:
    """The authors' subsets of the pairs, before each gets its own test-pair selection (its
    pool is then every test note except its queries): short / long queries and short / long
    targets. Short = a text (title + content characters, chars_df: note_id, chars) at most
    the median over the notes of the pairs; the authors' files do not say their threshold
    (docs/TRAINING.md). The median is Spark's exact `percentile`, whose state is one count
    per distinct length."""
    ids_df = (pairs_df.select("note_id")
              .union(pairs_df.select(F.col("related_note_id").alias("note_id"))).distinct())
    threshold = ids_df.join(chars_df, "note_id").agg(F.percentile("chars", 0.5)).first()[0]
    short = F.lit(0.0 if threshold is None else threshold)
    with_chars_df = (pairs_df
                     .join(chars_df.toDF("note_id", "_query_chars"), "note_id")
                     .join(chars_df.toDF("related_note_id", "_target_chars"), "related_note_id")
                     .select(*pairs_df.columns, (F.col("_query_chars") <= short).alias("_qs"),
                             (F.col("_target_chars") <= short).alias("_ts")))
    return {name: with_chars_df.where(mask).drop("_qs", "_ts") for name, mask in (
        ("short_query", F.col("_qs")), ("long_query", ~F.col("_qs")),
        ("short_target", F.col("_ts")), ("long_target", ~F.col("_ts")))}
