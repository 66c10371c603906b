"""A task index budget: shards searched in groups, one group at a time, give the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from notellm2_udf.index.corpus import latest_embeddings, read_embeddings
from notellm2_udf.index.layout import read_manifest
from notellm2_udf.index.loaded import ID_BYTES_PER_NOTE, entry_bytes, shard_groups
from notellm2_udf.index.manifest import ShardEntry
from notellm2_udf.index.related import related_notes_df
from tests.support.index_runs import DAY, build, ids
from tests.support.tolerances import SCORE_ATOL
from tests.support.vectors import clustered_vectors, embeddings_pdf, exact_related, write_embeddings


def test_shards_are_grouped_in_order_within_the_budget():
    shards = [shard_entry(i, size) for i, size in enumerate([40, 40, 30, 90, 10, 10])]
    groups = shard_groups(shards, 100)
    assert [[s.file for s in group] for group in groups] == [
        ["s0", "s1"], ["s2"], ["s3", "s4"], ["s5"]]
    # A shard over the budget is searched alone (and logged), never split or dropped.
    assert [[s.file for s in g] for g in shard_groups(shards, 35)] == [
        ["s0"], ["s1"], ["s2"], ["s3"], ["s4", "s5"]]
    assert entry_bytes(shard_entry(0, 1000, rows=10)) == 1000 + 10 * ID_BYTES_PER_NOTE


def shard_entry(shard: int, size: int, rows: int = 0) -> ShardEntry:
    return ShardEntry(shard=shard, rows=rows, first_note_id=f"n{shard}", file=f"s{shard}",
                      ids=f"s{shard}.ids.parquet", bytes=size, build_s=0.0, offset=0)


@pytest.mark.parametrize("index_type", ["flat", "ivf"])
def test_groups_of_shards_give_the_rows_of_the_whole_index(spark, index_paths, index_type):
    xb = clustered_vectors(1500, seed=4)
    xb[700:706] = xb[7]  # exact ties held by different shards
    note_ids = ids(1500)
    write_embeddings(spark, index_paths[0], embeddings_pdf(note_ids, xb, dt=DAY))
    assert build(index_paths, "--index-type", index_type, "--num-shards", "5") == 0
    manifest = read_manifest(index_paths[1], DAY)
    corpus_df = latest_embeddings(read_embeddings(spark, str(index_paths[0])), day=DAY,
                                  window_days=30)
    two_shards = 2 * max(entry_bytes(entry) for entry in manifest.shards)

    def rows(budget, block_rows=10_000):
        found = related_notes_df(corpus_df, manifest=manifest, k=15, num_tasks=2,
                                 task_index_bytes=budget, query_block_rows=block_rows).collect()
        return sorted((r.note_id, r.rank, r.related_note_id, r.score) for r in found)

    whole = rows(1 << 40)
    assert len(shard_groups(manifest.shards, two_shards)) == 3
    for grouped in (rows(1, block_rows=128), rows(two_shards, block_rows=500)):
        assert [r[:3] for r in grouped] == [r[:3] for r in whole]
        np.testing.assert_allclose([r[3] for r in grouped], [r[3] for r in whole], atol=SCORE_ATOL)
    if index_type == "flat":
        expected = exact_related(note_ids, xb, 15)
        assert [r[2] for r in whole] == [other for q in sorted(expected)
                                         for other, _ in expected[q]]
