"""The sampled recall of related lists against exact search, tolerant to ties: the recall
that validate_related gates a day on and related_notes logs (`sampled_recall@k`).

For a query whose related list holds n notes (at most as many as its exact list), a related
note is a hit when its true score (the inner product of the two embeddings) reaches the
exact n-th score less SCORE_TOLERANCE, so any of the notes tied at the n-th place counts.
The query's recall is min(hits, n) / n; a query without exact neighbours (a one-note corpus)
has recall 1 if its list is empty too, else 0. The sample's recall is the mean over its
queries. The sample is the notes of smallest xxhash64(note_id, seed) among the queries:
the same notes on every run, and the same in related_notes as in validate_related at the
same size and seed (both default to 200 queries, seed 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from notellm2_udf.index.exact_search import exact_top_k

# Float32 inner products of unit vectors from two kernels (FAISS or numpy's BLAS for the
# exact list, numpy for a related note's true score) differ in the last bits: measured at
# most 4.2e-7 over 200 x 20k pairs at 64-d and at 1024-d; the worst case, d x 2^-24, is
# 3.8e-6 at 64-d. 1e-5 is above both and far below the scores' scale (cosines in [-1, 1]).
SCORE_TOLERANCE = 1e-5


def sample_queries(note_ids_df: DataFrame, corpus_df: DataFrame, *, size: int,
                   seed: int = 0) -> pd.DataFrame:
    """(note_id, embedding) of the `size` distinct note_ids of `note_ids_df` with the
    smallest xxhash64(note_id, seed), those the corpus holds. Bounded by `size` rows."""
    return (note_ids_df.select("note_id").distinct()
            .orderBy(F.xxhash64("note_id", F.lit(seed)), "note_id").limit(size)
            .join(corpus_df.select("note_id", "embedding"), "note_id")
            .orderBy(F.xxhash64("note_id", F.lit(seed)), "note_id")
            .toPandas())


def sampled_recall(lists_pdf: pd.DataFrame, queries_pdf: pd.DataFrame, corpus_df: DataFrame,
                   *, k: int) -> float:
    """The tie-tolerant recall of the related lists `lists_pdf` (note_id, related_note_id,
    in rank order) of the sampled queries `queries_pdf` (note_id, embedding) against their
    exact top-k over `corpus_df` (note_id, embedding); 1.0 for no queries."""
    if queries_pdf.empty:
        return 1.0
    exact_pdf = exact_top_k(corpus_df, queries_pdf, k=k)
    related_ids = lists_pdf["related_note_id"].unique().tolist()
    # Bounded: the embeddings of at most queries x k related notes.
    vectors_pdf = corpus_df.where(F.col("note_id").isin(related_ids)).select(
        "note_id", "embedding").toPandas()
    vectors = dict(zip(vectors_pdf["note_id"], vectors_pdf["embedding"]))
    related = lists_pdf.groupby("note_id")["related_note_id"].agg(list)
    exact = exact_pdf.groupby("query_id")["score"].agg(list)
    found_scores, exact_scores = [], []
    for query_id, embedding in zip(queries_pdf["note_id"], queries_pdf["embedding"]):
        q = np.asarray(embedding, dtype="float32")
        found_scores.append(np.array(
            [float(q @ np.asarray(vectors[i], dtype="float32")) if i in vectors else -np.inf
             for i in related.get(query_id, [])], dtype="float64"))
        exact_scores.append(np.asarray(exact.get(query_id, []), dtype="float64"))
    return tie_tolerant_recall(found_scores, exact_scores)


def sampled_recall_of_day(related_df: DataFrame, corpus_df: DataFrame, *, size: int,
                          seed: int = 0) -> float:
    """The sampled recall of the related lists written for a day (validate_related):
    `size` of its queries, k the longest of their lists."""
    queries_pdf = sample_queries(related_df, corpus_df, size=size, seed=seed)
    if queries_pdf.empty:
        return 1.0
    # Bounded by the sample: its queries' related rows.
    lists_pdf = (related_df.where(F.col("note_id").isin(queries_pdf["note_id"].tolist()))
                 .select("note_id", "rank", "related_note_id").toPandas()
                 .sort_values(["note_id", "rank"]))
    k = int(lists_pdf.groupby("note_id").size().max())
    return sampled_recall(lists_pdf, queries_pdf, corpus_df, k=k)


def tie_tolerant_recall(found_scores: Sequence[np.ndarray], exact_scores: Sequence[np.ndarray],
                        *, tolerance: float = SCORE_TOLERANCE) -> float:
    """Mean over queries of the tie-tolerant recall (module docstring).

    found_scores[i]: the true scores of query i's related notes (-inf for a note the corpus
    does not hold); exact_scores[i]: its exact top-k scores, in descending order."""
    if len(found_scores) != len(exact_scores):
        raise ValueError(f"{len(found_scores)} related lists for {len(exact_scores)} exact ones")
    if not found_scores:
        return 1.0
    recalls = []
    for found, exact in zip(found_scores, exact_scores):
        n = min(len(found), len(exact))
        if n == 0:
            recalls.append(1.0 if len(found) == len(exact) else 0.0)
            continue
        hits = int((np.asarray(found) >= exact[n - 1] - tolerance).sum())
        recalls.append(min(hits, n) / n)
    return float(np.mean(recalls))
