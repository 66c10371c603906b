"""Search a set of shards and merge the per-shard top-k exactly (numpy and FAISS, no Spark).

Global ids (shard offset + position) follow note_id order (see shards.py), so ordering
candidates by (score desc, global id asc) is the contract's (score desc, related_note_id
asc) and the merge is plain integer work. That order is strict (ids are unique), so the
top-k of a whole corpus is the top-k of the union of the top-k of any split of its shards:
merging groups of shards one after the other (related.py) is as exact as merging all shards
at once.
"""

from __future__ import annotations

import numpy as np

MISSING = np.iinfo(np.int64).max
# Global ids below this fit the low half of one int64 sort key (score above them).
ID_BITS = 32
NO_ID = (1 << ID_BITS) - 1


def merge_topk(D: np.ndarray, G: np.ndarray, k: int, *, exclude: np.ndarray | None = None):
    """Top-k of candidate lists D, G [nq, c] (scores, global ids; G < 0 = no result).

    `exclude` [nq] drops each query's own id; a NaN score is no result either. Returns
    D, G [nq, k] ordered by score desc, then id asc; rows with fewer than k candidates end
    with G = -1, D = -inf.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    invalid = (G < 0) | np.isnan(D)
    if exclude is not None:
        invalid |= G == np.asarray(exclude)[:, None]
    D = np.where(invalid, np.float32(-np.inf), D).astype("float32", copy=False)
    if G.size and G.max() >= NO_ID:
        D, G = _merge_by_lexsort(D, np.where(invalid, MISSING, G), k)
    else:
        D, G = _merge_by_key(D, np.where(invalid, NO_ID, G), k)
    if D.shape[1] < k:
        pad = k - D.shape[1]
        D = np.pad(D, ((0, 0), (0, pad)), constant_values=-np.inf)
        G = np.pad(G, ((0, 0), (0, pad)), constant_values=-1)
    return D, G


def _merge_by_key(D: np.ndarray, G: np.ndarray, k: int):
    """merge_topk's order as one int64 per candidate, (-score bits) << 32 | id, sorted row by
    row: 5-7x faster than a two-key lexsort at [100k, 200..816] (benchmarks/merge_topk.py),
    which matters since a grouped search merges once per shard set and once per group for
    every block. Missing candidates carry NO_ID and -inf."""
    bits = _ordered_bits((D + np.float32(0)).view(np.int32))  # -0.0 ties +0.0, as in a sort
    keys = -bits.astype(np.int64)
    keys <<= ID_BITS
    keys |= G
    keys.sort(axis=1)
    keys = keys[:, :k]
    G = keys & NO_ID
    D = _ordered_bits((-(keys >> ID_BITS)).astype(np.int32)).view(np.float32)
    missing = G == NO_ID
    G[missing] = -1
    D[missing] = -np.inf
    return D, G


def _ordered_bits(bits: np.ndarray) -> np.ndarray:
    """float32 bit patterns (as int32) <-> int32s that order like the floats (an involution)."""
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


def _merge_by_lexsort(D: np.ndarray, G: np.ndarray, k: int):
    """merge_topk for global ids past NO_ID (over 4 billion notes): two-key sort."""
    order = np.lexsort((G, -D), axis=-1)[:, :k]
    D, G = np.take_along_axis(D, order, 1), np.take_along_axis(G, order, 1)
    G[G == MISSING] = -1
    return D, G


def search_shards(shards: list[tuple[object, int]], xq: np.ndarray, k: int, *,
                  exclude: np.ndarray | None = None, coarse: tuple | None = None):
    """Exact merge of the per-shard results of (index, offset) shards; D, G [nq, k].

    `coarse`: the queries' IVF lists and distances when the caller has them (every shard
    of a build shares one quantizer, see coarse_assignment); computed here otherwise.

    Each shard returns its top-(k+2): k+1 leave k once the query itself is dropped, and one
    more shows whether the shard cut a tie at the merged k-th score (FAISS picks among
    equal scores in its own order); those rare rows get all of the shard's candidates at
    that score by range search, so the boundary follows note_id order too.
    """
    results = []
    if coarse is None:
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
