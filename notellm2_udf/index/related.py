"""The related notes of every query row, searched on executors within a memory budget.

The queries are spread over tasks; each task searches its queries against every shard of
the build, holding at most `task_index_bytes` of index at a time (loaded.shard_groups):

- the whole index fits: it is loaded once per Python worker and kept for the next tasks,
  and each Arrow batch of queries is answered as it comes;
- it does not: the task takes its queries in blocks of QUERY_BLOCK_ROWS, loads the groups
  of shards one after the other, merges each group's exact top-k into the block's running
  top-k and drops the group before loading the next.

Both give the same rows: the order (score desc, global id asc) is strict, so the top-k of
the union of the groups' top-k is the corpus's top-k (search.py). The merge happens in the
task that holds the query, not in a shuffle: a shuffle keyed by query would move
k x groups candidate rows per note (400M rows at 1M notes in four groups) to save reading
each group once per block from the executor's local copy of the build.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from notellm2_udf.files.worker_cache import INDEXES
from notellm2_udf.index.loaded import LoadedShards, NamedRange, group_names, shard_groups
from notellm2_udf.index.manifest import IndexManifest, ShardEntry
from notellm2_udf.index.search import coarse_assignment, merge_topk
from notellm2_udf.spark.executor_resources import use_task_cpus_for_faiss

RELATED = T.StructType([
    T.StructField("note_id", T.StringType(), False),
    T.StructField("rank", T.IntegerType(), False),
    T.StructField("related_note_id", T.StringType(), False),
    T.StructField("score", T.FloatType(), False),
])
# Queries searched against one group before the next is loaded. A block costs about
# rows x (4d + 24k) bytes (queries, running top-k and one group's candidates: 250 MB at
# 64-d, k=100) and every block loads every group once, so a larger block reads the index
# fewer times for more memory.
QUERY_BLOCK_ROWS = 100_000
# Queries per search call and per output batch: k rows each (1M rows at k=100).
QUERY_SLICE_ROWS = 10_000


def related_notes_df(queries_df: DataFrame, *, manifest: IndexManifest, k: int, num_tasks: int,
                     task_index_bytes: int,
                     query_block_rows: int = QUERY_BLOCK_ROWS) -> DataFrame:
    """RELATED rows (note_id, rank, related_note_id, score) of every row of queries_df.

    queries_df needs note_id and embedding; they are spread over `num_tasks` tasks (a
    small corpus would otherwise arrive as one coalesced partition, i.e. one core). Arrow
    batches in and out: k rows per query are built by Arrow `take`, never as Python strings.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    groups = shard_groups(manifest.shards, task_index_bytes)

    def search(batches):
        use_task_cpus_for_faiss()
        if len(groups) == 1:
            index = whole_index(manifest)
            for batch in batches:
                if batch.num_rows:
                    xq, note_ids = query_arrays(batch)
                    D, G = index.search(xq, k, exclude=index.global_ids(note_ids))
                    yield from related_rows(batch, k, D, G, [index.names])
        else:
            for block in query_blocks(batches, query_block_rows):
                yield from related_in_groups(manifest, groups, block, k)

    return (queries_df.select("note_id", "embedding").repartition(num_tasks)
            .mapInArrow(search, RELATED))


def whole_index(manifest: IndexManifest) -> LoadedShards:
    """Every shard of the build, loaded once per Python worker (spark.python.worker.reuse).

    A module function, so that the search closure pickles a reference to it rather than
    the cache and its lock."""
    return INDEXES.get(manifest.build_dir, lambda: LoadedShards(manifest, manifest.shards))


def query_arrays(batch) -> tuple[np.ndarray, np.ndarray]:
    """xq float32 [n, d] and note_ids (numpy strings) of an Arrow batch of queries."""
    n = batch.num_rows
    xq = batch.column("embedding").flatten().to_numpy().astype("float32").reshape(n, -1)
    return xq, batch.column("note_id").to_numpy(zero_copy_only=False)


def query_blocks(batches: Iterable, rows: int) -> Iterator:
    """The task's Arrow batches regrouped into batches of about `rows` queries."""
    pending, count = [], 0
    for batch in batches:
        if batch.num_rows:
            pending.append(batch)
            count += batch.num_rows
        if count >= rows:
            yield one_batch(pending)
            pending, count = [], 0
    if pending:
        yield one_batch(pending)


def one_batch(batches: list):
    """The rows of Arrow record batches as one record batch."""
    import pyarrow as pa

    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def related_in_groups(manifest: IndexManifest, groups: list[list[ShardEntry]], block,
                      k: int) -> Iterator:
    """RELATED batches of a block of queries, the groups of shards loaded one at a time."""
    xq, _ = query_arrays(block)
    D = np.full((len(xq), k), -np.inf, dtype="float32")
    G = np.full((len(xq), k), -1, dtype="int64")
    coarse = None
    for entries in groups:
        group = LoadedShards(manifest, entries)
        # IVF: every shard holds the build's one quantizer, so the block is assigned to
        # lists once, not once per group.
        coarse = coarse or coarse_assignment(group.shards, xq)
        own = group.names.global_ids(block.column("note_id"))
        for lo in range(0, len(xq), QUERY_SLICE_ROWS):
            rows = slice(lo, lo + QUERY_SLICE_ROWS)
            D_group, G_group = group.search(
                xq[rows], k, exclude=own[rows],
                coarse=None if coarse is None else tuple(part[rows] for part in coarse))
            D[rows], G[rows] = merge_topk(np.hstack([D[rows], D_group]),
                                          np.hstack([G[rows], G_group]), k)
        del group
    yield from related_rows(block, k, D, G, group_names(manifest, groups))


def related_rows(queries, k: int, D: np.ndarray, G: np.ndarray,
                 names: Iterable[NamedRange]) -> Iterator:
    """RELATED record batches of D, G [nq, k]: per range of `names`, QUERY_SLICE_ROWS queries
    at a time (rows come out grouped by the range that names them: a Spark DataFrame has no
    row order to keep, and each range's ids are read once)."""
    import pyarrow as pa

    query_ids = queries.column("note_id")
    for ids in names:
        for lo in range(0, len(G), QUERY_SLICE_ROWS):
            G_slice = G[lo:lo + QUERY_SLICE_ROWS].ravel()
            found = np.flatnonzero((G_slice >= ids.first_id) & (G_slice < ids.end))
            if len(found) == 0:
                continue
            yield pa.RecordBatch.from_arrays([
                query_ids.take(pa.array(lo + found // k)),
                pa.array((found % k + 1).astype("int32")),
                ids.take(G_slice[found]),
                pa.array(D[lo:lo + QUERY_SLICE_ROWS].ravel()[found]),
            ], names=RELATED.names)
