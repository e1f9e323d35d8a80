"""Runs one example DAG with `dag.test()` in this process (started by the tests as a subprocess with its
own AIRFLOW_HOME and AIRFLOW_CONN_* environment) and prints the task states as one JSON line."""

from __future__ import annotations

import json
import sys


def main(dag_id: str) -> int:
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    # What the DAG bundle does for a deployment: the DAG folder is importable (for airgate_http).
    sys.path.insert(0, str(settings.DAGS_FOLDER))
    bag = DagBag()
    if bag.import_errors:
        print(json.dumps({"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}}))
        return 2
    dag = bag.get_dag(dag_id)
    run = dag.test()
    states = {
        ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in run.get_task_instances()
    }
    print("AIRGATE_RESULT " + json.dumps({"run_state": str(run.state), "tasks": states}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
