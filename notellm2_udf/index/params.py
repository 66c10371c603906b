"""Index type and parameters by corpus size (`auto`), and the memory each shard needs.

Scores are inner products of unit vectors (cosine). The thresholds come from the 64-d
figures in docs/INDEX.md: exact search while all-pairs top-100 stays in seconds, IVF-Flat
while the raw vectors fit an executor comfortably, IVF-PQ beyond.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

INDEX_TYPES = ("auto", "flat", "ivf", "ivfpq", "hnsw")

# Exact all-pairs top-100 costs n^2 d flops: 50k notes at 64-d is ~4 s on 2 cores.
FLAT_MAX_ROWS = 50_000
# Raw float32 vectors beyond 8 GiB (33M notes at 64-d) are compressed with PQ.
IVF_FLAT_MAX_BYTES = 8 << 30
NPROBE = 16
HNSW_M = 32
EF_SEARCH = 128
# k-means wants at least this many training points per centroid (FAISS warns below).
TRAIN_POINTS_PER_CENTROID = 39
PQ_CENTROIDS = 256
# Below this a shard is not worth a task of its own.
MIN_ROWS_PER_SHARD = 50_000


@dataclass(frozen=True)
class IndexParams:
    """What to build: `index_type` in flat|ivf|ivfpq|hnsw, for `d`-dimensional vectors.

    nlist: IVF lists (shared by all shards: one coarse quantizer is trained for the corpus);
    pq_m: PQ sub-quantizers of 8 bits; hnsw_m: HNSW links per node;
    search: FAISS ParameterSpace string applied before searching (e.g. "nprobe=16").
    """

    index_type: str
    d: int
    nlist: int = 0
    pq_m: int = 0
    hnsw_m: int = 0
    search: str = ""

    @property
    def factory(self) -> str:
        """The `faiss.index_factory` string, e.g. "IVF4000,Flat"."""
        return {
            "flat": "Flat",
            "ivf": f"IVF{self.nlist},Flat",
            "ivfpq": f"IVF{self.nlist},PQ{self.pq_m}",
            "hnsw": f"HNSW{self.hnsw_m}",
        }[self.index_type]

    @property
    def needs_training(self) -> bool:
        return self.index_type in ("ivf", "ivfpq")

    def train_size(self, n: int) -> int:
        """Training sample size for a corpus of `n` vectors (0: nothing to train)."""
        if not self.needs_training:
            return 0
        wanted = TRAIN_POINTS_PER_CENTROID * self.nlist
        if self.index_type == "ivfpq":
            wanted = max(wanted, TRAIN_POINTS_PER_CENTROID * PQ_CENTROIDS)
        return min(n, wanted)

    def shard_bytes(self, rows: int) -> int:
        """Approximate memory of a shard holding `rows` vectors once loaded, in bytes."""
        vector = 4 * self.d
        if self.index_type == "flat":
            return rows * vector
        if self.index_type == "hnsw":
            # Level 0 has 2M links per node; upper levels add ~1/M of that again.
            return rows * (vector + 4 * 2 * self.hnsw_m * (1 + 1 / self.hnsw_m))
        centroids = self.nlist * vector
        if self.index_type == "ivf":
            return centroids + rows * (vector + 8)
        return centroids + PQ_CENTROIDS * vector + rows * (self.pq_m + 8)

    def to_dict(self) -> dict:
        return asdict(self)


def choose_params(*, n: int, d: int, index_type: str = "auto", nprobe: int = NPROBE) -> IndexParams:
    """Parameters for a corpus of `n` vectors of dimension `d`.

    auto: flat up to FLAT_MAX_ROWS, IVF-Flat while n*d*4 <= IVF_FLAT_MAX_BYTES, IVF-PQ beyond.
    nlist ~ 4 sqrt(n) (4000 at 1M), capped so that every list gets its training points.
    """
    if index_type not in INDEX_TYPES:
        raise ValueError(f"index type must be one of {INDEX_TYPES}, got {index_type!r}")
    if n < 1 or d < 1:
        raise ValueError(f"need n >= 1 and d >= 1, got n={n}, d={d}")
    if index_type == "auto":
        if n <= FLAT_MAX_ROWS:
            index_type = "flat"
        elif n * d * 4 <= IVF_FLAT_MAX_BYTES:
            index_type = "ivf"
        else:
            index_type = "ivfpq"
    if index_type == "flat":
        return IndexParams("flat", d)
    if index_type == "hnsw":
        return IndexParams("hnsw", d, hnsw_m=HNSW_M, search=f"efSearch={EF_SEARCH}")
    nlist = max(1, min(round(4 * math.sqrt(n)), n // TRAIN_POINTS_PER_CENTROID))
    search = f"nprobe={min(nprobe, nlist)}"
    if index_type == "ivf":
        return IndexParams("ivf", d, nlist=nlist, search=search)
    if d % 2:
        raise ValueError(f"ivfpq needs an even dimension (2 dims per sub-quantizer), got {d}")
    # Two dimensions per 8-bit sub-quantizer keeps recall@100 above 0.95 on our data;
    # d/4 bytes (PQ16 at 64-d) loses ~3 points of recall.
    return IndexParams("ivfpq", d, nlist=nlist, pq_m=d // 2, search=search)


def default_num_shards(*, n: int, parallelism: int) -> int:
    """One shard per core the cluster offers, but no shard under MIN_ROWS_PER_SHARD rows."""
    return max(1, min(parallelism, n // MIN_ROWS_PER_SHARD))
