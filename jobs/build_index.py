"""Build the sharded FAISS index of a day's note embeddings.

    spark-submit jobs/build_index.py --date 2026-11-24 \
        --embeddings /lake/note_embeddings --index-dir /shared/notellm2-index \
        [--window-days 30] [--num-shards N] [--index-type auto|flat|ivf|ivfpq|hnsw]

Corpus: the latest embedding of every note with dt in the `--window-days` days ending at
`--date`; all of them from one model_version, else the job stops (exit 2). The coarse
quantizer / codebooks are trained on a sample on the driver, the shards are built by
executors, then `<index-dir>/dt=<date>/manifest.json` is replaced atomically (layout and
cluster notes: docs/INDEX.md). `--index-dir` must be visible to driver and executors.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import SparkSession

from notellm2_udf.index.layout import new_build_dir, publish
from notellm2_udf.index.params import INDEX_TYPES, choose_params, default_num_shards
from notellm2_udf.index.shards import (
    TRAINED,
    build_shards_df,
    save_trained,
    shard_entries,
    train_index,
    training_sample,
)
from notellm2_udf.pipeline.corpus import (
    check_corpus,
    corpus_facts,
    latest_embeddings,
    read_embeddings,
)
from notellm2_udf.spark.days import window_bounds
from notellm2_udf.spark.executor_resources import driver_cpus
from notellm2_udf.spark.job_args import day_arg, positive_int_arg
from notellm2_udf.spark.job_runtime import JobSummary, run_job
from notellm2_udf.spark.session import SparkSettings, build_spark_session

log = logging.getLogger("notellm2.build_index")


@dataclass(frozen=True)
class BuildIndexSettings:
    """One run of the job: the day, the embeddings, where the index goes, its shape."""

    date: str
    embeddings: str
    index_dir: str
    window_days: int = 30
    num_shards: int | None = None
    index_type: str = "auto"


def parse_args(argv: Sequence[str] | None) -> BuildIndexSettings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", required=True, type=day_arg, help="yyyy-MM-dd")
    parser.add_argument("--embeddings", required=True, help="note_embeddings Delta table URI")
    parser.add_argument("--index-dir", required=True, help="shared directory of the indexes")
    parser.add_argument("--window-days", type=positive_int_arg, default=30)
    parser.add_argument("--num-shards", type=positive_int_arg, default=None,
                        help="default: one per core, at least 50k notes each")
    parser.add_argument("--index-type", choices=INDEX_TYPES, default="auto")
    args = parser.parse_args(argv)
    return BuildIndexSettings(date=args.date, embeddings=args.embeddings,
                              index_dir=args.index_dir, window_days=args.window_days,
                              num_shards=args.num_shards, index_type=args.index_type)


def run(spark: SparkSession, settings: BuildIndexSettings, summary: JobSummary) -> dict:
    """Build and publish the index of `settings.date`; return its manifest."""
    started = time.monotonic()
    day, window_days = settings.date, settings.window_days
    # Read four times (facts, sample, range bounds, shards): dedupe once.
    corpus_df = latest_embeddings(
        read_embeddings(spark, settings.embeddings), day=day, window_days=window_days
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        facts = corpus_facts(corpus_df)
        model_version, d = check_corpus(facts, day=day, window_days=window_days)
        params = choose_params(n=facts.rows, d=d, index_type=settings.index_type)
        num_shards = settings.num_shards or default_num_shards(
            n=facts.rows, parallelism=spark.sparkContext.defaultParallelism)
        log.info("corpus %s: %d notes, %d-d, model %s -> %s in %d shard(s)", day,
                 facts.rows, d, model_version, params.factory, num_shards)
        build_dir = new_build_dir(settings.index_dir, day)

        train_started = time.monotonic()
        if params.needs_training:
            xt = training_sample(corpus_df, size=params.train_size(facts.rows), rows=facts.rows)
            save_trained(train_index(xt, params=params, threads=driver_cpus(spark)), build_dir)
            log.info("trained %s on %d vectors in %.1fs", params.factory, len(xt),
                     time.monotonic() - train_started)
        train_s = time.monotonic() - train_started

        stats = [row.asDict() for row in build_shards_df(
            corpus_df, num_shards=num_shards, params=params, build_dir=build_dir).collect()]
    finally:
        corpus_df.unpersist()
    shards = shard_entries(stats)
    first, last = window_bounds(day=day, window_days=window_days)
    manifest = {
        "date": day, "window_days": window_days, "window": [first, last],
        "model_version": model_version, "dimension": d, "metric": "inner_product",
        "index_type": params.index_type, "factory": params.factory,
        "search_parameters": params.search, "params": params.to_dict(),
        "rows": facts.rows, "shards": shards,
        "trained": TRAINED if params.needs_training else None,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    publish(build_dir, manifest)
    build_s = time.monotonic() - started
    largest = max(shard["rows"] for shard in shards)
    log.info("published %s (%d shards) in %.1fs", build_dir, len(shards), build_s)
    for key, value in [
        ("date", day), ("corpus", facts.rows), ("model_version", model_version),
        ("index", params.factory), ("search", params.search or "exact"),
        ("shards", len(shards)), ("rows_per_shard", [s["rows"] for s in shards]),
        ("largest_shard_mib", round(params.shard_bytes(largest) / 2**20, 1)),
        ("train_s", round(train_s, 1)), ("build_s", round(build_s, 1)),
        ("index_dir", str(build_dir.parent)),
    ]:
        summary.add(key, value)
    return {**manifest, "build": build_dir.name, "build_dir": str(build_dir)}


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)

    def body(summary: JobSummary) -> None:
        spark = build_spark_session(SparkSettings(app_name=f"build_index {settings.date}"))
        run(spark, settings, summary)

    return run_job("build_index", body)


if __name__ == "__main__":
    sys.exit(main())
