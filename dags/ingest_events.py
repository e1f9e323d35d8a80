"""Call pattern 1 — write to an internal API through a proxy gateway: POST a batch of events to the
ingestion API as the `airflow-worker` role (connection `gw_ingest`, pre-wired by airgate)."""

from __future__ import annotations

import json

from airflow.providers.http.operators.http import HttpOperator
from airflow.sdk import DAG
from airgate_http import AIRGATE_MACROS, gateway_headers, gateway_retry_args

with DAG(
    dag_id="ingest_events",
    schedule=None,
    catchup=False,
    tags=["airgate", "example"],
    user_defined_macros=AIRGATE_MACROS,
    default_args={"retries": 0},  # gateway retries happen inside the task (Retry-After aware)
) as dag:
    HttpOperator(
        task_id="post_events",
        http_conn_id="gw_ingest",
        method="POST",
        endpoint="/v1/events",
        headers=gateway_headers(**{"Content-Type": "application/json"}),
        data=json.dumps({"source": "airflow", "run_id": "{{ run_id }}", "events": [{"type": "heartbeat"}]}),
        retry_args=gateway_retry_args(),
        log_response=True,
    )
