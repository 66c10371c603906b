"""How tests run Airflow: .venv-airflow's Python in a subprocess, home/DB/logs in a tmp dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.processes import REPO_ROOT

AIRFLOW_PYTHON = REPO_ROOT / ".venv-airflow" / "bin" / "python"
DAG_FOLDER = REPO_ROOT / "airflow_dags"
SCRIPTS = Path(__file__).resolve().parents[1] / "airflow" / "scripts"
LOCAL_SPARK_CONNECTION = {"conn_type": "spark", "host": "local[2]",
                          "extra": {"deploy-mode": "client"}}


def airflow_env(home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Airflow's settings for a test: everything under `home`, no examples, our DAG folder
    importable (the scheduler's DAG bundle puts it on sys.path the same way), and so is the
checkout."""
    env = dict(base or os.environ)
    for key in [key for key in env if key.startswith("AIRFLOW")]:
        del env[key]
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FOLDER),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(LOCAL_SPARK_CONNECTION),
        # The DAG folder as the DAG bundle adds it; the checkout, so that the jobs spark-submit
        # starts import its notellm2_udf, not that of another worktree the venv was built in.
        "PYTHONPATH": os.pathsep.join((str(DAG_FOLDER), str(REPO_ROOT))),
    })
    return env
