"""build_index and related_notes run in-process on synthetic embeddings, and the comparison
of their lists (the index job tests share these)."""

from __future__ import annotations

import numpy as np

from jobs import build_index, related_notes
from tests.support.tolerances import SCORE_ATOL

DAY = "2026-11-24"


def build(paths, *extra, day=DAY):
    embeddings, index_dir, _ = paths
    return build_index.main(["--date", day, "--embeddings", str(embeddings),
                             "--index-dir", str(index_dir), *extra])


def relate(paths, *extra, day=DAY):
    """related_notes; the recall sample (three more Spark jobs) only where a test asks."""
    embeddings, index_dir, related = paths
    if "--recall-sample" not in extra:
        extra = ("--recall-sample", "0", *extra)
    return related_notes.main(["--date", day, "--embeddings", str(embeddings),
                               "--index-dir", str(index_dir), "--related", related, *extra])


def ids(n, prefix="n"):
    return [f"{prefix}{i:05d}" for i in range(n)]


def assert_same_related(found, expected):
    """Same ids in the same order; scores equal up to summation order."""
    assert sorted(found) == sorted(expected)
    for note_id, pairs in expected.items():
        assert [other for other, _ in found[note_id]] == [other for other, _ in pairs], note_id
        np.testing.assert_allclose([s for _, s in found[note_id]], [s for _, s in pairs],
                                   atol=SCORE_ATOL)
