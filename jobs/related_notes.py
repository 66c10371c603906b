"""Top-k related notes of a day's notes, searched in that day's sharded FAISS index.

    spark-submit jobs/related_notes.py --date 2026-11-24 \
        --embeddings /lake/note_embeddings --index-dir /shared/notellm2-index \
        --related /lake/related_notes [--top-k 100] [--queries all|new] \
        [--recall-sample 200] [--task-index-mib MiB]

Queries: every note of the index's corpus (`all`), or only those whose latest embedding
is from `--date` (`new`). Each gets its top-k over all shards, itself excluded, ordered
by score desc then related_note_id asc; fewer than k when the corpus is smaller. The corpus
is the window's embeddings of the model version the index was built from. A search task
holds at most `--task-index-mib` of index at a time (default: the budget the index was
built with): an index larger than that is searched in groups of shards, one after the
other, with the same results (docs/INDEX.md, "Memory"). The day's
published marker is withdrawn first (readers stop trusting the day until it is validated
and published again), then `related_notes` is written (replaceWhere dt = date) and
registered as `notellm2.related_notes`. An empty index gives an empty day. The summary
reports `sampled_recall@k`, the tie-tolerant recall of `--recall-sample` queries against
exact search that validate_related gates the day on (notellm2_udf/index/recall.py).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from notellm2_udf.errors import JobInputError
from notellm2_udf.index.corpus import latest_embeddings, new_notes, read_embeddings
from notellm2_udf.index.layout import read_manifest
from notellm2_udf.index.loaded import DEFAULT_TASK_INDEX_MIB, shard_groups
from notellm2_udf.index.manifest import IndexManifest
from notellm2_udf.index.recall import sample_queries, sampled_recall
from notellm2_udf.index.related import related_notes_df
from notellm2_udf.job.runtime import JobSummary, job_main
from notellm2_udf.serving.publication import withdraw_marker
from notellm2_udf.settings.declared import option, required
from notellm2_udf.settings.shared import (
    day_setting,
    recall_sample_setting,
    table_setting,
    top_k_setting,
)
from notellm2_udf.settings.values import positive_int_arg
from notellm2_udf.spark.delta_io import read_day, register_table, replace_days
from notellm2_udf.spark.persist import persist_on_disk
from notellm2_udf.spark.session import session_conf
from schemas import RELATED_NOTES

log = logging.getLogger("notellm2.related_notes")
QUERIES_PER_TASK = 200_000
# Every search task writes rows of one day, i.e. one partition. By default Spark sorts each
# task's rows by the partition column before writing them: all of a task's rows go into
# the sorter first (at 1M notes 10 GB, spilling 1.8 GB to disk), so its search and its
# writing never overlap. With concurrent writers allowed the rows stream to Parquet as
# they come, no spill, 27% less JVM CPU at 1M. Spark falls back to sorting once the open
# writers reach the limit, so one day needs a limit of 2.
ONE_DAY_WRITE = {"spark.sql.maxConcurrentOutputFileWriters": "2"}


@dataclass(frozen=True)
class RelatedNotesSettings:
    """One run of the job: the day, its index, the tables, the queries."""

    date: str = day_setting()
    embeddings: str = table_setting("note_embeddings")
    index_dir: str = required(help="where build_index wrote the index")
    related: str = table_setting("related_notes")
    top_k: int = top_k_setting()
    queries: str = option("all", choices=("all", "new"),
                          help="every note of the index's corpus, or the day's new notes")
    recall_sample: int = recall_sample_setting("queries checked against exact search (0: skip)")
    task_index_mib: int | None = option(
        None, parse=positive_int_arg,
        help="most index a search task holds at once (default: the budget build_index used)")

    def task_index_bytes(self, manifest: IndexManifest) -> int:
        """The flag, else the budget the index was built with, else the default."""
        if self.task_index_mib is not None:
            return self.task_index_mib << 20
        return manifest.task_index_bytes or DEFAULT_TASK_INDEX_MIB << 20


def queries_of(corpus_df: DataFrame, *, day: str, queries: str) -> DataFrame:
    return corpus_df if queries == "all" else new_notes(corpus_df, day=day)


def with_day(related_df: DataFrame, *, day: str, model_version: str) -> DataFrame:
    return related_df.withColumn("dt", F.lit(day)).withColumn("model_version", F.lit(model_version))


def search_tasks(spark: SparkSession, rows: int) -> int:
    """At most QUERIES_PER_TASK queries (k rows each) per task, in a multiple of the cores.

    Equal tasks in whole waves: 5 tasks on 2 cores left one core idle for the last third
    of the search (1M notes, one run each on the shared machine: 212 s, 166 s with 6).
    """
    cores = spark.sparkContext.defaultParallelism
    return cores * -(-rows // (QUERIES_PER_TASK * cores))


def check_corpus_matches(corpus_df: DataFrame, manifest: IndexManifest) -> None:
    rows = corpus_df.count()
    if rows != manifest.rows:
        raise JobInputError(
            f"the index of {manifest.date} holds {manifest.rows} notes of model "
            f"{manifest.model_version}, its window now holds {rows}: rerun build_index")


def run(spark: SparkSession, settings: RelatedNotesSettings, summary: JobSummary) -> None:
    """Search the day's queries in its index and replace the day in `related_notes`."""
    day = settings.date
    manifest = read_manifest(settings.index_dir, day)
    if withdraw_marker(spark, settings.related, day):
        log.info("withdrew the published marker of %s: it is published again after "
                 "validation", day)
    if manifest.is_empty:
        write_empty_day(spark, settings, manifest, summary)
        return
    # Read four times (check, search, recall sample): dedupe once.
    corpus_df = persist_on_disk(latest_embeddings(
        read_embeddings(spark, settings.embeddings), day=day,
        window_days=manifest.window_days, model_version=manifest.model_version))
    try:
        check_corpus_matches(corpus_df, manifest)
        queries_df = queries_of(corpus_df, day=day, queries=settings.queries)
        started = time.monotonic()
        budget = settings.task_index_bytes(manifest)
        groups = len(shard_groups(manifest.shards, budget))
        log.info("searching %d shard(s) in %d group(s) of at most %d MiB per task",
                 len(manifest.shards), groups, budget >> 20)
        related_df = related_notes_df(queries_df, manifest=manifest, k=settings.top_k,
                                      num_tasks=search_tasks(spark, manifest.rows),
                                      task_index_bytes=budget)
        with session_conf(spark, ONE_DAY_WRITE):
            replace_days(with_day(related_df, day=day, model_version=manifest.model_version),
                         RELATED_NOTES, settings.related, day)
        register_table(spark, RELATED_NOTES, settings.related)
        search_s = time.monotonic() - started
        log.info("related notes of %s written in %.1fs", day, search_s)
        started = time.monotonic()
        recall = (sampled_recall_of_search(spark, corpus_df, queries_df, manifest, settings)
                  if settings.recall_sample else None)
        recall_s = time.monotonic() - started
    finally:
        corpus_df.unpersist()
    written_df = read_day(spark, settings.related, day)
    for key, value in [
        ("date", day), ("corpus", manifest.rows), ("index", manifest.factory),
        ("search", manifest.search_parameters or "exact"), ("shards", len(manifest.shards)),
        ("shard_groups", groups), ("task_index_mib", budget >> 20),
        ("queries", settings.queries), ("top_k", settings.top_k),
        ("rows", written_df.count()), ("search_write_s", round(search_s, 1)),
        (f"sampled_recall@{settings.top_k}", None if recall is None else round(recall, 4)),
        ("recall_s", round(recall_s, 1)),
        ("model_version", manifest.model_version), ("related", RELATED_NOTES.qualified_name),
    ]:
        summary.add(key, value)


def write_empty_day(spark: SparkSession, settings: RelatedNotesSettings,
                    manifest: IndexManifest, summary: JobSummary) -> None:
    """No embedded note in the window: the day has no related lists, said explicitly."""
    replace_days(spark.createDataFrame([], RELATED_NOTES.schema), RELATED_NOTES,
                 settings.related, settings.date)
    register_table(spark, RELATED_NOTES, settings.related)
    log.warning("the index of %s is empty: wrote an empty day", settings.date)
    for key, value in [("date", settings.date), ("corpus", 0), ("rows", 0),
                       ("model_version", manifest.model_version)]:
        summary.add(key, value)


def sampled_recall_of_search(spark: SparkSession, corpus_df: DataFrame, queries_df: DataFrame,
                             manifest: IndexManifest, settings: RelatedNotesSettings) -> float:
    """The sampled recall@k (index/recall.py) of the lists this search gives, on the
    queries that validate_related samples at the same size and seed.

    The sample is searched again rather than read back: the search is deterministic, and
    finding 200 notes in the k-rows-per-note table would scan all of it.
    """
    sample_pdf = sample_queries(queries_df, corpus_df, size=settings.recall_sample)
    sample_df = spark.createDataFrame(sample_pdf, "note_id string, embedding array<float>")
    # Bounded by --recall-sample x k rows.
    found_pdf = (related_notes_df(sample_df, manifest=manifest, k=settings.top_k, num_tasks=1,
                                  task_index_bytes=settings.task_index_bytes(manifest))
                 .toPandas().sort_values(["note_id", "rank"]))
    recall = sampled_recall(found_pdf, sample_pdf, corpus_df, k=settings.top_k)
    log.info("sampled_recall@%d over %d queries: %.4f", settings.top_k, len(sample_pdf), recall)
    return recall


def main(argv: Sequence[str] | None = None) -> int:
    return job_main("related_notes", RelatedNotesSettings, run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
