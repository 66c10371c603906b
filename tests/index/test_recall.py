"""The tie-tolerant recall, on hand-made lists (no Spark)."""

from __future__ import annotations

import numpy as np
import pytest

from notellm2_udf.index.recall import SCORE_TOLERANCE, tie_tolerant_recall


def recall(found, exact):
    return tie_tolerant_recall([np.array(found, dtype=float)], [np.array(exact, dtype=float)])


def test_a_list_scoring_like_the_exact_one_has_recall_1():
    assert recall([0.9, 0.8, 0.7], [0.9, 0.8, 0.7]) == 1.0


def test_a_note_tied_at_the_kth_score_counts_as_a_hit():
    # Exact top-3 scores 0.9, 0.8, 0.7, and another note at 0.7 that exact search ranked
    # 4th by note_id: the list holding it instead is as good.
    assert recall([0.9, 0.7, 0.8], [0.9, 0.8, 0.7]) == 1.0
    assert recall([0.9, 0.8, 0.6], [0.9, 0.8, 0.7]) == pytest.approx(2 / 3)


def test_scores_within_the_tolerance_tie():
    assert recall([0.9, 0.7 - SCORE_TOLERANCE / 2], [0.9, 0.7]) == 1.0
    assert recall([0.9, 0.7 - 2 * SCORE_TOLERANCE], [0.9, 0.7]) == 0.5


def test_a_short_list_is_measured_against_the_exact_top_n():
    # Two related notes where exact search has three: the exact 2nd score is the bar.
    assert recall([0.9, 0.8], [0.9, 0.8, 0.7]) == 1.0
    assert recall([0.9, 0.7], [0.9, 0.8, 0.7]) == 0.5
    # A list longer than the exact one (notes the corpus does not hold): capped at n.
    assert recall([0.9, 0.8, -np.inf], [0.9, 0.8]) == 1.0


def test_notes_outside_the_corpus_are_misses():
    assert recall([0.9, -np.inf], [0.9, 0.8]) == 0.5


def test_queries_without_exact_neighbours():
    assert recall([], []) == 1.0
    assert recall([0.5], []) == 0.0
    assert recall([], [0.5]) == 0.0


def test_the_sample_recall_is_the_mean_over_queries():
    found = [np.array([0.9, 0.8]), np.array([0.1, 0.0]), np.array([])]
    exact = [np.array([0.9, 0.8]), np.array([0.5, 0.1]), np.array([])]
    assert tie_tolerant_recall(found, exact) == pytest.approx((1 + 0.5 + 1) / 3)
    assert tie_tolerant_recall([], []) == 1.0
    with pytest.raises(ValueError, match="2 related lists for 1 exact"):
        tie_tolerant_recall(found[:2], exact[:1])
