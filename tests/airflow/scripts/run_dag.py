"""Run with .venv-airflow/bin/python: run DAGs for real with dag.test(), print the states.

    run_dag.py DAG_FOLDER DAG_ID DAY[,DAY...] RUN_CONF_JSON [DAG_ID DAY[,DAY...] RUN_CONF_JSON ...]

Migrates the metadata DB of $AIRFLOW_HOME first, then runs each DAG for its days, in the
order given (one process: Airflow starts once). Retries are set to 0 (a failing task would
otherwise make dag.test() wait out each retry delay). Prints one line per run:
`RUN {"dag_id": ..., "day": ..., "state": ..., "tasks": {task_id: state}}`.
"""

import json
import sys

import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.utils import db


def main():
    folder, runs = sys.argv[1], sys.argv[2:]
    assert runs and len(runs) % 3 == 0, "give DAG_ID DAYS RUN_CONF_JSON triples"
    db.resetdb()
    dagbag = DagBag(dag_folder=folder)
    assert not dagbag.import_errors, dagbag.import_errors
    for dag_id, days, conf in zip(runs[::3], runs[1::3], runs[2::3]):
        dag = dagbag.dags[dag_id]
        for task in dag.tasks:
            task.retries = 0
        for day in days.split(","):
            run = dag.test(logical_date=pendulum.parse(day, tz="UTC"), run_conf=json.loads(conf))
            tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
            print("RUN " + json.dumps({"dag_id": dag_id, "day": day, "state": str(run.state),
                                       "tasks": tasks}), flush=True)


if __name__ == "__main__":
    main()
