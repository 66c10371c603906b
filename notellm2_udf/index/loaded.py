"""Shards of a published build loaded in a Python worker, and how many fit a task at once.

A task holds at most `task_index_bytes` of index: the shards of a build are cut into
groups of consecutive shards (note_id ranges) within that budget, and a task with several
groups loads them one at a time (related.py). A build whose whole index fits the budget is
one group, loaded once per Python worker and kept for the next tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

from notellm2_udf.index.layout import local_build_dir
from notellm2_udf.index.manifest import IndexManifest, ShardEntry
from notellm2_udf.index.search import search_shards

log = logging.getLogger("notellm2.index")

# note_ids held by a loaded group: Python strs in a numpy object array for the query
# lookup and the Arrow copy that names the results. Measured (RSS growth at 1M ids):
# numpy 70 bytes per id of 9 characters, 79 of 21; Arrow 4 bytes + the characters.
ID_BYTES_PER_NOTE = 100
DEFAULT_TASK_INDEX_MIB = 1024


def entry_bytes(entry: ShardEntry) -> int:
    """Memory of one loaded shard: its FAISS file (read whole, or mapped page by page) and
    its note_ids."""
    return entry.bytes + ID_BYTES_PER_NOTE * entry.rows


def shard_groups(entries: Sequence[ShardEntry],
                 task_index_bytes: int) -> list[list[ShardEntry]]:
    """Consecutive shards in groups of at most `task_index_bytes` each (a shard larger than
    the budget is a group of its own, with a warning: a shard cannot be split at search
    time; build_index sizes shards from the same budget)."""
    if task_index_bytes < 1:
        raise ValueError(f"the task index budget must be >= 1 byte, got {task_index_bytes}")
    groups: list[list[ShardEntry]] = []
    used = 0
    for entry in entries:
        size = entry_bytes(entry)
        if size > task_index_bytes:
            log.warning("shard %s needs %.0f MiB, over the task index budget of %.0f MiB: "
                        "rebuild the index with the same --task-index-mib to split it",
                        entry.file, size / 2**20, task_index_bytes / 2**20)
        if groups and used + size <= task_index_bytes:
            groups[-1].append(entry)
            used += size
        else:
            groups.append([entry])
            used = size
    return groups


def read_ids(manifest: IndexManifest, entries: Sequence[ShardEntry]):
    """The note_ids of `entries` (consecutive shards) in global id order, as Arrow strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    build_dir = local_build_dir(manifest)
    columns = [pq.read_table(build_dir / entry.ids)["note_id"] for entry in entries]
    return pa.chunked_array(columns, pa.string()).combine_chunks()


class NamedRange:
    """The note_ids of the global ids first_id, first_id + 1, ... (Arrow strings)."""

    def __init__(self, first_id: int, note_ids):
        self.first_id = first_id
        self.note_ids = note_ids

    @property
    def end(self) -> int:
        return self.first_id + len(self.note_ids)

    def take(self, gids: np.ndarray):
        """The note_ids of global ids in [first_id, end)."""
        import pyarrow as pa

        return self.note_ids.take(pa.array(gids - self.first_id))

    def global_ids(self, note_ids) -> np.ndarray:
        """Global id of each of the Arrow `note_ids`, -1 for notes not in this range (an
        Arrow hash lookup: no Python string per id, one hash table per call)."""
        import pyarrow.compute as pc

        positions = pc.index_in(note_ids, value_set=self.note_ids)
        found = positions.is_valid().to_numpy(zero_copy_only=False)
        return np.where(found, self.first_id + positions.fill_null(0).to_numpy(), -1)


def group_names(manifest: IndexManifest,
                groups: list[list[ShardEntry]]) -> Iterator[NamedRange]:
    """The NamedRange of each group, its id files read when it is reached."""
    for entries in groups:
        yield NamedRange(entries[0].offset, read_ids(manifest, entries))


class LoadedShards:
    """Consecutive shards of one build: searched together, their results exactly merged.

    Global ids of the group run from `first_id` (its first shard's offset) on.
    """

    def __init__(self, manifest: IndexManifest, entries: Sequence[ShardEntry]):
        import faiss

        build_dir = local_build_dir(manifest)
        self.shards = []
        for entry in entries:
            # mmap lets the Python workers of one executor share the page cache.
            index = faiss.read_index(str(build_dir / entry.file),
                                     faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            if manifest.search_parameters:
                faiss.ParameterSpace().set_index_parameters(index, manifest.search_parameters)
            self.shards.append((index, entry.offset))
        # Arrow strings: taking rows for the output copies no Python objects.
        self.names = NamedRange(entries[0].offset if entries else 0,
                                read_ids(manifest, entries))
        self._sorted_ids = None

    def global_ids(self, note_ids: np.ndarray) -> np.ndarray:
        """Global id of each note_id (numpy strings), -1 for notes not in these shards.

        By binary search in the ids as numpy strings, made on the first call: for an index
        kept by the worker and asked batch after batch (one hash table per call, as
        NamedRange.global_ids builds, costs more than the search at 1M notes)."""
        if self._sorted_ids is None:
            self._sorted_ids = self.names.note_ids.to_numpy(zero_copy_only=False)
        ids = self._sorted_ids
        if len(ids) == 0:
            return np.full(len(note_ids), -1)
        pos = np.searchsorted(ids, note_ids).clip(0, len(ids) - 1)
        return np.where(ids[pos] == note_ids, self.names.first_id + pos, -1)

    def search(self, xq: np.ndarray, k: int, exclude: np.ndarray, coarse: tuple | None = None):
        """D, G [nq, k]: exact top-k of these shards for queries `xq`, global ids `exclude`
        (each query's own note, -1 for none) left out; `coarse` as in search_shards."""
        return search_shards(self.shards, xq, k, exclude=exclude, coarse=coarse)
