"""Run with .venv-airflow/bin/python: load the DAG folder, print one JSON line describing it.

    inspect_dags.py DAG_FOLDER SETTINGS_JSON

For every DAG: its schedule and run settings, and for every task its type, neighbours,
retries and timeouts; for Spark tasks the spark-submit command they would run, rendered with
SETTINGS_JSON as the resolve task's XCom (arguments that render empty are left out, as the
operator does).
"""

import json
import sys
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag


class FakeTaskInstance:
    def __init__(self, xcom):
        self.xcom = xcom

    def xcom_pull(self, task_ids=None, **_):
        return self.xcom[task_ids]


def describe_task(task, settings):
    info = {
        "type": type(task).__name__,
        "downstream": sorted(task.downstream_task_ids),
        "upstream": sorted(task.upstream_task_ids),
        "retries": task.retries,
        "retry_delay_s": task.retry_delay.total_seconds() if task.retry_delay else None,
        "execution_timeout_s": (task.execution_timeout.total_seconds()
                                if task.execution_timeout else None),
    }
    if hasattr(task, "mode"):
        info.update(mode=task.mode, timeout_s=task.timeout, poke_interval_s=task.poke_interval)
    if hasattr(task, "application_args"):
        context = {"ti": FakeTaskInstance({"resolve_settings": settings}),
                   "run_id": "scheduled__2026-11-25T00:00:00+00:00", "params": {}}
        render = lambda value: task.render_template(value, context)  # noqa: E731
        args = [arg for arg in render(task.application_args) if arg != ""]
        info.update(
            conn_id=task._conn_id, spark_binary=task._spark_binary,
            application=render(task.application), application_args=args,
            packages=render(task.packages), jars=render(task.jars),
            py_files=render(task.py_files), properties_file=render(task.properties_file),
            env_vars=render(task.env_vars), name=render(task.name))
    return info


def main():
    folder, settings = sys.argv[1], json.loads(sys.argv[2])
    dagbag = DagBag(dag_folder=folder)
    report = {"import_errors": {Path(k).name: v for k, v in dagbag.import_errors.items()},
              "dags": {}}
    for dag_id, dag in dagbag.dags.items():
        report["dags"][dag_id] = {
            "timetable": type(dag.timetable).__name__,
            "cron": getattr(dag.timetable, "expression", None),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "doc_md": dag.doc_md,
            "params": sorted(dag.params.keys()),
            "default_retries": dag.default_args.get("retries"),
            "tasks": {task.task_id: describe_task(task, settings.get(dag_id, {}))
                      for task in dag.tasks},
        }
    print("DAGS " + json.dumps(report, default=str))


if __name__ == "__main__":
    main()
