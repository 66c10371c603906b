"""Sampled recall@k of the related notes against exact (brute-force) search.

The exact side is distributed: each corpus partition returns its own exact top-(k+1) for
the sampled queries (k once the query itself is dropped), Spark merges them per query and
only the merged sample x k rows reach the driver.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from notellm2_udf.index.shards import as_matrix, concat_batches

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
        import faiss

        from notellm2_udf.spark.executor_resources import use_task_cpus_for_faiss

        use_task_cpus_for_faiss()
        part_pdf = concat_batches(batches)
        if part_pdf is None:
            return
        xb = as_matrix(part_pdf["embedding"])
        # D, I: faiss's names for scores and ids.
        D, I = faiss.knn(xq, xb, min(k + 1, len(xb)), metric=faiss.METRIC_INNER_PRODUCT)
        rows_pdf = pd.DataFrame({
            "query": np.repeat(np.arange(len(xq), dtype="int32"), I.shape[1]),
            "note_id": part_pdf["note_id"].to_numpy()[I.ravel()],
            "score": D.ravel(),
        })
        yield rows_pdf[rows_pdf["note_id"].to_numpy() != query_ids[rows_pdf["query"]]]

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


def recall_at_k(found: dict[str, list[str]], exact: dict[str, list[str]]) -> float:
    """Mean over queries of |found ∩ exact| / |exact| (queries with no exact neighbour skipped)."""
    ratios = [len(set(found.get(q, [])) & set(ids)) / len(ids) for q, ids in exact.items() if ids]
    return float(np.mean(ratios)) if ratios else 1.0
