"""The daily DAG run for real by `dag.test()` (Airflow venv) on two days of generated notes
with a tiny random model: every task succeeds, each day is validated and published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.airflow.airflow_env import AIRFLOW_PYTHON, DAG_FOLDER, SCRIPTS, airflow_env
from tests.conftest import REPO_ROOT
from tests.processes import private_install_env

DAYS = ("2026-11-24", "2026-11-25")
NOTES_PER_DAY = 24
TOP_K = 10
BIN = Path(sys.executable).parent


def _run(command, env, timeout):
    result = subprocess.run(command, env=env, capture_output=True, text=True,
                            timeout=timeout, cwd=REPO_ROOT)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    return result


@pytest.mark.slow
def test_daily_dag_runs_two_days_end_to_end(tmp_path, spark):
    env = private_install_env(tmp_path / "spark")
    data, lake = tmp_path / "data", tmp_path / "lake"
    _run([str(BIN / "notellm2"), "sample-data", "--out", str(data), "--start-date", DAYS[0],
          "--days", str(len(DAYS)), "--notes-per-day", str(NOTES_PER_DAY)], env, 600)
    _run([str(BIN / "notellm2"), "init-model", "--tiny-random", "--out",
          str(tmp_path / "model")], env, 600)
    conf = {"notes": str(data / "notes"), "embeddings": str(lake / "note_embeddings"),
            "errors": str(lake / "embedding_errors"), "related": str(lake / "related_notes"),
            "index_root": str(tmp_path / "index"), "model": str(tmp_path / "model"),
            "top_k": TOP_K, "recall_sample": 50, "batch_size": 16}

    result = _run([str(AIRFLOW_PYTHON), str(SCRIPTS / "run_dag.py"), str(DAG_FOLDER),
                   "notellm2_daily", ",".join(DAYS), json.dumps(conf)],
                  airflow_env(tmp_path / "airflow", base=env), 1800)
    runs = [json.loads(line[4:]) for line in result.stdout.splitlines()
            if line.startswith("RUN ")]
    assert [run["day"] for run in runs] == list(DAYS)
    for run in runs:
        assert run["state"] == "success", run
        assert set(run["tasks"].values()) == {"success"}, run
        assert len(run["tasks"]) == 8  # embed_window joined the chain

    related_df = spark.read.format("delta").load(conf["related"])
    per_day = {row["dt"]: row for row in related_df.groupBy("dt").agg(
        {"note_id": "approx_count_distinct", "rank": "max"}).collect()}
    assert sorted(per_day) == list(DAYS)
    assert all(row["max(rank)"] == TOP_K for row in per_day.values())
    for day in DAYS:
        marker = json.loads((lake / "related_notes" / "_published" / f"dt={day}"
                             / "_SUCCESS").read_text())
        assert marker["dt"] == day and marker["related_rows"] > 0
        assert marker["run_id"].startswith("manual__") or marker["run_id"]
