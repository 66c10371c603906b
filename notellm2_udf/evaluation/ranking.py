"""Each test query's partner rank, computed in bounded Spark tasks (no collect, no broadcast).

Exact sharded search: the queries and the pool are each cut into blocks of about
`block_rows` notes (by a hash of the note id); one task takes one (query block, pool block)
and counts, per query, the pool notes scoring at least as high as the partner; a groupBy on
the query sums the counts into the partner's 0-based rank. Ties count against the partner
(a collapsed model cannot score by ties). Inner products are summed in float64 and rounded
to float32, the embeddings' precision, so that equal vectors score equal whatever the block
shapes (float32 BLAS sums in an order that depends on them).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class RankingSettings:
    """What bounds each task of the evaluation (docs/TRAINING.md, "Memory of an evaluation").

    block_rows: queries, and pool notes, per ranking block: a task holds one of each.
    chunk_rows: queries scored at once inside a task (chunk_rows x block_rows scores).
    local_pairs: the test-pair selection finishes with the plain greedy, in one task, once at
    most this many candidate pairs are left.
    """

    block_rows: int = 8192
    chunk_rows: int = 256
    local_pairs: int = 100_000


QUERY_SCHEMA = "query_id string, partner_id string, xq array<float>, partner_score float"
COUNT_SCHEMA = "query_id string, partner_id string, at_least long"


def partner_ranks(test_pairs_df: DataFrame, embeddings_df: DataFrame,
                  settings: RankingSettings) -> DataFrame:
    """test_pairs_df with `rank`: the partner's 0-based rank among the pool (every note of
    embeddings_df with an embedding, except the queries); null (a miss) when the query or
    the partner has no embedding."""
    encoded_df = embeddings_df.where(F.col("embedding").isNotNull()).select("note_id",
                                                                             "embedding")
    pool_df = encoded_df.join(test_pairs_df.select("note_id"), "note_id", "left_anti")
    queries_df = (test_pairs_df.select(F.col("note_id").alias("query_id"),
                                       F.col("related_note_id").alias("partner_id"))
                  .join(encoded_df.toDF("query_id", "xq"), "query_id")
                  .join(pool_df.toDF("partner_id", "xp"), "partner_id")
                  .mapInPandas(with_partner_scores, QUERY_SCHEMA)).localCheckpoint()
    pool_df = pool_df.localCheckpoint()
    query_blocks = blocks_for(queries_df.count(), settings.block_rows)
    pool_blocks = blocks_for(pool_df.count(), settings.block_rows)
    counts_df = (in_blocks(queries_df, "query_id", ("_qb", query_blocks), ("_pb", pool_blocks))
                 .cogroup(in_blocks(pool_df, "note_id", ("_pb", pool_blocks),
                                    ("_qb", query_blocks)))
                 .applyInPandas(block_counter(settings.chunk_rows), COUNT_SCHEMA))
    ranks_df = counts_df.groupBy(F.col("query_id").alias("note_id"),
                                 F.col("partner_id").alias("related_note_id")).agg(
        F.sum("at_least").alias("rank"))
    return test_pairs_df.join(ranks_df, ["note_id", "related_note_id"], "left")


def blocks_for(rows: int, block_rows: int) -> int:
    return max(1, math.ceil(rows / block_rows))


def in_blocks(df: DataFrame, id_column: str, own: tuple[str, int], other: tuple[str, int]):
    """df grouped by (query block, pool block): each row in its own block (a hash of its id)
    and copied once into every block of the other side."""
    (own_name, blocks), (other_name, other_blocks) = own, other
    return df.withColumns({
        own_name: F.pmod(F.xxhash64(id_column), F.lit(blocks)),
        other_name: F.explode(F.sequence(F.lit(0), F.lit(other_blocks - 1))),
    }).groupBy("_qb", "_pb")


def with_partner_scores(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for pdf in batches:
        xq, xp = np.stack(pdf["xq"]), np.stack(pdf["xp"])
        scores = np.einsum("ij,ij->i", xq.astype(np.float64), xp.astype(np.float64))
        yield pd.DataFrame({"query_id": pdf["query_id"], "partner_id": pdf["partner_id"],
                            "xq": pdf["xq"], "partner_score": scores.astype(np.float32)})


def block_counter(chunk_rows: int):
    def count_block(queries_pdf: pd.DataFrame, pool_pdf: pd.DataFrame) -> pd.DataFrame:
        if queries_pdf.empty:
            return pd.DataFrame({"query_id": [], "partner_id": [], "at_least": []})
        xq = np.stack(queries_pdf["xq"])
        xb = (np.stack(pool_pdf["embedding"]) if len(pool_pdf)
              else np.zeros((0, xq.shape[1]), np.float32))
        partner_rows = pd.Index(pool_pdf["note_id"]).get_indexer(queries_pdf["partner_id"])
        at_least = at_least_partner(xq, xb, queries_pdf["partner_score"].to_numpy(np.float32),
                                    partner_rows, chunk_rows)
        return pd.DataFrame({"query_id": queries_pdf["query_id"],
                             "partner_id": queries_pdf["partner_id"], "at_least": at_least})

    return count_block


def inner_products(xq: np.ndarray, xb: np.ndarray) -> np.ndarray:
    return (xq.astype(np.float64) @ xb.astype(np.float64).T).astype(np.float32)


def at_least_partner(xq: np.ndarray, xb: np.ndarray, partner_scores: np.ndarray,
                     partner_rows: np.ndarray, chunk_rows: int) -> np.ndarray:
    """Per query, the rows of xb scoring >= its partner's score, the partner's own row
    (partner_rows, -1 when it is not in xb) not counted."""
    counts = np.zeros(len(xq), np.int64)
    if not len(xb):
        return counts
    for start in range(0, len(xq), chunk_rows):
        rows = np.arange(start, min(start + chunk_rows, len(xq)))
        at_least = inner_products(xq[rows], xb) >= partner_scores[rows, None]
        own = partner_rows[rows] >= 0
        counts[rows] = at_least.sum(axis=1) - np.where(
            own, at_least[np.arange(len(rows)), np.maximum(partner_rows[rows], 0)], False)
    return counts
