"""Spark the way users run it: separate processes, spark-submit, spark-sql, local-cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPTS = Path(__file__).parent / "spark_scripts"
BIN = Path(sys.executable).parent


def _run(command: list[str], env: dict[str, str],
         timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


def _env(conf_dir: Path) -> dict[str, str]:
    return {**os.environ, "SPARK_CONF_DIR": str(conf_dir), "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable}


@pytest.fixture(scope="module")
def private_install(tmp_path_factory) -> tuple[dict[str, str], Path]:
    """A spark-defaults.conf like `make setup` writes, pointing at a private lakehouse."""
    root = tmp_path_factory.mktemp("install")
    env = _env(root / "conf")
    written = _run([str(BIN / "notellm2"), "spark-defaults", "--jars-dir",
                    str(REPO_ROOT / ".cache" / "jars"), "--lakehouse", str(root / "lakehouse"),
                    "--write"], env)
    assert written.returncode == 0, written.stderr
    return env, root


def test_table_registered_by_one_process_is_queried_by_name_from_spark_sql(private_install):
    env, root = private_install
    sample = _run([str(BIN / "notellm2"), "sample-data", "--out", str(root / "data"),
                   "--start-date", "2026-11-24", "--days", "1", "--notes-per-day", "12"], env)
    assert sample.returncode == 0, sample.stderr[-3000:]
    assert "12 notes" in sample.stdout

    query = _run([str(BIN / "spark-sql"), "-e",
                  "SELECT dt, count(*), min(note_id) FROM notellm2.notes GROUP BY dt"], env)
    assert query.returncode == 0, query.stderr[-3000:]
    assert "2026-11-24\t12\t20261124-000000" in query.stdout.splitlines()


def test_spark_submit_conf_wins_over_project_defaults(private_install):
    env, _ = private_install
    result = _run([str(BIN / "spark-submit"), "--master", "local[1]",
                   "--conf", "spark.sql.session.timeZone=Asia/Tokyo",
                   str(SCRIPTS / "print_session_conf.py")], env)
    assert result.returncode == 0, result.stderr[-3000:]
    conf = json.loads(next(line for line in result.stdout.splitlines()
                           if line.startswith("CONF "))[5:])
    assert conf == {
        "spark.sql.session.timeZone": "Asia/Tokyo",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.driver.host": "127.0.0.1",
        "spark.master": "local[1]",
    }


def test_missing_delta_jars_give_a_clear_error(tmp_path):
    result = _run([str(BIN / "spark-submit"), "--master", "local[1]",
                   str(SCRIPTS / "print_session_conf.py")], _env(tmp_path / "empty-conf"))
    assert result.returncode != 0
    # spark-submit forwards the Python driver's stderr to its own stdout.
    assert "Delta Lake jars are not on Spark's classpath: run `make setup`" in result.stdout


@pytest.mark.cluster
def test_local_cluster_runs_tasks_in_two_executors(private_install, tmp_path):
    env, _ = private_install
    result = _run([sys.executable, str(SCRIPTS / "local_cluster_smoke.py"),
                   str(tmp_path / "table")], env, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(next(line for line in result.stdout.splitlines()
                             if line.startswith("RESULT "))[7:])
    assert report["executors"] == 2
    assert len(report["pids"]) == 2
    assert report["rows"] == [[v, v * v] for v in range(8)]
