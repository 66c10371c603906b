"""The validator's exact search (numpy, pipeline.validation) is kept apart from the one that
related_notes uses for its recall (FAISS, index.exact) on purpose: a check must not share the
code it checks. Here both run on the same window and must give the same lists."""

from __future__ import annotations

import numpy as np

from notellm2_udf.index.exact import exact_topk
from notellm2_udf.index.validation import exact_top_k

K = 4


def window_pdf():
    """20 notes whose scores tie a lot: entries in {0, 0.5, 1} make every inner product
    exact in float32, whatever the summation order, so ties are real in both searches."""
    rng = np.random.default_rng(7)
    vectors = rng.integers(0, 3, size=(20, 6)).astype("float32") / 2
    vectors[5] = vectors[3]  # identical notes: equal scores for every query
    vectors[11] = vectors[3]
    ids = [f"note-{i:02d}" for i in range(20)]
    return ids, vectors


def test_both_exact_searches_give_the_same_lists_ties_included(spark):
    ids, vectors = window_pdf()
    window_df = spark.createDataFrame(
        [(note_id, vector.tolist()) for note_id, vector in zip(ids, vectors)],
        "note_id string, embedding array<float>").repartition(3)
    queries = [0, 3, 5, 17]
    query_ids = [ids[q] for q in queries]
    xq = vectors[queries]

    import pandas as pd

    sample_pdf = pd.DataFrame({"note_id": query_ids, "embedding": list(xq)})
    by_index = exact_topk(window_df, sample_pdf, k=K)
    rows = exact_top_k(window_df, query_ids, xq, K).collect()
    by_validator = {
        query: [row["note_id"] for row in sorted(
            (r for r in rows if r["query_id"] == query), key=lambda r: (-r["score"], r["note_id"]))]
        for query in query_ids}

    expected, boundary_ties = {}, 0
    for q, query in zip(queries, query_ids):
        scores = vectors @ vectors[q]
        order = sorted((i for i in range(len(ids)) if i != q), key=lambda i: (-scores[i], ids[i]))
        expected[query] = [ids[i] for i in order[:K]]
        boundary_ties += scores[order[K - 1]] == scores[order[K]]
    assert by_index == expected
    assert by_validator == expected
    # Some lists were cut inside a run of equal scores: the tie-break was exercised.
    assert boundary_ties >= 2
