"""Search every shard and merge the per-shard top-k exactly, on executors.

Global ids (shard offset + position) follow note_id order (see shards.py), so ordering
candidates by (score desc, global id asc) is the contract's (score desc, related_note_id
asc) and the merge is plain integer work.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from notellm2_udf.index.layout import local_build_dir
from notellm2_udf.spark.executor_resources import use_task_cpus_for_faiss
from notellm2_udf.spark.worker_cache import INDEXES

MISSING = np.iinfo(np.int64).max
RELATED = T.StructType([
    T.StructField("note_id", T.StringType(), False),
    T.StructField("rank", T.IntegerType(), False),
    T.StructField("related_note_id", T.StringType(), False),
    T.StructField("score", T.FloatType(), False),
])


def merge_topk(D: np.ndarray, G: np.ndarray, k: int, *, exclude: np.ndarray | None = None):
    """Top-k of candidate lists D, G [nq, c] (scores, global ids; G < 0 = no result).

    `exclude` [nq] drops each query's own id. Returns D, G [nq, k] ordered by score desc,
    then id asc; rows with fewer than k candidates end with G = -1, D = -inf.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    invalid = G < 0
    if exclude is not None:
        invalid |= G == np.asarray(exclude)[:, None]
    D = np.where(invalid, -np.inf, D).astype("float32")
    G = np.where(invalid, MISSING, G)
    order = np.lexsort((G, -D), axis=-1)[:, :k]
    D, G = np.take_along_axis(D, order, 1), np.take_along_axis(G, order, 1)
    if D.shape[1] < k:
        pad = k - D.shape[1]
        D = np.pad(D, ((0, 0), (0, pad)), constant_values=-np.inf)
        G = np.pad(G, ((0, 0), (0, pad)), constant_values=MISSING)
    G[G == MISSING] = -1
    return D, G


def search_shards(shards: list[tuple[object, int]], xq: np.ndarray, k: int, *,
                  exclude: np.ndarray | None = None):
    """Exact merge of the per-shard results of (index, offset) shards; D, G [nq, k].

    Each shard returns its top-(k+2): k+1 leave k once the query itself is dropped, and one
    more shows whether the shard cut a tie at the merged k-th score (FAISS picks among
    equal scores in its own order); those rare rows get all of the shard's candidates at
    that score by range search, so the boundary follows note_id order too.
    """
    results = []
    coarse = coarse_assignment(shards, xq)
    for index, offset in shards:
        D, I = (index.search(xq, k + 2) if coarse is None
                else index.search_preassigned(xq, k + 2, *coarse))
        results.append((D, np.where(I >= 0, I + offset, -1)))
    D, G = merge_topk(np.hstack([r[0] for r in results]), np.hstack([r[1] for r in results]), k,
                      exclude=exclude)
    for (index, offset), (D_shard, G_shard) in zip(shards, results):
        cut = (G_shard[:, -1] >= 0) & (G[:, -1] >= 0) & (D_shard[:, -1] >= D[:, -1])
        for row in np.flatnonzero(cut):
            D[row], G[row] = _with_boundary_ties(index, offset, xq[row], D[row], G[row], k,
                                                 None if exclude is None else exclude[row])
    return D, G


def coarse_assignment(shards: list[tuple[object, int]], xq: np.ndarray):
    """(lists, distances) [nq, nprobe] of the queries for IVF shards, None for other types.

    Every shard holds a copy of one trained quantizer (shards.py), so the queries are
    assigned to lists once and each shard scans its own lists for them
    (search_preassigned): what each shard's `search` does, less the repeated assignment
    and `search`'s own overhead. At 1M notes in 2 shards a batch of 10k queries took 2.0 s
    of CPU, now 1.15 s. With one thread `search` makes this very quantizer call on the
    whole batch, so the results are the same bits.
    """
    import faiss

    first = shards[0][0] if shards else None
    if not isinstance(first, faiss.IndexIVF):
        return None
    D, I = first.quantizer.search(xq, min(first.nprobe, first.nlist))
    return I, D


def _with_boundary_ties(index, offset, x, D, G, k, self_id):
    """Row D, G [k] merged with every candidate of the shard scoring >= its k-th score."""
    radius = np.nextafter(D[-1], np.float32(-np.inf))
    _, D_range, I_range = index.range_search(x[None], float(radius))
    G_range = I_range + offset
    new = ~np.isin(G_range, G)
    D, G = merge_topk(np.concatenate([D, D_range[new]])[None],
                      np.concatenate([G, G_range[new]])[None], k,
                      exclude=None if self_id is None else np.array([self_id]))
    return D[0], G[0]


class LoadedIndex:
    """The shards of one published build and the note_id of every global id."""

    def __init__(self, manifest: dict):
        import faiss
        import pyarrow as pa
        import pyarrow.parquet as pq

        build_dir = local_build_dir(manifest)
        self.shards = []
        ids = []
        for entry in manifest["shards"]:
            # mmap lets the Python workers of one executor share the page cache.
            index = faiss.read_index(str(build_dir / entry["file"]),
                                     faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            if manifest["search_parameters"]:
                faiss.ParameterSpace().set_index_parameters(
                    index, manifest["search_parameters"])
            self.shards.append((index, entry["offset"]))
            ids.append(pq.read_table(build_dir / entry["ids"])["note_id"])
        # Arrow strings for the output (taking rows copies no Python objects), numpy for
        # looking queries up.
        self.note_ids = pa.chunked_array(ids, pa.string()).combine_chunks()
        self.sorted_ids = self.note_ids.to_numpy(zero_copy_only=False)

    def global_ids(self, note_ids: np.ndarray) -> np.ndarray:
        """Global id of each note_id, -1 for notes not in the index."""
        if len(self.sorted_ids) == 0:
            return np.full(len(note_ids), -1)
        pos = np.searchsorted(self.sorted_ids, note_ids).clip(0, len(self.sorted_ids) - 1)
        return np.where(self.sorted_ids[pos] == note_ids, pos, -1)

    def related(self, queries, k: int):
        """RELATED rows of an Arrow batch of queries (note_id, embedding), themselves excluded."""
        import pyarrow as pa

        note_ids = queries.column("note_id")
        embeddings = queries.column("embedding")
        xq = embeddings.flatten().to_numpy().astype("float32").reshape(len(queries), -1)
        D, G = search_shards(self.shards, xq, k,
                             exclude=self.global_ids(note_ids.to_numpy(zero_copy_only=False)))
        found = np.flatnonzero(G.ravel() >= 0)
        return pa.RecordBatch.from_arrays([
            note_ids.take(pa.array(found // k)),
            pa.array((found % k + 1).astype("int32")),
            self.note_ids.take(pa.array(G.ravel()[found])),
            pa.array(D.ravel()[found]),
        ], names=RELATED.names)


def loaded_index(manifest: dict) -> LoadedIndex:
    """The index of `manifest`, loaded once per Python worker (spark.python.worker.reuse)."""
    return INDEXES.get(manifest["build_dir"], lambda: LoadedIndex(manifest))


def related_notes_df(queries_df: DataFrame, *, manifest: dict, k: int,
                     num_tasks: int) -> DataFrame:
    """RELATED rows (note_id, rank, related_note_id, score) of every row of queries_df.

    queries_df needs note_id and embedding; they are spread over `num_tasks` tasks (a
    small corpus would otherwise arrive as one coalesced partition, i.e. one core), and
    each task searches the whole index (all shards). Arrow batches in and out: k rows per
    query are built by Arrow `take`, never as Python strings.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")

    def search(batches):
        use_task_cpus_for_faiss()
        index = loaded_index(manifest)
        for batch in batches:
            if batch.num_rows:
                yield index.related(batch, k)

    return (queries_df.select("note_id", "embedding").repartition(num_tasks)
            .mapInArrow(search, RELATED))
