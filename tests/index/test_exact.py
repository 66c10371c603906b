"""The recall pass's exact search, batch by batch (no Spark): folding any split of a corpus
into batches gives the brute-force top-k in the order (score desc, note_id asc), ties at the
k-th score included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm2_udf.index.exact import batch_candidates, merge_named


def tied_corpus(n: int = 60, d: int = 5):
    """Entries in {0, 0.5, 1}: every inner product is exact in float32, so ties are real."""
    rng = np.random.default_rng(3)
    vectors = rng.integers(0, 3, size=(n, d)).astype("float32") / 2
    note_ids = np.array([f"note-{i:03d}" for i in rng.permutation(n)], dtype=object)
    return note_ids, vectors


def brute_force(note_ids, vectors, queries, k):
    lists = []
    for q in queries:
        scores = vectors @ vectors[q]
        order = sorted((i for i in range(len(note_ids)) if i != q),
                       key=lambda i: (-scores[i], note_ids[i]))
        lists.append([note_ids[i] for i in order[:k]])
    return lists


def fold(note_ids, vectors, queries, k, batch_rows):
    xq, query_ids = vectors[queries], note_ids[queries]
    D = np.zeros((len(queries), 0), dtype="float32")
    names = np.full((len(queries), 0), None, dtype=object)
    for start in range(0, len(note_ids), batch_rows):
        batch = pd.DataFrame({"note_id": note_ids[start:start + batch_rows],
                              "embedding": list(vectors[start:start + batch_rows])})
        D_batch, found = batch_candidates(xq, query_ids, batch, k)
        D, names = merge_named(np.hstack([D, D_batch]), np.hstack([names, found]), k)
    return [[name for name in row if name is not None] for row in names]


@pytest.mark.parametrize("batch_rows", [1, 3, 7, 60])
@pytest.mark.parametrize("k", [1, 4, 10])
def test_batches_fold_into_the_exact_lists(batch_rows, k):
    note_ids, vectors = tied_corpus()
    queries = [0, 5, 17, 42, 59]
    assert fold(note_ids, vectors, queries, k, batch_rows) == brute_force(
        note_ids, vectors, queries, k)


def test_ties_at_the_kth_score_were_exercised():
    note_ids, vectors = tied_corpus()
    cut_in_a_tie = 0
    for q in [0, 5, 17, 42, 59]:
        scores = np.sort(np.delete(vectors @ vectors[q], q))[::-1]
        cut_in_a_tie += scores[3] == scores[4]
    assert cut_in_a_tie >= 3


def test_a_corpus_smaller_than_k_gives_every_other_note():
    note_ids, vectors = tied_corpus(n=4)
    assert fold(note_ids, vectors, [1], 10, 2) == brute_force(note_ids, vectors, [1], 10)
    assert len(fold(note_ids, vectors, [1], 10, 2)[0]) == 3
