"""The local Airflow's `webserver_config.py` (AIRFLOW__FAB__CONFIG_FILE): the same FAB OAuth sign-in as
on Kubernetes (infra/airflow/sign_in.py), with its settings from the environment `airgate up` gives
Airflow, because the local provider's port is only known then."""

import json
import os

from airflow_gateway_auth.fab_sign_in import configure  # type: ignore[import-untyped]

globals().update(configure(json.loads(os.environ["AIRGATE_SIGN_IN"])))
