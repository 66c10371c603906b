"""Recall@K and the paper's protocol on hand-made cases, and the Spark versions against the
plain ones."""

import math

import numpy as np
import pandas as pd
import pytest

from notellm2_udf.evaluation.ranking import (
    BlockExclusions,
    RankingSettings,
    at_least_partner,
    partner_ranks,
)
from notellm2_udf.evaluation.recall import (
    length_subsets,
    pair_kind_recalls,
    recall_by_set,
    select_test_pairs,
)
from notellm2_udf.evaluation.selection import select_test_pairs_df

EMBEDDINGS_SCHEMA = "note_id string, embedding array<float>"
PAIRS_SCHEMA = "note_id string, related_note_id string, score double"


def as_pairs(pairs) -> list[tuple[str, str]]:
    if not isinstance(pairs, pd.DataFrame):
        pairs = pairs.toPandas()
    return sorted(zip(pairs["note_id"], pairs["related_note_id"]))


def test_select_test_pairs_keeps_each_note_once_by_descending_score(spark):
    pairs = pd.DataFrame({"note_id": ["a", "a", "c", "d", "e", "f"],
                          "related_note_id": ["b", "c", "b", "e", "d", "f"],
                          "score": [1.0, 3.0, 2.0, 0.5, 0.5, 9.0]})
    kept = select_test_pairs(pairs.sample(frac=1.0, random_state=1))
    # (a, c) first; (c, b) and (a, b) reuse a note; of (d, e) / (e, d) the id order decides;
    # (f, f) is no pair.
    assert list(zip(kept["note_id"], kept["related_note_id"])) == [("a", "c"), ("d", "e")]
    for local_pairs in (0, 100):
        assert as_pairs(select_test_pairs_df(spark.createDataFrame(pairs), local_pairs)) == [
            ("a", "c"), ("d", "e")]


def test_the_rounds_in_spark_select_what_the_greedy_selects(spark):
    """Random pair graphs with chains and tied scores: the Spark rounds (every pair in rounds,
    or the last ones in one task) keep exactly the greedy's pairs, with their other columns."""
    rng = np.random.default_rng(3)
    notes = [f"n{i:03d}" for i in range(120)]
    pairs = pd.DataFrame({"note_id": rng.choice(notes, 400),
                          "related_note_id": rng.choice(notes, 400),
                          "score": rng.integers(0, 20, 400) / 4.0})
    pairs["kind"] = [f"k{i}" for i in range(len(pairs))]
    pairs = pairs.drop_duplicates(["note_id", "related_note_id", "score"])
    expected = select_test_pairs(pairs)
    pairs_df = spark.createDataFrame(pairs).repartition(3)
    for local_pairs in (0, 50):
        kept = select_test_pairs_df(pairs_df, local_pairs).toPandas()
        assert sorted(map(tuple, kept[list(pairs.columns)].to_numpy().tolist())) == sorted(
            map(tuple, expected.to_numpy().tolist()))


def unit_circle_embeddings(spark):
    # Queries q1..q3, pool p1..p4 on the unit circle; inner products give the ranking.
    angle = {"q1": 0, "q2": 90, "q3": 180, "p1": 10, "p2": 80, "p3": 100, "p4": 185}
    return spark.createDataFrame(
        [(note_id, [math.cos(math.radians(a)), math.sin(math.radians(a))])
         for note_id, a in angle.items()] + [("q4", None), ("p5", None)], EMBEDDINGS_SCHEMA)


@pytest.mark.parametrize("block_rows", [1, 2, 8192])
def test_recall_on_a_hand_made_case(spark, block_rows):
    pairs_df = spark.createDataFrame(pd.DataFrame({
        "note_id": ["q1", "q2", "q3", "q4", "q1"],
        "related_note_id": ["p2", "p3", "p4", "p1", "p5"]}))
    ranked_df = partner_ranks({"all": pairs_df, "none": pairs_df.limit(0)},
                              unit_circle_embeddings(spark),
                              RankingSettings(block_rows=block_rows, chunk_rows=1))
    ranks = {(row.note_id, row.related_note_id): row["rank"] for row in ranked_df.collect()}
    # The pool: p1..p4 (q* are queries, p5 has no embedding).
    # q1 (0 deg): p1 10, p2 80, p3 100, p4 185 -> p2 is 2nd. q2 (90): p2 and p3 both 10 deg
    # away (a tie, counted against the partner) -> p3 is 2nd. q3 (180): p4 first.
    # q4 has no embedding, q1 -> p5 has none: misses.
    assert ranks == {("q1", "p2"): 1, ("q2", "p3"): 1, ("q3", "p4"): 0, ("q4", "p1"): None,
                     ("q1", "p5"): None}
    recalls = recall_by_set(ranked_df, ["all", "none"], [1, 2, 10])
    assert recalls["all"] == {"recall@1": 0.2, "recall@2": 0.6, "recall@10": 0.6}
    assert math.isnan(recalls["none"]["recall@1"])


def test_length_subsets_select_their_own_pairs_for_queries_and_targets(spark):
    """Notes a..f with 5..60 characters (median 32.5 over the six notes of the pairs). Each
    subset is filtered first, then selected greedily: (c, f) loses to (a, c) among the short
    queries (c is taken), but is kept among the long targets, where (a, c) is not."""
    chars_df = spark.createDataFrame(pd.DataFrame({
        "note_id": list("abcdef"), "chars": [5, 10, 20, 45, 50, 60]}))
    pairs_df = spark.createDataFrame(pd.DataFrame({
        "note_id": ["a", "c", "d", "e"], "related_note_id": ["c", "f", "b", "a"],
        "score": [4.0, 3.0, 2.0, 1.0]}))
    subsets = {name: as_pairs(select_test_pairs_df(df, 0))
               for name, df in length_subsets(pairs_df, chars_df).items()}
    assert subsets == {"short_query": [("a", "c")],
                       "long_query": [("d", "b"), ("e", "a")],
                       "short_target": [("a", "c"), ("d", "b")],
                       "long_target": [("c", "f")]}


def test_pair_kind_recalls_only_where_the_column_exists(spark):
    ranked_df = spark.createDataFrame(pd.DataFrame({
        "note_id": list("abcd"), "pair_kind": ["text", "image", "image", None],
        "rank": [0.0, 0.0, 5.0, 0.0]}))
    assert pair_kind_recalls(ranked_df, [1]) == {"image_pairs": {"recall@1": 0.5},
                                                 "text_pairs": {"recall@1": 1.0}}
    assert pair_kind_recalls(ranked_df.drop("pair_kind"), [1]) == {}


@pytest.mark.parametrize("chunk_rows", [1, 2, 4096])
def test_counts_do_not_depend_on_chunking(chunk_rows):
    rng = np.random.default_rng(0)
    xq, xb = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(30, 8)).astype(np.float32)
    target = rng.integers(0, 30, size=5)
    scores = xq @ xb.T
    brute = [(row >= row[t]).sum() - 1 for row, t in zip(scores, target)]
    partner_scores = scores[np.arange(5), target]
    excluded = BlockExclusions(np.zeros(5, np.int64), np.zeros(30, np.int64), target)
    assert at_least_partner(xq, xb, partner_scores, excluded, chunk_rows).tolist() == brute


def test_sharded_ranks_equal_brute_force_in_each_sets_pool(spark):
    """Many blocks each way, duplicate vectors among the pool (exact ties), two test-pair
    sets with different queries ranked in one pass: the ranks of a brute-force pass over
    each set's own pool (every note but its queries)."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(60, 4)).astype(np.float32)
    vectors[40:50] = vectors[30]  # ten copies of the partner of query n0 -> ties
    ids = [f"n{i}" for i in range(60)]
    embeddings_df = spark.createDataFrame([(i, v.tolist()) for i, v in zip(ids, vectors)],
                                          EMBEDDINGS_SCHEMA)
    sets = {"first": (list(range(20)), list(range(30, 50))),
            "second": (list(range(10, 25)), list(range(35, 50)))}
    pair_sets = {name: spark.createDataFrame(pd.DataFrame({
        "note_id": [ids[i] for i in queries], "related_note_id": [ids[i] for i in partners]}))
        for name, (queries, partners) in sets.items()}
    ranked_df = partner_ranks(pair_sets, embeddings_df, RankingSettings(block_rows=7,
                                                                        chunk_rows=3))
    ranks = {(row.test_set, row.note_id): row["rank"] for row in ranked_df.collect()}
    brute = {}
    for name, (queries, partners) in sets.items():
        pool = [i for i in range(60) if i not in queries]
        scores = vectors[queries].astype(np.float64) @ vectors[pool].astype(np.float64).T
        for q, p, row in zip(queries, partners, scores):
            brute[(name, ids[q])] = int((row >= row[pool.index(p)]).sum() - 1)
    assert ranks == brute
    assert ranks[("first", "n0")] >= 10
