"""Train the coarse quantizer / codebooks once, then build the shards on executors.

All shards of an IVF index share one trained quantizer, so searching every shard with
nprobe=p probes exactly the lists an unsharded index would: sharding changes where vectors
live, not the results. Shards are ranges of note_id (sorted within), which makes the
global id `offset + position` follow note_id order: the search breaks score ties by
global id, i.e. by note_id, without looking at strings.

A rerun builds the same files from the same corpus, whatever its partitioning, its row
order or the Spark jobs run before: the training sample and the shard bounds are chosen by
a hash of note_id, each shard's vectors are added in note_id order (HNSW graphs depend
on which vectors a shard holds and in which order they arrive) with one thread for HNSW
(fill_shard), and files are named by shard id (docs/INDEX.md, "Build").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from notellm2_udf.atomic_files import write_atomic
from notellm2_udf.index.manifest import ShardEntry
from notellm2_udf.index.params import IndexParams
from notellm2_udf.spark.executor_resources import use_task_cpus_for_faiss

TRAINED = "trained.faiss"
SHARD_STATS = T.StructType([
    T.StructField("shard", T.IntegerType(), False),
    T.StructField("rows", T.LongType(), False),
    T.StructField("first_note_id", T.StringType(), False),
    T.StructField("file", T.StringType(), False),
    T.StructField("ids", T.StringType(), False),
    T.StructField("bytes", T.LongType(), False),
    T.StructField("build_s", T.DoubleType(), False),
])
# Sampled notes per shard whose quantiles are the shard bounds: a shard's share of the
# corpus then varies by about 1 / sqrt(1000) = 3% (Beta-distributed between two order
# statistics), well inside the quarter that build_index keeps between a shard's estimated
# memory and the task index budget.
BOUNDS_SAMPLE_PER_SHARD = 1000


def as_matrix(embeddings: pd.Series) -> np.ndarray:
    """float32 [n, d] from a Series of arrays (what Arrow gives for ARRAY<FLOAT>)."""
    if len(embeddings) == 0:
        return np.zeros((0, 0), dtype="float32")
    return np.ascontiguousarray(np.vstack(embeddings.to_numpy()), dtype="float32")


def concat_batches(batches: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    """All pandas batches of a task as one frame; None for an empty partition."""
    frames = [batch for batch in batches if len(batch)]
    return pd.concat(frames, ignore_index=True) if frames else None


def empty_index(params: IndexParams):
    """An untrained index of `params` (inner-product metric)."""
    import faiss

    index = faiss.index_factory(params.d, params.factory, faiss.METRIC_INNER_PRODUCT)
    if params.index_type == "ivfpq":
        # Polysemous training is for Hamming-filtered search, which we don't use; it
        # multiplies training time by ~10.
        index.do_polysemous_training = False
    return index


def train_index(xt: np.ndarray, *, params: IndexParams, threads: int = 1):
    """An empty index of `params`, trained on the sample `xt` [n, d]."""
    import faiss

    faiss.omp_set_num_threads(threads)
    index = empty_index(params)
    if params.needs_training:
        index.train(xt)
    return index


def fill_shard(trained, xb: np.ndarray):
    """A copy of the trained index holding `xb` [n, d] under ids 0..n-1."""
    import faiss

    index = faiss.clone_index(trained)
    if isinstance(index, faiss.IndexHNSW):
        # HNSW's links depend on the order in which threads insert the vectors: one thread
        # makes a rerun build the same graph (the same related lists), at a slower build.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            index.add(xb)
        finally:
            faiss.omp_set_num_threads(threads)
    else:
        index.add(xb)
    return index


def save_trained(index, build_dir: Path) -> None:
    """Write the trained, empty index where the shard builders read it."""
    import faiss

    write_atomic(Path(build_dir) / TRAINED, lambda tmp: faiss.write_index(index, tmp))


def train_on_executor(corpus_df: DataFrame, *, rows: int, size: int, params: IndexParams,
                      build_dir: Path, threads: int, seed: int = 0) -> int:
    """Train the empty index of `params` in one executor task on `size` of the corpus's
    `rows` vectors and write `trained.faiss` into `build_dir`; returns the number of
    training vectors.

    The sample streams to that task through a shuffle, never through the driver: the notes
    whose hash(note_id, seed) falls under a threshold that keeps about `size` + a margin of
    the corpus, of which the task trains on the `size` smallest hashes, in that order. The
    same corpus gives the same sample in the same order whatever its partitioning (a
    Bernoulli sample + limit depends on the order rows arrive in), so a rerun trains the
    same quantizer and gives the same related lists.
    """
    build_dir = str(build_dir)
    key = F.xxhash64("note_id", F.lit(seed))

    def train(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        sample_pdf = concat_batches(batches)
        if sample_pdf is None:
            return
        sample_pdf = sample_pdf.sort_values(["_key", "note_id"]).head(size)
        index = train_index(as_matrix(sample_pdf["embedding"]), params=params, threads=threads)
        save_trained(index, Path(build_dir))
        yield pd.DataFrame({"vectors": [len(sample_pdf)]})

    # One row: the training task's count.
    trained = (corpus_df.select(key.alias("_key"), "note_id", "embedding")
               .where(key <= sample_threshold(size, rows))
               .repartition(1).mapInPandas(train, "vectors long").collect())
    return trained[0]["vectors"] if trained else 0


def sample_threshold(size: int, n: int) -> int:
    """The 64-bit hash below which about `size` of `n` uniformly hashed rows fall, with a
    margin of 10 standard deviations (short by chance: once in ~10^23 runs)."""
    fraction = min(1.0, (size + 10 * size ** 0.5 + 10) / max(n, 1))
    return min(2**63 - 1, int(-(2**63) + fraction * 2**64))


def shard_bounds(corpus_df: DataFrame, *, rows: int, num_shards: int,
                 seed: int = 0) -> list[str]:
    """The num_shards - 1 note_ids that cut the corpus into note_id ranges of about equal
    size; shard s holds the note_ids in [bounds[s - 1], bounds[s]).

    They are quantiles of the notes of smallest hash(note_id, seed): the same corpus gives
    the same bounds whatever its partitioning, row order or the jobs run before. (Spark's
    range partitioner samples each partition with a seed drawn from the RDD's id, which
    moves the bounds from run to run.)
    """
    size = BOUNDS_SAMPLE_PER_SHARD * num_shards
    key = F.xxhash64("note_id", F.lit(seed))
    # Bounded: about BOUNDS_SAMPLE_PER_SHARD note_ids per shard (64k ids for 64 shards).
    sample = sorted(row["note_id"] for row in corpus_df.where(
        key <= sample_threshold(size, rows)).select("note_id").collect())
    if not sample:
        return []
    return [sample[len(sample) * s // num_shards] for s in range(1, num_shards)]


def shard_of(bounds: list[str]):
    """A pandas UDF: the shard of each note_id under `bounds`, by binary search (Python
    strings, ordered by code point as Spark orders note_id: UTF-8 bytes)."""
    cuts = np.array(bounds, dtype=object)

    @F.pandas_udf(T.IntegerType())
    def shard(note_ids: pd.Series) -> pd.Series:
        return pd.Series(np.searchsorted(cuts, note_ids.to_numpy(dtype=object), side="right"),
                         dtype="int32")

    return shard


def task_keys(spark, num_shards: int) -> list[int]:
    """keys[s]: a long that `repartition(num_shards, key)` sends to partition s.

    Spark hashes a repartition key into pmod(murmur3(key, 42), n), which F.hash computes:
    the shard numbers themselves would leave about a third of the tasks without a shard and
    give others two or three to build one after the other. Whatever Spark does, only the
    placement changes, not the files: a task builds each shard it receives.
    """
    # One row per partition: bounded. 64 n candidates miss a partition with odds e^-64.
    rows = (spark.range(64 * num_shards)
            .groupBy(F.pmod(F.hash("id"), F.lit(num_shards)).alias("partition"))
            .agg(F.min("id").alias("key")).collect())
    keys = {row["partition"]: row["key"] for row in rows}
    return [keys.get(s, s) for s in range(num_shards)]


def build_shards_df(corpus_df: DataFrame, *, rows: int, num_shards: int, params: IndexParams,
                    build_dir: Path) -> DataFrame:
    """One row of SHARD_STATS per non-empty shard; the shard files are written by executors.

    The corpus (`rows` notes) is cut at `shard_bounds`; each shard goes to a task of its own
    (task_keys), sorted by note_id. A task builds the shards it receives one after the
    other, each as its rows end, and names their files by shard number. `build_dir` holds
    `trained.faiss` for the IVF types and must be readable by executors.
    """
    build_dir = str(build_dir)
    spark = corpus_df.sparkSession
    bounds = shard_bounds(corpus_df, rows=rows, num_shards=num_shards)
    keys = F.array(*[F.lit(key).cast("long") for key in task_keys(spark, num_shards)])

    def build(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import faiss

        use_task_cpus_for_faiss()
        trained = None
        pending: list[pd.DataFrame] = []
        started = None
        for batch in batches:
            # Sorted by shard: each shard's rows are contiguous.
            for shard, shard_rows in batch.groupby("_shard", sort=False):
                if pending and pending[0]["_shard"].iat[0] != shard:
                    yield write_shard(pd.concat(pending, ignore_index=True), trained, started)
                    pending = []
                if not pending:
                    started = time.monotonic()
                    if trained is None:
                        trained = (faiss.read_index(str(Path(build_dir) / TRAINED))
                                   if params.needs_training else empty_index(params))
                pending.append(shard_rows)
        if pending:
            yield write_shard(pd.concat(pending, ignore_index=True), trained, started)

    def write_shard(shard_pdf: pd.DataFrame, trained, started: float) -> pd.DataFrame:
        import faiss
        import pyarrow as pa
        import pyarrow.parquet as pq

        index = fill_shard(trained, as_matrix(shard_pdf["embedding"]))
        shard = int(shard_pdf["_shard"].iat[0])
        name = f"shard-{shard:05d}"
        path = Path(build_dir) / f"{name}.faiss"
        write_atomic(path, lambda tmp: faiss.write_index(index, tmp))
        ids = pa.table({"note_id": pa.array(shard_pdf["note_id"], pa.string())})
        write_atomic(Path(build_dir) / f"{name}.ids.parquet", lambda tmp: pq.write_table(ids, tmp))
        return pd.DataFrame([{
            "shard": shard, "rows": len(shard_pdf), "first_note_id": shard_pdf["note_id"].iat[0],
            "file": path.name, "ids": f"{name}.ids.parquet", "bytes": path.stat().st_size,
            "build_s": time.monotonic() - started,
        }])

    return (
        corpus_df.select("note_id", "embedding")
        .withColumn("_shard", shard_of(bounds)("note_id"))
        .repartition(num_shards, F.element_at(keys, F.col("_shard") + 1))
        .sortWithinPartitions("_shard", "note_id")
        .mapInPandas(build, SHARD_STATS)
    )


def shard_entries(stats: list[dict]) -> tuple[ShardEntry, ...]:
    """Manifest entries of the shards in shard (= note_id) order, with their global id
    `offset`."""
    entries, offset = [], 0
    for stat in sorted(stats, key=lambda s: s["shard"]):
        entries.append(ShardEntry(**stat, offset=offset))
        offset += stat["rows"]
    return tuple(entries)
