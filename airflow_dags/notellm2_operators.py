"""The DAGs' Spark tasks: SparkSubmitOperators whose arguments are templated from the
resolved settings, built from the catalogue (each setting names the job flags it feeds).

Deployment facts that Airflow needs at parse time (operator arguments that are not
templated) come from the environment of the scheduler and workers:
    NOTELLM2_SPARK_SUBMIT  spark-submit to run (default: <repo>/.venv/bin/spark-submit)
    NOTELLM2_JOB_PYTHON    Python of the jobs' driver and workers (default: <repo>/.venv/bin/python)
    NOTELLM2_JOBS_DIR      directory holding the jobs' .py files (default: <repo>/jobs)

Airflow is imported lazily: the job venv's tests import this module without it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from notellm2_catalogue import Setting

REPO_ROOT = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = os.environ.get("NOTELLM2_SPARK_SUBMIT", str(REPO_ROOT / ".venv/bin/spark-submit"))
JOB_PYTHON = os.environ.get("NOTELLM2_JOB_PYTHON", str(REPO_ROOT / ".venv/bin/python"))
JOBS_DIR = os.environ.get("NOTELLM2_JOBS_DIR", str(REPO_ROOT / "jobs"))

RESOLVE_TASK_ID = "resolve_settings"


def _resolved(name: str) -> str:
    """Jinja expression of a resolved setting: the resolve task's XCom."""
    return f"ti.xcom_pull(task_ids='{RESOLVE_TASK_ID}')['{name}']"


def setting(name: str) -> str:
    """Template of a resolved setting, for templated fields."""
    return "{{ " + _resolved(name) + " }}"


def optional_flag(flag: str, name: str) -> str:
    """One argument `--flag=value`, or nothing when the setting is empty."""
    value = _resolved(name)
    return "{{ ('" + flag + "=' ~ " + value + ") if " + value + " != '' else '' }}"


def switch(flag: str, name: str) -> str:
    """The argument `flag` when the setting is "true", else nothing."""
    return "{{ '" + flag + "' if " + _resolved(name) + " == 'true' else '' }}"


def spark_job(task_id: str, script: str, args: list[str], **kwargs: Any):
    """A SparkSubmitOperator on the `spark_default` connection running jobs/<script>.

    Everything variable is templated from the resolved settings, so the Rendered Template
    view shows the exact command; arguments that render empty (`optional_flag`, `switch`)
    are left out. Imported lazily: this module stays Airflow-free.
    """
    return _spark_job_operator()(
        task_id=task_id,
        conn_id="spark_default",
        spark_binary=SPARK_SUBMIT,
        application=f"{JOBS_DIR}/{script}",
        application_args=args,
        name=f"notellm2-{task_id}-{setting('day')}",
        packages=setting("spark_packages"),
        jars=setting("spark_jars"),
        py_files=setting("spark_py_files"),
        properties_file=setting("spark_properties_file"),
        # Without these spark-submit may find the Airflow venv's jar-less pyspark-client.
        env_vars={"PYSPARK_PYTHON": JOB_PYTHON, "PYSPARK_DRIVER_PYTHON": JOB_PYTHON},
        **kwargs,
    )


@functools.cache
def _spark_job_operator():
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    class SparkJobOperator(SparkSubmitOperator):
        """SparkSubmitOperator that drops the arguments that rendered empty."""

        def execute(self, context):
            self.application_args = [arg for arg in self.application_args or [] if arg != ""]
            return super().execute(context)

    return SparkJobOperator


def params_of(settings: tuple[Setting, ...]) -> dict[str, Any]:
    """Airflow Params (all nullable: null means "Variable, else default")."""
    from airflow.sdk import Param

    params = {"day": Param(None, type=["null", "string"],
                           description="day to process, yyyy-MM-dd (default: the run's day)")}
    for item in (item for item in settings if item.run_conf):
        shown = "required" if item.default is None else f"default {item.default!r}"
        params[item.name] = Param(
            None, type=["null", "string", "integer", "number"],
            description=f"{item.description} ({shown}; else Variable {item.variable})")
    return params


def job_arguments(settings: tuple[Setting, ...], job: str) -> list[str]:
    """The arguments of `job` (a script name without .py) that the catalogue's settings
    feed, each in its setting's form (a value, an optional `--flag=value`, a switch)."""
    args: list[str] = []
    for item in settings:
        flag = item.flags.get(job)
        if flag is None:
            continue
        if item.form == "switch":
            args.append(switch(flag, item.name))
        elif item.form == "optional":
            args.append(optional_flag(flag, item.name))
        else:
            args += [flag, setting(item.name)]
    return args
