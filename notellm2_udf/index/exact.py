"""Sampled recall@k of the related notes against exact (brute-force) search.

The exact side is distributed: each corpus partition returns its own exact top-k for the
sampled queries (the query itself left out), kept batch by batch so a task holds one Arrow
batch of the corpus and sample x k candidates; Spark merges them per query and only the
merged sample x k rows reach the driver. numpy, not FAISS: ties at the k-th score are kept
whole, so the lists are exact in the order (score desc, note_id asc).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from notellm2_udf.index.search import merge_topk
from notellm2_udf.index.shards import as_matrix

EXACT = T.StructType([
    T.StructField("query", T.IntegerType(), False),
    T.StructField("note_id", T.StringType(), False),
    T.StructField("score", T.FloatType(), False),
])


def sample_queries(queries_df: DataFrame, *, size: int) -> pd.DataFrame:
    """`size` queries (note_id, embedding) picked by a hash of note_id: the same every run.
    Bounded by `size` rows (--recall-sample)."""
    return (
        queries_df.select("note_id", "embedding")
        .orderBy(F.xxhash64("note_id"), "note_id")
        .limit(size)
        .toPandas()
    )


def exact_topk(corpus_df: DataFrame, sample_pdf: pd.DataFrame, *, k: int) -> dict[str, list[str]]:
    """Exact top-k related note_ids (self excluded) of each sampled query, by note_id."""
    xq = as_matrix(sample_pdf["embedding"])
    query_ids = sample_pdf["note_id"].to_numpy()

    def partition_topk(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # Batch by batch, so a task holds one Arrow batch of the corpus, not its partition.
        D = np.zeros((len(xq), 0), dtype="float32")
        names = np.full((len(xq), 0), None, dtype=object)
        for batch in batches:
            if len(batch):
                D_batch, found = batch_candidates(xq, query_ids, batch, k)
                D, names = merge_named(np.hstack([D, D_batch]), np.hstack([names, found]), k)
        query, column = np.nonzero(names != None)  # noqa: E711 (elementwise)
        if len(query):
            yield pd.DataFrame({"query": query.astype("int32"), "note_id": names[query, column],
                                "score": D[query, column]})

    rank = F.row_number().over(
        Window.partitionBy("query").orderBy(F.desc("score"), F.asc("note_id")))
    # Bounded by sample x k rows (--recall-sample).
    rows_pdf = (
        corpus_df.select("note_id", "embedding").mapInPandas(partition_topk, EXACT)
        .withColumn("rank", rank).where(F.col("rank") <= k).toPandas()
    )
    rows_pdf = rows_pdf.sort_values(["query", "rank"])
    top = rows_pdf.groupby("query")["note_id"].agg(list)
    return {query_ids[q]: top.get(q, []) for q in range(len(query_ids))}


def batch_candidates(xq: np.ndarray, query_ids: np.ndarray, batch: pd.DataFrame,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and note_ids [nq, m] of each query's notes in `batch` scoring at least its k-th
    best (the query itself left out; None pads): a superset of the batch's top-k in the
    order (score desc, note_id asc), whatever the ties."""
    scores = xq @ as_matrix(batch["embedding"]).T
    note_ids = batch["note_id"].to_numpy()
    # A hash lookup of the batch's ids among the (distinct) queries: O(batch), where
    # comparing every pair cost nq x batch string comparisons.
    query_of_row = pd.Index(query_ids).get_indexer(note_ids)
    position = np.flatnonzero(query_of_row >= 0)
    scores[query_of_row[position], position] = -np.inf
    m = min(k, scores.shape[1])
    kth = np.partition(scores, -m, axis=1)[:, -m]
    width = int((scores >= kth[:, None]).sum(axis=1).max())
    columns = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    D = np.take_along_axis(scores, columns, 1)
    keep = (D >= kth[:, None]) & (D > -np.inf)
    return D, np.where(keep, note_ids[columns], None)


def merge_named(D: np.ndarray, names: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's top-k of candidate lists D, names [nq, c] (None = no candidate) in the
    order (score desc, note_id asc): note_ids become integer ranks for merge_topk."""
    valid = names != None  # noqa: E711 (elementwise)
    ranked, codes = np.unique(names[valid].astype(str), return_inverse=True)
    G = np.full(names.shape, -1, dtype="int64")
    G[valid] = codes
    D, G = merge_topk(D, G, k)
    lookup = np.append(ranked.astype(object), None)
    return D, lookup[np.where(G >= 0, G, len(ranked))]


def recall_at_k(found: dict[str, list[str]], exact: dict[str, list[str]]) -> float:
    """Mean over queries of |found ∩ exact| / |exact| (queries with no exact neighbour skipped)."""
    ratios = [len(set(found.get(q, [])) & set(ids)) / len(ids) for q, ids in exact.items() if ids]
    return float(np.mean(ratios)) if ratios else 1.0
