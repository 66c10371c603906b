"""
# notellm2_daily: one day of notes -> embeddings -> index -> related notes, validated, published

    resolve_settings >> wait_for_notes >> embed_notes >> embed_window >> build_index
        >> related_notes >> validate_related >> publish

**Which day.** The schedule is a `CronDataIntervalTimetable` at 00:00 UTC: the run that
fires at the end of day D covers [D, D+1) and its `{{ ds }}` is D, so it processes
`notes` partition dt=D (the run firing at 2026-11-26T00:00 processes 2026-11-25).
`dag.test(logical_date=D)` and `airflow dags trigger --logical-date D` process D as well;
`params.day` overrides the day of a manual run. Every task reads and writes only that
day's partition (Delta `replaceWhere`), so rerunning a day replaces exactly what it wrote.

**Days in order.** `max_active_runs=1`: a day's index window holds the days before it, so
backfills run one day at a time, oldest first (`airflow backfill create ... --max-active-runs
1`, never `--run-backwards`); `build_index` refuses a window with days missing.

**Models.** With `models_root`, `embed_notes` embeds with the registry's serving version,
`embed_window` embeds what the window lacks: gaps of the serving version, and the whole
window for a newly promoted version (adopted from `<models_root>/current` with no manual
step). Once that version covers the window, `build_index` indexes it and `publish` makes it
serve. See docs/OPERATIONS.md.

**Settings.** Each setting is the run's param, else the Variable `notellm2_<name>`, else
its default (see `notellm2_settings.py`). `resolve_settings` checks them all first: a day
that is not yyyy-MM-dd, a path with shell metacharacters or a number out of range fails
the run before anything else runs. Later tasks template the resolved values.

**Spark.** Each Spark step is a SparkSubmitOperator on the `spark_default` connection
(define it as JSON in `AIRFLOW_CONN_SPARK_DEFAULT`; a missing one means master yarn).
`spark_packages` gives the Delta packages on a cluster; locally spark-defaults.conf has
the jars. See docs/AIRFLOW.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, PokeReturnValue, task
from notellm2_settings import (
    DAILY_SETTINGS,
    optional_flag,
    params_of,
    setting,
    spark_job,
    switch,
)

with DAG(
    dag_id="notellm2_daily",
    description="NoteLLM-2 embeddings and related notes of one day of notes",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,  # missed days are backfilled on purpose: `airflow backfill create`
    max_active_runs=1,  # days share the index window: one day at a time, in order
    dagrun_timeout=timedelta(hours=20),
    params=params_of(DAILY_SETTINGS),
    default_args={
        "owner": "notellm2",
        "retries": 2,
        "retry_delay": timedelta(minutes=10),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(hours=2),
    },
    tags=["notellm2", "spark"],
) as dag:

    @task(task_id="resolve_settings", retries=0, execution_timeout=timedelta(minutes=5))
    def resolve_settings() -> dict:
        """Params > Variables > defaults, all checked; the day of the run."""
        from airflow.sdk import get_current_context
        from notellm2_settings import resolve_run

        return resolve_run(DAILY_SETTINGS, get_current_context())

    @task.sensor(task_id="wait_for_notes", mode="reschedule", poke_interval=600,
                 timeout=timedelta(hours=12).total_seconds(), retries=0,
                 execution_timeout=None)
    def wait_for_notes(settings: dict) -> PokeReturnValue:
        """The producer closed the day (`completeness` closed), or the day has rows (rows)."""
        from notellm2_delta_log import closed_through, partition_rows

        day, notes = settings["day"], settings["notes"]
        rows = partition_rows(notes, day)
        closed = closed_through(notes) if settings["completeness"] == "closed" else None
        done = bool(rows) if settings["completeness"] == "rows" else (closed or "") >= day
        print(f"notes {notes} dt={day}: {rows} rows, closed through {closed}")
        return PokeReturnValue(is_done=done, xcom_value=rows)

    day = setting("day")
    model = [optional_flag("--model", "model"), optional_flag("--models-root", "models_root")]
    embedding = [optional_flag("--batch-size", "batch_size"), switch("--compile", "compile")]
    tables = ["--embeddings", setting("embeddings"), "--errors", setting("errors")]
    embed_notes = spark_job(
        "embed_notes", "embed_notes.py",
        ["--date", day, "--notes", setting("notes"), *model, *tables,
         "--related", setting("related"), "--run-id", "{{ run_id }}", "--empty-day", "publish",
         *embedding],
        execution_timeout=timedelta(hours=8))
    embed_window = spark_job(
        "embed_window", "embed_window.py",
        ["--date", day, "--window-days", setting("window_days"), "--notes", setting("notes"),
         *model, *tables, optional_flag("--max-days", "rollout_max_days"),
         "--run-id", "{{ run_id }}", *embedding],
        execution_timeout=timedelta(hours=12))
    index_dir = setting("index_root")  # the jobs keep each day's index in <index_root>/dt=D
    build_index = spark_job(
        "build_index", "build_index.py",
        ["--date", day, "--embeddings", setting("embeddings"), "--index-dir", index_dir,
         "--window-days", setting("window_days"), "--index-type", setting("index_type"),
         optional_flag("--num-shards", "num_shards"), "--notes", setting("notes"),
         "--errors", setting("errors"), optional_flag("--models-root", "models_root"),
         switch("--allow-incomplete-window", "allow_incomplete_window")])
    related_notes = spark_job(
        "related_notes", "related_notes.py",
        ["--date", day, "--embeddings", setting("embeddings"), "--index-dir", index_dir,
         "--related", setting("related"), "--top-k", setting("top_k"),
         optional_flag("--queries", "queries")],
        execution_timeout=timedelta(hours=4))
    validate_related = spark_job(
        "validate_related", "validate_related.py",
        ["--date", day, "--notes", setting("notes"), "--embeddings", setting("embeddings"),
         "--errors", setting("errors"), "--related", setting("related"),
         "--top-k", setting("top_k"), "--window-days", setting("window_days"),
         "--sample-size", setting("recall_sample"), "--min-recall", setting("min_recall")],
        retries=0)  # a failed check fails the same way on retry
    publish = spark_job(
        "publish", "publish.py",
        ["--date", day, "--embeddings", setting("embeddings"), "--errors", setting("errors"),
         "--related", setting("related"), "--run-id", "{{ run_id }}",
         optional_flag("--models-root", "models_root"),
         optional_flag("--keep-versions", "keep_versions")])

    settings = resolve_settings()
    wait = wait_for_notes(settings)
    settings >> wait >> embed_notes >> embed_window >> build_index >> related_notes
    related_notes >> validate_related >> publish
