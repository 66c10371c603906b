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
its default (see `notellm2_catalogue.py`, which also names the job flags each setting
feeds). `resolve_settings` checks them all first: a day
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
from notellm2_catalogue import DAILY_SETTINGS
from notellm2_operators import job_arguments, params_of, setting, spark_job

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
        from notellm2_resolve import resolve_run

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

    def daily_job(job: str, *fixed: str, **kwargs):
        """The Spark task of jobs/<job>.py: the day, the catalogue's arguments, `fixed`."""
        return spark_job(job, f"{job}.py",
                         ["--date", setting("day"), *job_arguments(DAILY_SETTINGS, job), *fixed],
                         **kwargs)

    run_id = ("--run-id", "{{ run_id }}")
    embed_notes = daily_job("embed_notes", *run_id, "--empty-day", "publish",
                            execution_timeout=timedelta(hours=8))
    embed_window = daily_job("embed_window", *run_id, execution_timeout=timedelta(hours=12))
    build_index = daily_job("build_index")
    related_notes = daily_job("related_notes", execution_timeout=timedelta(hours=4))
    # A failed check fails the same way on retry.
    validate_related = daily_job("validate_related", retries=0)
    publish = daily_job("publish", *run_id)

    settings = resolve_settings()
    wait = wait_for_notes(settings)
    settings >> wait >> embed_notes >> embed_window >> build_index >> related_notes
    related_notes >> validate_related >> publish
