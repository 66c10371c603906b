"""The DAGs run for real by `dag.test()` (Airflow venv) on generated notes with tiny random
models: the daily DAG over two days with one fixed model, and the daily DAG over a promotion
by the train DAG, with the model registry. Every task succeeds, each day is validated and
published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from notellm2_udf.model.version import model_version
from notellm2_udf.registry import versions as registry
from tests.support.airflow_env import AIRFLOW_PYTHON, DAG_FOLDER, SCRIPTS, airflow_env
from tests.support.processes import REPO_ROOT, private_install_env

DAYS = ("2026-11-24", "2026-11-25")
NOTES_PER_DAY = 24
TOP_K = 10
BIN = Path(sys.executable).parent
DAILY_TASKS = 8  # embed_window joined the chain


def _run(command, env, timeout):
    result = subprocess.run(command, env=env, capture_output=True, text=True,
                            timeout=timeout, cwd=REPO_ROOT)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    return result


def _prepare(tmp_path: Path, days: int, model: Path) -> tuple[dict, Path]:
    """A private Spark install, `days` days of sample notes and pairs, a tiny random model."""
    env = private_install_env(tmp_path / "spark")
    data = tmp_path / "data"
    _run([str(BIN / "notellm2"), "sample-data", "--out", str(data), "--start-date", DAYS[0],
          "--days", str(days), "--notes-per-day", str(NOTES_PER_DAY)], env, 600)
    _run([str(BIN / "notellm2"), "init-model", "--tiny-random", "--out", str(model)], env, 600)
    return env, data


def _daily_conf(tmp_path: Path, data: Path, **model: str) -> dict:
    lake = tmp_path / "lake"
    return {"notes": str(data / "notes"), "embeddings": str(lake / "note_embeddings"),
            "errors": str(lake / "embedding_errors"), "related": str(lake / "related_notes"),
            "index_root": str(tmp_path / "index"), "top_k": TOP_K, "recall_sample": 50,
            "batch_size": 16, **model}


def _dag_runs(tmp_path: Path, env: dict, *runs: tuple[str, tuple[str, ...], dict]) -> list:
    """dag.test() of each (dag_id, days, conf) in order, in one Airflow process; each run's
    states (scripts/run_dag.py)."""
    args = [arg for dag_id, days, conf in runs for arg in (dag_id, ",".join(days),
                                                            json.dumps(conf))]
    result = _run([str(AIRFLOW_PYTHON), str(SCRIPTS / "run_dag.py"), str(DAG_FOLDER), *args],
                  airflow_env(tmp_path / "airflow", base=env), 3600)
    return [json.loads(line[4:]) for line in result.stdout.splitlines()
            if line.startswith("RUN ")]


def _assert_all_succeeded(run: dict, tasks: int) -> None:
    assert run["state"] == "success", run
    assert set(run["tasks"].values()) == {"success"}, run
    assert len(run["tasks"]) == tasks, run


def _marker(related: str, day: str) -> dict:
    return json.loads((Path(related) / "_published" / f"dt={day}" / "_SUCCESS").read_text())


def _related_versions(spark, related: str) -> dict[str, list[str]]:
    """The model versions of each day's related lists."""
    rows = spark.read.format("delta").load(related).groupBy("dt").agg(
        {"model_version": "collect_set"}).collect()
    return {row["dt"]: sorted(row[1]) for row in rows}


@pytest.mark.slow
def test_daily_dag_over_a_promotion_by_the_train_dag(tmp_path, spark):
    """Day 1 with the base model (no `current` yet); the train DAG trains a candidate on day
    1's pairs, evaluates both models on day 2's and promotes the candidate; day 2 with the
    documented settings (`rollout_max_days` empty, window 30 days) already serves it (the
    issue asks for within two daily runs). Promote succeeds rather than skips because the
    held-out day has fewer notes than 100: both models' Recall@100 is 1 and a tie promotes.

    33 minutes (1974 s) on 2 CPU cores shared with other agents' Spark jobs (2026-11-30, load
    average 9-13): set-up 3, day 1 13, train DAG 6, day 2 (rollout and switch) 11; nearly all
    of it the 15 spark-submit starts, each a JVM, a torch import and a Delta commit or two.
    """
    models = tmp_path / "models"
    env, data = _prepare(tmp_path, len(DAYS), models / "base")
    daily = _daily_conf(tmp_path, data, models_root=str(models))
    train = {"pairs": str(data / "related_pairs"), "notes": str(data / "notes"),
             "models_root": str(models), "global_batch_pairs": 8, "sub_batch_pairs": 0}
    before, after = DAYS

    runs = _dag_runs(tmp_path, env, ("notellm2_daily", (before,), daily),
                     ("notellm2_train", (before,), train), ("notellm2_daily", (after,), daily))
    assert [(run["dag_id"], run["day"]) for run in runs] == [
        ("notellm2_daily", before), ("notellm2_train", before), ("notellm2_daily", after)]
    for run in runs:
        _assert_all_succeeded(run, DAILY_TASKS if run["dag_id"] == "notellm2_daily" else 5)

    base = model_version(models / "base")
    candidate = model_version(models / "candidates" / before / "model")
    assert candidate != base
    served = [_marker(daily["related"], day)["model_version"] for day in DAYS]
    assert served == [base, candidate]
    assert _related_versions(spark, daily["related"]) == {before: [base], after: [candidate]}
    assert registry.serving(models).version == candidate
    assert registry.pending(models) is None
    per_day = {row["dt"]: row for row in spark.read.format("delta").load(daily["related"])
               .groupBy("dt").agg({"note_id": "approx_count_distinct", "rank": "max"}).collect()}
    assert sorted(per_day) == list(DAYS)
    assert all(row["max(rank)"] == TOP_K for row in per_day.values())
    for day in DAYS:
        marker = _marker(daily["related"], day)
        assert marker["dt"] == day and marker["related_rows"] > 0 and marker["run_id"]
