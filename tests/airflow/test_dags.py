"""The DAGs as the scheduler sees them (loaded by .venv-airflow's Python in a subprocess):
no import errors, the task graph, retries and timeouts, the spark-submit commands."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.airflow_env import AIRFLOW_PYTHON, DAG_FOLDER, SCRIPTS, airflow_env
from tests.support.processes import REPO_ROOT

DAILY_SETTINGS = {
    "day": "2026-11-25", "notes": "/lake/notes", "embeddings": "/lake/note_embeddings",
    "errors": "/lake/embedding_errors", "related": "/lake/related_notes",
    "index_root": "/shared/index", "model": "/shared/models/current", "top_k": 100,
    "window_days": 30, "index_type": "auto", "num_shards": "", "queries": "new",
    "batch_size": "", "compile": "true", "recall_sample": 200, "min_recall": 0.9,
    "models_root": "", "rollout_max_days": "", "keep_versions": "", "completeness": "closed",
    "allow_incomplete_window": "false",
    "spark_packages": "io.delta:delta-spark_2.13:4.0.1,io.delta:delta-storage:4.0.1",
    "spark_jars": "", "spark_py_files": "", "spark_properties_file": ""}
TRAIN_SETTINGS = {
    "day": "2026-11-23", "pairs": "/lake/related_pairs", "notes": "/lake/notes",
    "models_root": "/shared/models", "init_model": "/shared/models/base", "epochs": 1,
    "global_batch_pairs": 128, "sub_batch_pairs": 16, "validation_days": 1,
    "eval_every": 1750, "num_processes": 2, "use_gpu": "true", "spark_packages": "",
    "spark_jars": "", "spark_py_files": "/shared/notellm2.zip", "spark_properties_file": "",
    "candidate_dir": "/shared/models/candidates/2026-11-23",
    "candidate": "/shared/models/candidates/2026-11-23/model",
    "current_model": "/shared/models/candidates/2026-11-16",
    "reports": "/shared/models/reports/2026-11-23"}


@pytest.fixture(scope="module")
def dags(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow_home")
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), str(SCRIPTS / "inspect_dags.py"), str(DAG_FOLDER),
         json.dumps({"notellm2_daily": DAILY_SETTINGS, "notellm2_train": TRAIN_SETTINGS})],
        env=airflow_env(home), capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("DAGS "))
    return json.loads(line[5:])


def test_dagbag_loads_both_dags_without_import_errors(dags):
    assert dags["import_errors"] == {}
    assert sorted(dags["dags"]) == ["notellm2_daily", "notellm2_train"]


def test_daily_dag_graph_and_run_settings(dags):
    daily = dags["dags"]["notellm2_daily"]
    chain = ["resolve_settings", "wait_for_notes", "embed_notes", "embed_window",
             "build_index", "related_notes", "validate_related", "publish"]
    assert sorted(daily["tasks"]) == sorted(chain)
    for upstream, downstream in zip(chain, chain[1:]):
        assert daily["tasks"][upstream]["downstream"] == [downstream]
    assert daily["tasks"]["resolve_settings"]["upstream"] == []
    assert (daily["timetable"], daily["cron"]) == ("CronDataIntervalTimetable", "0 0 * * *")
    assert daily["catchup"] is False and daily["max_active_runs"] == 1
    assert daily["doc_md"].lstrip().startswith("# notellm2_daily")
    assert "processes\n`notes` partition dt=D" in daily["doc_md"]
    assert daily["default_retries"] == 2
    sensor = daily["tasks"]["wait_for_notes"]
    assert (sensor["mode"], sensor["timeout_s"], sensor["poke_interval_s"]) == (
        "reschedule", 12 * 3600, 600)
    for task_id in chain[2:]:
        task = daily["tasks"][task_id]
        assert task["type"] == "SparkJobOperator"
        assert task["conn_id"] == "spark_default"
        assert task["execution_timeout_s"] >= 3600
        assert task["retries"] == (0 if task_id == "validate_related" else 2)
        assert task["retry_delay_s"] == 600
    assert {"day", "notes", "model", "models_root", "min_recall"} <= set(daily["params"])
    # What code and jars run is the deployment's: no param for it (Variables only).
    assert not {"spark_packages", "spark_jars", "spark_py_files",
                "spark_properties_file"} & set(daily["params"])


def as_flags(args: list[str]) -> dict[str, str | bool]:
    """{flag: value, or True for a switch} of a job's arguments: argparse reads them in any
    order, `--flag=value` as `--flag value`."""
    flags, position = {}, 0
    while position < len(args):
        flag, _, value = args[position].partition("=")
        if value or position + 1 == len(args) or args[position + 1].startswith("--"):
            flags[flag] = value or True
            position += 1
        else:
            flags[flag] = args[position + 1]
            position += 2
    assert len(flags) == len([arg for arg in args if arg.startswith("--")]), args
    return flags


def test_daily_spark_commands_render_from_the_resolved_settings(dags):
    tasks = dags["dags"]["notellm2_daily"]["tasks"]
    embed = tasks["embed_notes"]
    assert embed["spark_binary"] == str(REPO_ROOT / ".venv" / "bin" / "spark-submit")
    assert embed["application"] == str(REPO_ROOT / "jobs" / "embed_notes.py")
    assert embed["env_vars"] == {"PYSPARK_PYTHON": str(REPO_ROOT / ".venv/bin/python"),
                                 "PYSPARK_DRIVER_PYTHON": str(REPO_ROOT / ".venv/bin/python")}
    assert embed["packages"] == DAILY_SETTINGS["spark_packages"]
    assert embed["name"] == "notellm2-embed_notes-2026-11-25"
    assert as_flags(embed["application_args"]) == as_flags([
        "--date", "2026-11-25", "--notes", "/lake/notes", "--model=/shared/models/current",
        "--embeddings", "/lake/note_embeddings", "--errors", "/lake/embedding_errors",
        "--related", "/lake/related_notes", "--run-id", "scheduled__2026-11-25T00:00:00+00:00",
        "--empty-day", "publish", "--compile"])
    assert as_flags(tasks["embed_window"]["application_args"]) == as_flags([
        "--date", "2026-11-25", "--window-days", "30", "--notes", "/lake/notes",
        "--model=/shared/models/current", "--embeddings", "/lake/note_embeddings",
        "--errors", "/lake/embedding_errors", "--run-id",
        "scheduled__2026-11-25T00:00:00+00:00", "--compile"])
    assert as_flags(tasks["build_index"]["application_args"]) == as_flags([
        "--date", "2026-11-25", "--embeddings", "/lake/note_embeddings",
        "--index-dir", "/shared/index", "--window-days", "30", "--index-type", "auto",
        "--notes", "/lake/notes", "--errors", "/lake/embedding_errors"])
    assert as_flags(tasks["related_notes"]["application_args"]) == as_flags([
        "--date", "2026-11-25", "--embeddings", "/lake/note_embeddings",
        "--index-dir", "/shared/index", "--related", "/lake/related_notes", "--top-k", "100",
        "--queries=new", "--recall-sample", "200"])
    assert as_flags(tasks["validate_related"]["application_args"]) == as_flags([
        "--date", "2026-11-25", "--notes", "/lake/notes", "--embeddings",
        "/lake/note_embeddings", "--errors", "/lake/embedding_errors", "--related",
        "/lake/related_notes", "--top-k", "100", "--window-days", "30", "--recall-sample",
        "200", "--min-recall", "0.9"])
    assert as_flags(tasks["publish"]["application_args"]) == as_flags([
        "--date", "2026-11-25", "--embeddings", "/lake/note_embeddings", "--errors",
        "/lake/embedding_errors", "--related", "/lake/related_notes",
        "--run-id", "scheduled__2026-11-25T00:00:00+00:00"])


def test_train_dag_graph_and_commands(dags):
    train = dags["dags"]["notellm2_train"]
    tasks = train["tasks"]
    assert sorted(tasks) == ["evaluate_candidate", "evaluate_current", "promote",
                             "resolve_settings", "train"]
    assert tasks["resolve_settings"]["downstream"] == ["promote", "train"]
    assert tasks["train"]["downstream"] == ["evaluate_candidate", "evaluate_current"]
    assert tasks["promote"]["upstream"] == ["evaluate_candidate", "evaluate_current",
                                            "resolve_settings"]
    assert (train["timetable"], train["cron"]) == ("CronDataIntervalTimetable", "0 3 * * 1")
    assert train["catchup"] is False and train["max_active_runs"] == 1
    assert train["doc_md"].lstrip().startswith("# notellm2_train")
    assert as_flags(tasks["train"]["application_args"]) == as_flags([
        "--pairs", "/lake/related_pairs", "--notes", "/lake/notes",
        "--init-model", "/shared/models/base", "--output", "/shared/models/candidates/2026-11-23",
        "--epochs", "1", "--global-batch-pairs", "128", "--sub-batch-pairs", "16",
        "--validation-days", "1", "--eval-every", "1750", "--num-processes", "2", "--use-gpu"])
    assert tasks["train"]["py_files"] == "/shared/notellm2.zip"
    assert tasks["evaluate_current"]["application_args"][4:8] == [
        "--model", "/shared/models/candidates/2026-11-16",
        "--report", "/shared/models/reports/2026-11-23/current"]
    assert tasks["evaluate_candidate"]["application_args"][4:8] == [
        "--model", "/shared/models/candidates/2026-11-23/model",
        "--report", "/shared/models/reports/2026-11-23/candidate"]
