"""Running Spark the way users do, in separate processes: spark-submit, spark-sql, scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "tests" / "spark_scripts"
BIN = Path(sys.executable).parent


def run_process(command: list[str], env: dict[str, str],
                timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


def script_result(completed: subprocess.CompletedProcess) -> dict:
    """The "RESULT {json}" line of a script that exited 0."""
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def process_env(conf_dir: Path) -> dict[str, str]:
    """This environment with Spark reading its configuration from `conf_dir`, on loopback."""
    return {**os.environ, "SPARK_CONF_DIR": str(conf_dir), "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable}


DERBY_JARS = REPO_ROOT / ".cache" / "derby"


def private_install_env(root: Path, metastore_port: int | None = None) -> dict[str, str]:
    """Environment for Spark processes with a spark-defaults.conf like `make setup` writes,
    but with a private lakehouse (warehouse + Derby metastore) under `root`: processes
    started with it never touch the user's metastore. The metastore is embedded, or with
    `metastore_port` the Derby network server listening there (as `make setup` configures)."""
    env = {**process_env(root / "conf"), "PYSPARK_DRIVER_PYTHON": sys.executable}
    server = ([] if metastore_port is None else
              ["--metastore-jars", str(DERBY_JARS), "--metastore-port", str(metastore_port)])
    written = run_process([str(BIN / "notellm2"), "spark-defaults", "--jars-dir",
                           str(REPO_ROOT / ".cache" / "jars"), "--lakehouse",
                           str(root / "lakehouse"), *server, "--write"], env, timeout=120)
    assert written.returncode == 0, written.stderr
    return env
