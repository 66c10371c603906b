"""Run with .venv-airflow/bin/python: run a DAG for real with dag.test(), print the states.

    run_dag.py DAG_FOLDER DAG_ID DAY[,DAY...] RUN_CONF_JSON

Migrates the metadata DB of $AIRFLOW_HOME first. Retries are set to 0 (a failing task would
otherwise make dag.test() wait out each retry delay). Prints one line per run:
`RUN {"day": ..., "state": ..., "tasks": {task_id: state}}`.
"""

import json
import sys

import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.utils import db


def main():
    folder, dag_id, days, conf = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    db.resetdb()
    dagbag = DagBag(dag_folder=folder)
    assert not dagbag.import_errors, dagbag.import_errors
    dag = dagbag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    for day in days.split(","):
        run = dag.test(logical_date=pendulum.parse(day, tz="UTC"), run_conf=conf)
        tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        print("RUN " + json.dumps({"day": day, "state": str(run.state), "tasks": tasks}),
              flush=True)


if __name__ == "__main__":
    main()
