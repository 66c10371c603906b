"""The exact search the recall checks against: numpy brute force in its plainest form gives
the same lists, in the order (score desc, note_id asc), ties at the k-th score included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm2_udf.index.exact_search import batch_candidates, exact_top_k, top_k_of

QUERIES = [0, 5, 17, 42, 59]


def tied_corpus(n: int = 60, d: int = 5):
    """Entries in {0, 0.5, 1}: every inner product is exact in float32, whatever the kernel
    or the summation order, so equal scores are real ties. Ids in shuffled order."""
    rng = np.random.default_rng(3)
    vectors = rng.integers(0, 3, size=(n, d)).astype("float32") / 2
    vectors[n // 2] = vectors[0]  # a duplicate: tied for every query
    note_ids = np.array([f"note-{i:03d}" for i in rng.permutation(n)], dtype=object)
    return note_ids, vectors


def brute_force(note_ids, vectors, queries, k):
    """[(note_id, score)] of each query: every other note sorted by (-score, note_id)."""
    lists = []
    for q in queries:
        scores = vectors @ vectors[q]
        order = sorted((i for i in range(len(note_ids)) if i != q),
                       key=lambda i: (-scores[i], note_ids[i]))
        lists.append([(note_ids[i], float(scores[i])) for i in order[:k]])
    return lists


def fold(note_ids, vectors, queries, k, batch_rows):
    """What one corpus task does with its batches."""
    xq, query_ids = vectors[queries], note_ids[queries]
    scores = np.zeros((len(queries), 0), dtype="float32")
    names = np.zeros((len(queries), 0), dtype=object)
    for start in range(0, len(note_ids), batch_rows):
        batch = pd.DataFrame({"note_id": note_ids[start:start + batch_rows],
                              "embedding": list(vectors[start:start + batch_rows])})
        batch_scores, batch_names = batch_candidates(xq, query_ids, batch, k)
        scores, names = top_k_of(np.hstack([scores, batch_scores]),
                                 np.hstack([names, batch_names]), k)
    return [[(name, float(score)) for name, score in zip(row_names, row_scores)
             if name is not None] for row_names, row_scores in zip(names, scores)]


@pytest.mark.parametrize("batch_rows", [1, 3, 7, 60])
@pytest.mark.parametrize("k", [1, 4, 10])
def test_batches_fold_into_the_exact_lists(batch_rows, k):
    note_ids, vectors = tied_corpus()
    assert fold(note_ids, vectors, QUERIES, k, batch_rows) == brute_force(
        note_ids, vectors, QUERIES, k)


def test_ties_at_the_kth_score_were_exercised():
    note_ids, vectors = tied_corpus()
    cut_in_a_tie = 0
    for q in QUERIES:
        scores = np.sort(np.delete(vectors @ vectors[q], q))[::-1]
        cut_in_a_tie += scores[3] == scores[4]
    assert cut_in_a_tie >= 3


def test_a_corpus_smaller_than_k_gives_every_other_note():
    note_ids, vectors = tied_corpus(n=4)
    assert fold(note_ids, vectors, [1], 10, 2) == brute_force(note_ids, vectors, [1], 10)
    assert len(fold(note_ids, vectors, [1], 10, 2)[0]) == 3


@pytest.mark.parametrize("partitions", [1, 3])
def test_the_spark_search_gives_the_brute_force_lists(spark, partitions):
    note_ids, vectors = tied_corpus()
    corpus_df = spark.createDataFrame(
        [(note_id, vector.tolist()) for note_id, vector in zip(note_ids, vectors)],
        "note_id string, embedding array<float>").repartition(partitions)
    queries = [42, 0, 30, 17]  # 30 is 0's duplicate
    queries_pdf = pd.DataFrame({"note_id": note_ids[queries], "embedding": list(vectors[queries])})
    found = exact_top_k(corpus_df, queries_pdf, k=4)
    assert found["query_id"].tolist() == [q for q in note_ids[queries] for _ in range(4)]
    assert found["rank"].tolist() == [1, 2, 3, 4] * 4
    assert [list(zip(rows["note_id"], rows["score"].astype(float)))
            for _, rows in found.groupby("query_id", sort=False)] == brute_force(
        note_ids, vectors, queries, 4)


def test_no_queries_give_no_rows_and_k_is_checked(spark):
    corpus_df = spark.createDataFrame([("a", [1.0])], "note_id string, embedding array<float>")
    assert exact_top_k(corpus_df, pd.DataFrame({"note_id": [], "embedding": []}), k=3).empty
    with pytest.raises(ValueError, match="k must be >= 1"):
        exact_top_k(corpus_df, pd.DataFrame({"note_id": ["a"], "embedding": [[1.0]]}), k=0)
