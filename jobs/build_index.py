"""Build the sharded FAISS index of a day's note embeddings.

    spark-submit jobs/build_index.py --date 2026-11-24 \
        --embeddings /lake/note_embeddings --index-dir /shared/notellm2-index \
        [--window-days 30] [--num-shards N] [--index-type auto|flat|ivf|ivfpq|hnsw] [--nprobe 16] \
        [--notes URI] [--errors URI] [--models-root DIR | --model-version V] \
        [--allow-incomplete-window] [--task-index-mib MiB]

Corpus: the latest embedding of every note with dt in the `--window-days` days ending at
`--date`, from one model version: `--model-version`; else with `--models-root` the pending
version of the registry if it has embedded the whole window, otherwise the serving one;
else the one version the window holds (several: exit 2). Every day of the window that has
notes (`--notes`; without it, days with rows of any version) must have embeddings or error
rows of that version, else exit 2 naming the missing days (`--allow-incomplete-window`
indexes what is there). Notes that arrived after their day was embedded are counted
(`late_notes` in the summary and the manifest). The coarse quantizer / codebooks are trained
on a seeded sample in one executor task (the sample never passes through the driver), the
shards are built by executors, at least as many as keep each shard under a quarter less
than `--task-index-mib` (the most index a related-notes task holds at once), then
`<index-dir>/dt=<date>/manifest.json` is replaced atomically (layout and cluster notes:
docs/INDEX.md). `--index-dir` must be visible to driver and executors. A window without
embeddings gives an explicit empty index (rows 0, no shards).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from notellm2_udf.days import window_bounds
from notellm2_udf.embedding.window_days import (
    DayAccount,
    account_days,
    check_complete,
    choose_version,
    known_notes,
    late_notes,
    missing_days,
)
from notellm2_udf.index.corpus import (
    check_corpus,
    corpus_facts,
    latest_embeddings,
    read_embeddings,
)
from notellm2_udf.index.layout import new_build_dir, publish
from notellm2_udf.index.loaded import DEFAULT_TASK_INDEX_MIB, ID_BYTES_PER_NOTE
from notellm2_udf.index.manifest import EMPTY, METRIC, Completeness, IndexManifest
from notellm2_udf.index.params import INDEX_TYPES, NPROBE, choose_params, default_num_shards
from notellm2_udf.index.shards import (
    TRAINED,
    build_shards_df,
    shard_entries,
    train_on_executor,
)
from notellm2_udf.inputs.notes import notes_in_window
from notellm2_udf.job.runtime import JobSummary, job_main
from notellm2_udf.registry.versions import read_state
from notellm2_udf.settings.declared import option, required
from notellm2_udf.settings.shared import day_setting, table_setting, window_days_setting
from notellm2_udf.settings.values import positive_int_arg
from notellm2_udf.spark.executor_resources import executor_cpus
from notellm2_udf.spark.persist import persist_on_disk
from notellm2_udf.spark.tables import read_table
from schemas import EMBEDDING_ERRORS

log = logging.getLogger("notellm2.build_index")


@dataclass(frozen=True)
class BuildIndexSettings:
    """One run of the job: the day, the embeddings, where the index goes, its shape."""

    date: str = day_setting()
    embeddings: str = table_setting("note_embeddings")
    index_dir: str = required(help="shared directory of the indexes")
    window_days: int = window_days_setting()
    num_shards: int | None = option(None, parse=positive_int_arg,
                                    help="default: one per core, at least 50k notes each")
    index_type: str = option("auto", choices=INDEX_TYPES, help="FAISS index kind")
    nprobe: int = option(NPROBE, parse=positive_int_arg,
                         help="IVF lists each query scans, kept in the index's search "
                              "parameters: more lists, higher recall, slower related notes "
                              "(recall@100 0.984 at 1M notes, 0.955 at 3M, docs/BENCHMARKS.md)")
    notes: str | None = option(None, help="notes Delta location: which days of the window "
                                          "have notes")
    errors: str | None = option(None, help="embedding_errors Delta location (a day whose notes "
                                           "all failed is then complete, not missing)")
    models_root: str | None = option(
        None, exclusive="version", help="model registry: index the pending version once its "
                                        "window is complete, else the serving one")
    model_version: str | None = option(None, exclusive="version", help="index this version")
    allow_incomplete_window: bool = option(
        False, help="index a window with missing days instead of failing")
    task_index_mib: int = option(DEFAULT_TASK_INDEX_MIB, parse=positive_int_arg,
                                 help="most index a related-notes task holds at once; shards "
                                      "are sized to fit it")


def window_accounts(spark: SparkSession, settings: BuildIndexSettings, embeddings_df,
                    first: str, last: str) -> tuple[str, dict[str, DayAccount]]:
    """The version to index and what it has embedded of the window (see module docstring)."""
    errors_df = (read_table(spark, settings.errors, EMBEDDING_ERRORS) if settings.errors
                 else spark.createDataFrame([], EMBEDDING_ERRORS.schema))
    notes_df = persist_on_disk(notes_in_window(spark, settings.notes, first, last)
                               if settings.notes else known_notes(embeddings_df, errors_df))
    if settings.model_version:
        candidates = [settings.model_version]
    elif settings.models_root:
        state = read_state(settings.models_root)
        candidates = [entry["version"] for entry in (state["pending"], state["serving"])
                      if entry]
    else:  # the one version the window holds; several, or none, is refused
        facts = corpus_facts(latest_embeddings(embeddings_df, day=settings.date,
                                               window_days=settings.window_days))
        candidates = [check_corpus(facts, day=settings.date,
                                   window_days=settings.window_days)[0]]
    try:
        return choose_version(candidates, lambda version: account_days(
            notes_df, embeddings_df, errors_df, version, first, last))
    finally:
        notes_df.unpersist()


def run(spark: SparkSession, settings: BuildIndexSettings,
        summary: JobSummary) -> IndexManifest:
    """Build and publish the index of `settings.date`; return its manifest."""
    started = time.monotonic()
    day, window_days = settings.date, settings.window_days
    first, last = window_bounds(day=day, window_days=window_days)
    embeddings_df = read_embeddings(spark, settings.embeddings)
    model_version, accounts = window_accounts(spark, settings, embeddings_df, first, last)
    if not settings.allow_incomplete_window:
        check_complete(accounts, model_version, first, last)
    late = late_notes(accounts)
    if late:
        log.warning("notes that arrived after their day was embedded (rerun those days): %s",
                    late)
    completeness = Completeness(days_with_notes=len(accounts),
                                missing_days=tuple(missing_days(accounts)), late_notes=late)
    summary.add("late_notes", sum(late.values()))
    # Read four times (facts, sample, range bounds, shards): dedupe once.
    corpus_df = persist_on_disk(latest_embeddings(
        embeddings_df, day=day, window_days=window_days, model_version=model_version))
    try:
        facts = corpus_facts(corpus_df)
        if facts.rows == 0:
            return publish_empty(settings, model_version, completeness, summary)
        model_version, d = check_corpus(facts, day=day, window_days=window_days)
        params = choose_params(n=facts.rows, d=d, index_type=settings.index_type,
                               nprobe=settings.nprobe)
        num_shards = shard_count(settings, params, rows=facts.rows,
                                 parallelism=spark.sparkContext.defaultParallelism)
        log.info("corpus %s: %d notes, %d-d, model %s -> %s in %d shard(s)", day,
                 facts.rows, d, model_version, params.factory, num_shards)
        build_dir = new_build_dir(settings.index_dir, day)

        train_started = time.monotonic()
        if params.needs_training:
            vectors = train_on_executor(corpus_df, rows=facts.rows,
                                        size=params.train_size(facts.rows), params=params,
                                        build_dir=build_dir, threads=executor_cpus(spark))
            log.info("trained %s on %d vectors in %.1fs", params.factory, vectors,
                     time.monotonic() - train_started)
        train_s = time.monotonic() - train_started

        # One row per shard.
        stats = [row.asDict() for row in build_shards_df(
            corpus_df, rows=facts.rows, num_shards=num_shards, params=params,
            build_dir=build_dir).collect()]
    finally:
        corpus_df.unpersist()
    shards = shard_entries(stats)
    manifest = IndexManifest(
        date=day, window_days=window_days, window=(first, last), model_version=model_version,
        dimension=d, metric=METRIC, index_type=params.index_type, factory=params.factory,
        search_parameters=params.search, params=params, rows=facts.rows, shards=shards,
        task_index_bytes=settings.task_index_mib << 20,
        trained=TRAINED if params.needs_training else None, completeness=completeness,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"), build=build_dir.name,
        build_dir=str(build_dir))
    publish(manifest)
    build_s = time.monotonic() - started
    largest = max(shard.rows for shard in shards)
    log.info("published %s (%d shards) in %.1fs", build_dir, len(shards), build_s)
    for key, value in [
        ("date", day), ("corpus", facts.rows), ("model_version", model_version),
        ("index", params.factory), ("search", params.search or "exact"),
        ("shards", len(shards)), ("rows_per_shard", [s.rows for s in shards]),
        ("largest_shard_mib", round(params.shard_bytes(largest) / 2**20, 1)),
        ("train_s", round(train_s, 1)), ("build_s", round(build_s, 1)),
        ("index_dir", str(build_dir.parent)),
    ]:
        summary.add(key, value)
    return manifest


def shard_count(settings: BuildIndexSettings, params, *, rows: int, parallelism: int) -> int:
    """--num-shards (or one per core, 50k notes at least), raised until a shard fits the task
    index budget with a quarter to spare: range shards come out unequal, by a few percent."""
    wanted = settings.num_shards or default_num_shards(n=rows, parallelism=parallelism)
    index_bytes = params.shard_bytes(rows) + ID_BYTES_PER_NOTE * rows
    needed = -(-index_bytes * 5 // (4 * (settings.task_index_mib << 20)))
    if needed > wanted:
        log.info("%d shards instead of %d: the index (~%d MiB) in shards of at most %d MiB",
                 needed, wanted, index_bytes >> 20, settings.task_index_mib)
    return max(wanted, needed)


def publish_empty(settings: BuildIndexSettings, model_version: str,
                  completeness: Completeness, summary: JobSummary) -> IndexManifest:
    """An explicit empty index: the window has no embedded note (empty or all-bad days)."""
    day = settings.date
    build_dir = new_build_dir(settings.index_dir, day)
    manifest = IndexManifest(
        date=day, window_days=settings.window_days,
        window=window_bounds(day=day, window_days=settings.window_days),
        model_version=model_version, dimension=None, metric=METRIC, index_type=EMPTY,
        factory=EMPTY, search_parameters=None, params=None, rows=0, shards=(),
        task_index_bytes=settings.task_index_mib << 20, trained=None,
        completeness=completeness, created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        build=build_dir.name, build_dir=str(build_dir))
    publish(manifest)
    log.warning("no embedded note in the window of %s: published an empty index", day)
    for key, value in [("date", day), ("corpus", 0), ("model_version", model_version),
                       ("index", "empty")]:
        summary.add(key, value)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    return job_main("build_index", BuildIndexSettings, run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
