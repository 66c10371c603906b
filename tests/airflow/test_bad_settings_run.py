"""A run with a bad day or a path holding shell metacharacters fails in its first task:
`dag.test()` (Airflow venv, no Spark involved) shows nothing after resolve_settings ran."""

from __future__ import annotations

import json
import subprocess

from tests.support.airflow_env import AIRFLOW_PYTHON, DAG_FOLDER, SCRIPTS, airflow_env
from tests.support.processes import REPO_ROOT


def test_bad_settings_stop_the_run_before_anything_runs(tmp_path):
    conf = {"day": "2026-02-30", "notes": "/lake/notes; rm -rf /", "embeddings": "/l/e",
            "errors": "/l/x", "related": "/l/r", "index_root": "/i", "model": "/m"}
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), str(SCRIPTS / "run_dag.py"), str(DAG_FOLDER), "notellm2_daily",
         "2026-11-25", json.dumps(conf)],
        env=airflow_env(tmp_path), capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    run = json.loads(next(line[4:] for line in result.stdout.splitlines()
                          if line.startswith("RUN ")))
    assert run["state"] == "failed"
    assert run["tasks"].pop("resolve_settings") == "failed"
    assert set(run["tasks"].values()) == {"upstream_failed"}
    output = result.stdout + result.stderr
    assert "refusing to run: notes: must be a path or URI of plain characters" in output
    assert "; day must be a real date, got '2026-02-30'" in output
    assert "spark-submit" not in output.lower().replace("spark-submit-operator", "")
