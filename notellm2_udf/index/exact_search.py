"""Exact top-k by inner product of a few query vectors over a corpus DataFrame (numpy).

What the sampled recall measures the index against, so it shares no code with the search
it checks: no FAISS and no merge of search.py. Each corpus task folds its rows into each
query's running top-k one Arrow batch at a time (a task holds one batch, 10k rows by
default, and queries x k candidates, never its partition); a Spark window keeps the top k
of the tasks' lists, and only queries x k rows reach the driver. The query itself is left
out. Ties are kept whole until the order (score desc, note_id asc) decides, so the lists are
exact in that order, also where equal scores straddle the k-th place.

Scores are float32 numpy products (BLAS), not FAISS's: the two may differ in the last bits,
which is why the recall compares scores with a tolerance (recall.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

CANDIDATES = T.StructType([
    T.StructField("query", T.IntegerType(), False),
    T.StructField("note_id", T.StringType(), False),
    T.StructField("score", T.FloatType(), False),
])
EXACT_COLUMNS = ["query_id", "rank", "note_id", "score"]


def exact_top_k(corpus_df: DataFrame, queries_pdf: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """Rows (query_id, rank, note_id, score): the exact top-k of each query of `queries_pdf`
    (note_id, embedding) among the notes of `corpus_df` (note_id, embedding), itself
    excluded, ranked 1.. by (score desc, note_id asc); fewer than k when the corpus is
    smaller. Sorted by query (in `queries_pdf` order), then rank."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if queries_pdf.empty:
        return pd.DataFrame(columns=EXACT_COLUMNS)
    query_ids = queries_pdf["note_id"].to_numpy(dtype=object)
    if len(set(query_ids)) != len(query_ids):
        raise ValueError("the queries must be distinct notes")
    xq = _matrix(queries_pdf["embedding"])

    def task_top_k(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scores = np.zeros((len(xq), 0), dtype="float32")
        names = np.zeros((len(xq), 0), dtype=object)
        for batch in batches:
            if len(batch):
                batch_scores, batch_names = batch_candidates(xq, query_ids, batch, k)
                scores, names = top_k_of(np.hstack([scores, batch_scores]),
                                         np.hstack([names, batch_names]), k)
        query, column = np.nonzero(names != None)  # noqa: E711 (elementwise)
        if len(query):
            yield pd.DataFrame({"query": query.astype("int32"), "note_id": names[query, column],
                                "score": scores[query, column]})

    ranked = Window.partitionBy("query").orderBy(F.desc("score"), F.asc("note_id"))
    # Bounded by queries x k rows.
    rows_pdf = (corpus_df.select("note_id", "embedding").mapInPandas(task_top_k, CANDIDATES)
                .withColumn("rank", F.row_number().over(ranked)).where(F.col("rank") <= k)
                .toPandas().sort_values(["query", "rank"], ignore_index=True))
    rows_pdf["query_id"] = query_ids[rows_pdf["query"].to_numpy()]
    return rows_pdf[EXACT_COLUMNS]


def batch_candidates(xq: np.ndarray, query_ids: np.ndarray, batch: pd.DataFrame,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and note_ids [nq, w] of each query's notes in `batch` that score at least its
    k-th best score there, the query itself left out (None and -inf pad): every note of the
    batch that can be in the query's top-k, whatever the ties."""
    scores = xq @ _matrix(batch["embedding"]).T
    note_ids = batch["note_id"].to_numpy(dtype=object)
    # The queries are distinct: a hash lookup finds the one row each may own, O(batch).
    own_query = pd.Index(query_ids).get_indexer(note_ids)
    owned = np.flatnonzero(own_query >= 0)
    scores[own_query[owned], owned] = -np.inf
    scores[np.isnan(scores)] = -np.inf
    m = min(k, scores.shape[1])
    kth = np.partition(scores, -m, axis=1)[:, -m]
    keep = (scores >= kth[:, None]) & (scores > -np.inf)
    width = int(keep.sum(axis=1).max())
    # Kept columns first, in batch order; the rest are padding.
    columns = np.argsort(~keep, axis=1, kind="stable")[:, :width]
    kept = np.take_along_axis(keep, columns, 1)
    return (np.where(kept, np.take_along_axis(scores, columns, 1), np.float32(-np.inf)),
            np.where(kept, note_ids[columns], None))


def top_k_of(scores: np.ndarray, names: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first k candidates of scores, names [nq, c] (None = none) in the order
    (score desc, note_id asc), None and -inf padding the rows with fewer."""
    valid = names != None  # noqa: E711 (elementwise)
    ranked, codes = np.unique(names[valid], return_inverse=True)
    order_of_name = np.full(names.shape, len(ranked))
    order_of_name[valid] = codes
    order = np.lexsort((order_of_name, np.where(valid, -scores, np.inf)), axis=1)[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(names, order, 1)


def _matrix(embeddings: pd.Series) -> np.ndarray:
    """float32 [n, d] of a Series of arrays."""
    return np.ascontiguousarray(np.vstack(embeddings.to_numpy()), dtype="float32")
