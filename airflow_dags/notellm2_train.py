"""
# notellm2_train: weekly training; promote the model only if Recall@100 does not drop

    resolve_settings >> train >> [evaluate_candidate, evaluate_current] >> promote

**Which week.** A `CronDataIntervalTimetable` at 03:00 UTC on Mondays: the run covering
the week starting Monday D fires a week later and its `{{ ds }}` is D. It trains on the whole
`related_pairs` table as it is then (its last day held out for evaluation) and writes
`<models_root>/candidates/<D>/` (the checkpoint in its `model/`).

**Batch.** The paper's 128 pairs per optimizer step (`global_batch_pairs`), split evenly over
`num_processes`, each process embedding `sub_batch_pairs` at a time (GradCache: the same
loss and gradients with bounded activation memory). With `validation_days` > 0 those days
are validated every `eval_every` steps and the candidate is the lowest-loss checkpoint.

**Promotion.** The candidate and the current model (`<models_root>/current`, else
`<models_root>/base` before the first promotion) are evaluated on the same pairs in the same
run. `promote` repoints the `current` link to the candidate only if the candidate's
`full` Recall@100 is >= the current model's, and logs every decision to
`<models_root>/promotions.jsonl`; otherwise the task ends as skipped and `current` stays.
The daily DAG reads `<models_root>/current` as its model. See docs/AIRFLOW.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, task
from notellm2_catalogue import TRAIN_SETTINGS
from notellm2_operators import job_arguments, params_of, setting, spark_job

with DAG(
    dag_id="notellm2_train",
    description="Weekly NoteLLM-2 training, evaluation and guarded promotion",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 3 * * 1", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 2, tz="UTC"),
    catchup=False,  # training is on the whole pairs table: a missed week needs no rerun
    max_active_runs=1,
    dagrun_timeout=timedelta(days=2),
    params=params_of(TRAIN_SETTINGS),
    default_args={
        "owner": "notellm2",
        "retries": 1,
        "retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=6),
    },
    tags=["notellm2", "spark", "training"],
) as dag:

    @task(task_id="resolve_settings", retries=0, execution_timeout=timedelta(minutes=5))
    def resolve_settings() -> dict:
        """Params > Variables > defaults, all checked; the run's day and model paths."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException
        from notellm2_catalogue import check_batch_split
        from notellm2_checks import SettingError
        from notellm2_promote import current_model
        from notellm2_resolve import resolve_run

        resolved = resolve_run(TRAIN_SETTINGS, get_current_context())
        try:
            check_batch_split(resolved)
        except SettingError as err:
            raise AirflowFailException(f"refusing to run: {err}") from None
        day = resolved["day"]
        root = resolved["models_root"].rstrip("/")
        resolved["init_model"] = resolved["init_model"] or f"{root}/base"
        resolved["candidate_dir"] = f"{root}/candidates/{day}"
        resolved["candidate"] = f"{root}/candidates/{day}/model"  # train.py writes DIR/model
        resolved["current_model"] = current_model(root)
        resolved["reports"] = f"{root}/reports/{day}"
        return resolved

    train = spark_job(
        "train", "train.py",
        [*job_arguments(TRAIN_SETTINGS, "train"), "--output", setting("candidate_dir")],
        execution_timeout=timedelta(hours=24))

    def evaluate(task_id: str, model: str, report: str):
        return spark_job(
            task_id, "evaluate.py",
            [*job_arguments(TRAIN_SETTINGS, "evaluate"), "--model", model, "--report", report,
             "--ks", "10,20,50,100,1000", "--inputs", "full,image,text"])

    evaluate_candidate = evaluate("evaluate_candidate", setting("candidate"),
                                  setting("reports") + "/candidate")
    evaluate_current = evaluate("evaluate_current", setting("current_model"),
                                setting("reports") + "/current")

    @task(task_id="promote", retries=0, execution_timeout=timedelta(minutes=5))
    def promote(settings: dict) -> dict:
        """Repoint <models_root>/current to the candidate unless its Recall@100 is lower."""
        from airflow.sdk.exceptions import AirflowSkipException
        from notellm2_promote import decide_and_promote

        decision = decide_and_promote(
            settings["models_root"], settings["day"], settings["candidate"],
            settings["reports"] + "/candidate/metrics.json",
            settings["reports"] + "/current/metrics.json")
        print(decision)
        if not decision["promoted"]:
            raise AirflowSkipException(
                f"not promoted: recall@100 {decision['candidate_score']:.4f} < current "
                f"{decision['current_score']:.4f}")
        return decision

    settings = resolve_settings()
    settings >> train >> [evaluate_candidate, evaluate_current] >> promote(settings)
