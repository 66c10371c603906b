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
from functools import reduce

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from notellm2_udf.settings.declared import option
from notellm2_udf.settings.values import positive_int_arg


@dataclass(frozen=True)
class RankingSettings:
    """What bounds each task of the evaluation (docs/TRAINING.md, "Memory of an evaluation").

    block_rows: queries, and pool notes, per ranking block: a task holds one of each.
    chunk_rows: queries scored at once inside a task (chunk_rows x block_rows scores).
    local_pairs: the test-pair selection finishes with the plain greedy, in one task, once at
    most this many candidate pairs are left.
    """

    block_rows: int = option(8192, parse=positive_int_arg, name="--ranking-block-rows",
                             help="queries, and pool notes, per ranking task's block: a task "
                                  "holds one of each (docs/TRAINING.md)")
    chunk_rows: int = option(256, parse=positive_int_arg, name="--ranking-chunk-rows",
                             help="queries scored at once in a ranking task")
    local_pairs: int = option(100_000, parse=positive_int_arg, name="--selection-local-pairs",
                              help="the test-pair selection finishes in one task once at most "
                                   "this many candidate pairs are left")


QUERY_SCHEMA = ("_set int, query_id string, partner_id string, xq array<float>, "
                "partner_score float")
COUNT_SCHEMA = "_set int, query_id string, partner_id string, at_least long"
SET_COLUMN = "test_set"


def partner_ranks(pair_sets: dict[str, DataFrame], embeddings_df: DataFrame,
                  settings: RankingSettings) -> DataFrame:
    """The pairs of every test-pair set, `test_set` naming it, with `rank`: the partner's
    0-based rank in the set's pool (every note of embeddings_df with an embedding, except
    the set's queries); null (a miss) when the query or the partner has no embedding.

    All sets are ranked in one pass over one pool: each pool note carries `query_of`, a bit
    per set of which it is a query, and a query does not count the notes of its set's bit.
    """
    names = list(pair_sets)
    pairs_df = reduce(DataFrame.unionByName, [pairs_df.withColumn("_set", F.lit(number))
                                              for number, pairs_df in
                                              enumerate(pair_sets.values())])
    query_of_df = pairs_df.groupBy("note_id").agg(
        F.bit_or(F.expr("shiftleft(1L, _set)")).alias("query_of"))
    pool_df = (embeddings_df.where(F.col("embedding").isNotNull())
               .select("note_id", "embedding").join(query_of_df, "note_id", "left")
               .fillna(0, ["query_of"])).localCheckpoint()
    queries_df = (pairs_df.select("_set", F.col("note_id").alias("query_id"),
                                  F.col("related_note_id").alias("partner_id"))
                  .join(pool_df.select(F.col("note_id").alias("query_id"),
                                       F.col("embedding").alias("xq")), "query_id")
                  .join(pool_df.select(F.col("note_id").alias("partner_id"),
                                       F.col("embedding").alias("xp"),
                                       F.col("query_of").alias("partner_query_of")),
                        "partner_id")
                  .where(F.expr("shiftright(partner_query_of, _set) % 2 = 0"))
                  .drop("partner_query_of")
                  .mapInPandas(with_partner_scores, QUERY_SCHEMA)).localCheckpoint()
    query_blocks = blocks_for(queries_df.count(), settings.block_rows)
    pool_blocks = blocks_for(pool_df.count(), settings.block_rows)
    counts_df = (in_blocks(queries_df, "query_id", ("_qb", query_blocks), ("_pb", pool_blocks))
                 .cogroup(in_blocks(pool_df, "note_id", ("_pb", pool_blocks),
                                    ("_qb", query_blocks)))
                 .applyInPandas(block_counter(settings.chunk_rows), COUNT_SCHEMA))
    ranks_df = counts_df.groupBy("_set", F.col("query_id").alias("note_id"),
                                 F.col("partner_id").alias("related_note_id")).agg(
        F.sum("at_least").alias("rank"))
    set_names = F.array(*[F.lit(name) for name in names])
    return (pairs_df.join(ranks_df, ["_set", "note_id", "related_note_id"], "left")
            .withColumn(SET_COLUMN, F.element_at(set_names, F.col("_set") + 1)).drop("_set"))


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
        yield pd.DataFrame({"_set": pdf["_set"], "query_id": pdf["query_id"],
                            "partner_id": pdf["partner_id"], "xq": pdf["xq"],
                            "partner_score": scores.astype(np.float32)})


def block_counter(chunk_rows: int):
    def count_block(queries_pdf: pd.DataFrame, pool_pdf: pd.DataFrame) -> pd.DataFrame:
        if queries_pdf.empty:
            return pd.DataFrame({"_set": [], "query_id": [], "partner_id": [], "at_least": []})
        xq = np.stack(queries_pdf["xq"])
        xb = (np.stack(pool_pdf["embedding"]) if len(pool_pdf)
              else np.zeros((0, xq.shape[1]), np.float32))
        partner_rows = pd.Index(pool_pdf["note_id"]).get_indexer(queries_pdf["partner_id"])
        excluded = BlockExclusions(queries_pdf["_set"].to_numpy(np.int64),
                                   pool_pdf["query_of"].to_numpy(np.int64), partner_rows)
        at_least = at_least_partner(xq, xb, queries_pdf["partner_score"].to_numpy(np.float32),
                                    excluded, chunk_rows)
        return pd.DataFrame({"_set": queries_pdf["_set"], "query_id": queries_pdf["query_id"],
                             "partner_id": queries_pdf["partner_id"], "at_least": at_least})

    return count_block


def inner_products(xq: np.ndarray, xb: np.ndarray) -> np.ndarray:
    return (xq.astype(np.float64) @ xb.astype(np.float64).T).astype(np.float32)


class BlockExclusions:
    """What a query of a block does not count: its set's queries (bit `sets[i]` of the pool
    row's `query_of`) and its partner's own row (`partner_rows`, -1 when not in the block)."""

    def __init__(self, sets: np.ndarray, query_of: np.ndarray, partner_rows: np.ndarray):
        self.sets, self.partner_rows = sets, partner_rows
        # One boolean row per set (a handful), so a chunk's mask is a gather, not shifts.
        set_numbers = np.arange(int(sets.max()) + 1 if len(sets) else 1)
        self.queries_of_set = ((query_of[None, :] >> set_numbers[:, None]) & 1).astype(bool)

    def mask(self, rows: np.ndarray) -> np.ndarray:
        """[len(rows), pool rows]: True where the query of each row does not count."""
        excluded = self.queries_of_set[self.sets[rows]]
        own = np.flatnonzero(self.partner_rows[rows] >= 0)
        excluded[own, self.partner_rows[rows][own]] = True
        return excluded


def at_least_partner(xq: np.ndarray, xb: np.ndarray, partner_scores: np.ndarray,
                     excluded: BlockExclusions, chunk_rows: int) -> np.ndarray:
    """Per query, the rows of xb scoring >= its partner's score, excluded rows not counted."""
    counts = np.zeros(len(xq), np.int64)
    for start in range(0, len(xq), chunk_rows):
        rows = np.arange(start, min(start + chunk_rows, len(xq)))
        at_least = inner_products(xq[rows], xb) >= partner_scores[rows, None]
        counts[rows] = (at_least & ~excluded.mask(rows)).sum(axis=1)
    return counts
