"""Recall@K and the paper's protocol on hand-made cases."""

import math

import numpy as np
import pandas as pd
import pytest

from notellm2_udf.evaluation.recall import (
    length_subsets,
    pair_kind_subsets,
    partner_ranks,
    recall_at,
    retrieval_arrays,
    select_test_pairs,
)


def test_select_test_pairs_keeps_each_note_once_by_descending_score():
    pairs = pd.DataFrame({"note_id": ["a", "a", "c", "d", "e", "f"],
                          "related_note_id": ["b", "c", "b", "e", "d", "f"],
                          "score": [1.0, 3.0, 2.0, 0.5, 0.5, 9.0]})
    kept = select_test_pairs(pairs.sample(frac=1.0, random_state=1))
    # (a, c) first; (c, b) and (a, b) reuse a note; of (d, e) / (e, d) the id order decides;
    # (f, f) is no pair.
    assert list(zip(kept["note_id"], kept["related_note_id"])) == [("a", "c"), ("d", "e")]


def test_recall_on_a_hand_made_case():
    # Queries q1..q3, pool p1..p4 on the unit circle; inner products give the ranking.
    angle = {"q1": 0, "q2": 90, "q3": 180, "p1": 10, "p2": 80, "p3": 100, "p4": 185}
    embeddings = pd.DataFrame({
        "note_id": [*angle, "q4", "p5"],
        "embedding": [np.array([math.cos(math.radians(a)), math.sin(math.radians(a))])
                      for a in angle.values()] + [None, None]})
    pairs = pd.DataFrame({"note_id": ["q1", "q2", "q3", "q4", "q1"],
                          "related_note_id": ["p2", "p3", "p4", "p1", "p5"]})
    xq, xb, target = retrieval_arrays(pairs, embeddings)
    assert xb.shape == (4, 2)  # the pool: p1..p4 (q* are queries, p5 has no embedding)
    ranks = partner_ranks(xq, xb, target)
    # q1 (0 deg): p1 10, p2 80, p3 100, p4 185 -> p2 is 2nd. q2 (90): p2 and p3 both 10 deg
    # away (a tie, counted against the partner) -> p3 is 2nd. q3 (180): p4 first.
    # q4 has no embedding, q1 -> p5 has none: misses.
    assert ranks.tolist() == [1, 1, 0, math.inf, math.inf]
    assert recall_at(ranks, [1, 2, 10]) == {"recall@1": 0.2, "recall@2": 0.6, "recall@10": 0.6}
    assert math.isnan(recall_at(ranks[:0], [1])["recall@1"])


def test_length_subsets_select_their_own_pairs_for_queries_and_targets():
    """Notes a..f with 5..60 characters (median 32.5 over the six notes of the pairs). Each
    subset is filtered first, then selected greedily: (c, f) loses to (a, c) among the short
    queries (c is taken), but is kept among the long targets, where (a, c) is not."""
    chars = {"a": 5, "b": 10, "c": 20, "d": 45, "e": 50, "f": 60}
    pairs = pd.DataFrame({"note_id": ["a", "c", "d", "e"],
                          "related_note_id": ["c", "f", "b", "a"],
                          "score": [4.0, 3.0, 2.0, 1.0]})
    subsets = length_subsets(pairs, chars)
    as_pairs = {name: list(zip(pdf["note_id"], pdf["related_note_id"]))
                for name, pdf in subsets.items()}
    assert as_pairs == {"short_query": [("a", "c")],
                        "long_query": [("d", "b"), ("e", "a")],
                        "short_target": [("a", "c"), ("d", "b")],
                        "long_target": [("c", "f")]}


def test_pair_kind_subsets_only_where_the_column_exists():
    pairs = pd.DataFrame({"note_id": list("abcd"), "pair_kind": ["text", "image", "image", None]})
    subsets = pair_kind_subsets(pairs)
    assert subsets["image_pairs"].tolist() == [False, True, True, False]
    assert subsets["text_pairs"].tolist() == [True, False, False, False]
    assert pair_kind_subsets(pairs.drop(columns="pair_kind")) == {}


@pytest.mark.parametrize("chunk_rows", [1, 2, 4096])
def test_partner_ranks_do_not_depend_on_chunking(chunk_rows):
    rng = np.random.default_rng(0)
    xq, xb = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(30, 8)).astype(np.float32)
    target = rng.integers(0, 30, size=5)
    brute = [(scores >= scores[t]).sum() - 1 for scores, t in zip(xq @ xb.T, target)]
    assert partner_ranks(xq, xb, target, chunk_rows=chunk_rows).tolist() == brute
