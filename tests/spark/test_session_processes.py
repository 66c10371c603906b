"""Spark the way users run it: separate processes, spark-submit, spark-sql.

The local-cluster run (two executor JVMs, each with its Python workers, writing Delta) is
tests/jobs/test_embed_notes_processes.py's, with the embedding UDF on it."""

from __future__ import annotations

import json

import pytest

from tests.support.processes import BIN, SCRIPTS, process_env, run_process


@pytest.mark.slow
def test_table_registered_by_one_process_is_queried_by_name_from_spark_sql(private_install):
    """Slow (two JVMs, about a minute). The default suite registers and re-points tables by
    name in its own session (tests/test_schemas.py); spark-sql beside another process on
    the shared metastore server is tests/services/test_metastore.py's slow test."""
    env, root = private_install
    sample = run_process([str(BIN / "notellm2"), "sample-data", "--out", str(root / "data"),
                   "--start-date", "2026-11-24", "--days", "1", "--notes-per-day", "12"], env)
    assert sample.returncode == 0, sample.stderr[-3000:]
    assert "12 notes" in sample.stdout

    query = run_process([str(BIN / "spark-sql"), "-e",
                  "SELECT dt, count(*), min(note_id) FROM notellm2.notes GROUP BY dt"], env)
    assert query.returncode == 0, query.stderr[-3000:]
    assert "2026-11-24\t12\t20261124-000000" in query.stdout.splitlines()


def test_spark_submit_conf_wins_over_project_defaults(private_install):
    env, _ = private_install
    result = run_process([str(BIN / "spark-submit"), "--master", "local[1]",
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
    result = run_process([str(BIN / "spark-submit"), "--master", "local[1]",
                   str(SCRIPTS / "print_session_conf.py")], process_env(tmp_path / "empty-conf"))
    assert result.returncode != 0
    # spark-submit forwards the Python driver's stderr to its own stdout.
    assert "Delta Lake jars are not on Spark's classpath: run `make setup`" in result.stdout
