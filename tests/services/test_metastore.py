"""The shared metastore: Derby's network server, started and stopped by `notellm2 metastore`,
serving several Spark processes at once."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from notellm2_udf.services.daemons import free_port, port_open
from notellm2_udf.spark.session import MetastoreEndpoint, local_spark_defaults
from tests.support.processes import BIN, DERBY_JARS, REPO_ROOT, SCRIPTS, run_process


def test_metastore_command_starts_reports_and_stops(tmp_path):
    port = free_port()
    command = [str(BIN / "notellm2"), "metastore", "--lakehouse", str(tmp_path),
               "--jars-dir", str(DERBY_JARS), "--port", str(port)]

    def metastore(action: str) -> subprocess.CompletedProcess:
        return subprocess.run(command[:2] + [action] + command[2:], capture_output=True,
                              text=True, timeout=180, cwd=REPO_ROOT)

    try:
        started = metastore("start")
        assert started.returncode == 0, started.stderr
        assert f"jdbc:derby://127.0.0.1:{port}/metastore_db" in started.stdout
        pid = int((tmp_path / "metastore.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "org.apache.derby.drda.NetworkServerControl start" in cmdline
        assert port_open(port)
        again = metastore("start")  # idempotent: the running server is kept
        assert again.returncode == 0 and f"pid {pid}," in again.stdout
        status = metastore("status")
        assert status.returncode == 0 and f"pid {pid}," in status.stdout
    finally:
        stopped = metastore("stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "metastore: stopped"
    assert not _running(pid)
    assert not port_open(port)
    status = metastore("status")
    assert status.returncode == 3 and status.stdout.strip() == "metastore: not running"
    assert metastore("stop").stdout.strip() == "metastore: was not running"


def test_missing_derby_jars_are_reported(tmp_path):
    result = run_process([str(BIN / "notellm2"), "metastore", "start", "--lakehouse",
                          str(tmp_path), "--jars-dir", str(tmp_path / "none")], dict(os.environ))
    assert result.returncode == 2
    assert "derbynet-10.16.1.1.jar, derbyclient-10.16.1.1.jar not in" in result.stderr
    assert "make setup" in result.stderr


def test_spark_defaults_use_the_server_or_embedded_derby(tmp_path):
    jars = [tmp_path / "delta-spark.jar", tmp_path / "delta-storage.jar"]
    client = tmp_path / "derbyclient.jar"
    served = local_spark_defaults(jars, tmp_path / "lake", "/py",
                                  MetastoreEndpoint("jdbc:derby://127.0.0.1:1599/metastore_db;"
                                                    "create=true", client))
    embedded = local_spark_defaults(jars, tmp_path / "lake", "/py")
    assert served["spark.hadoop.javax.jdo.option.ConnectionURL"] == \
        "jdbc:derby://127.0.0.1:1599/metastore_db;create=true"
    assert served["spark.hadoop.javax.jdo.option.ConnectionDriverName"] == \
        "org.apache.derby.jdbc.ClientDriver"
    assert served["spark.driver.extraClassPath"] == ":".join(map(str, [client, *jars]))
    assert embedded["spark.hadoop.javax.jdo.option.ConnectionURL"] == \
        f"jdbc:derby:;databaseName={tmp_path / 'lake' / 'metastore_db'};create=true"
    assert embedded["spark.hadoop.javax.jdo.option.ConnectionDriverName"] == \
        "org.apache.derby.jdbc.EmbeddedDriver"
    assert embedded["spark.driver.extraClassPath"] == ":".join(map(str, jars))
    assert served["spark.sql.warehouse.dir"] == embedded["spark.sql.warehouse.dir"] == \
        str(tmp_path / "lake" / "warehouse")


@pytest.mark.slow
def test_spark_sql_runs_while_another_spark_process_holds_the_metastore(server_install,
                                                                         tmp_path):
    env, _, _ = server_install
    go = tmp_path / "go"
    holder = subprocess.Popen([str(BIN / "python"), str(SCRIPTS / "hold_metastore.py"),
                               str(tmp_path / "held_notes"), str(go)], env=env, cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert _wait_for_line(holder, "READY", timeout=400) == "READY"
        # The holder's session is open: with embedded Derby this would fail with XSDB6.
        query = run_process([str(BIN / "spark-sql"), "--master", "local[1]", "-e",
                             "SELECT id, s FROM held.notes ORDER BY id; "
                             "CREATE DATABASE from_spark_sql"], env, timeout=400)
        assert query.returncode == 0, query.stderr[-3000:]
        assert query.stdout.splitlines()[:2] == ["1\ta", "2\tb"]
        assert holder.poll() is None, "the holder must still be running"
        go.touch()
        line = _wait_for_line(holder, "DATABASES ", timeout=300)
        assert json.loads(line[len("DATABASES "):]) == ["default", "from_spark_sql", "held"]
        assert holder.wait(timeout=120) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _running(pid: int) -> bool:
    """Alive and not a zombie (a daemon's parent exited; this container's init may not reap)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for_line(process: subprocess.Popen, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if line.startswith(prefix):
            return line.strip()
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no {prefix!r} line from pid {process.pid} (rc {process.poll()})")


def test_sql_server_command_reports_a_server_that_does_not_run(tmp_path):
    port = free_port()
    command = [str(BIN / "notellm2"), "sql-server", "--run-dir", str(tmp_path),
               "--port", str(port)]
    status = run_process(command[:2] + ["status"] + command[2:], dict(os.environ))
    assert status.returncode == 3 and status.stdout.strip() == "sql-server: not running"
    (tmp_path / f"sql-server-{port}.pid").write_text("1\n")  # a stale pid file: not ours
    stop = run_process(command[:2] + ["stop"] + command[2:], dict(os.environ))
    assert stop.returncode == 0 and stop.stdout.strip() == "sql-server: was not running"
    assert not (tmp_path / f"sql-server-{port}.pid").exists()


def test_quick_jit_adds_its_option_to_the_drivers_java_options(tmp_path):
    jars = [tmp_path / "delta-spark.jar"]
    plain = local_spark_defaults(jars, tmp_path / "lake", "/py")
    quick = local_spark_defaults(jars, tmp_path / "lake", "/py", quick_jit=True)
    derby_log = f"-Dderby.stream.error.file={(tmp_path / 'lake' / 'derby.log').resolve()}"
    assert plain["spark.driver.extraJavaOptions"] == derby_log
    assert quick["spark.driver.extraJavaOptions"] == f"{derby_log} -XX:TieredStopAtLevel=1"
    assert {k: v for k, v in quick.items() if k != "spark.driver.extraJavaOptions"} == {
        k: v for k, v in plain.items() if k != "spark.driver.extraJavaOptions"}
