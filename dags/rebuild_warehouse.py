"""Call pattern 3 — start another DAG through the DAG-trigger gateway: POST a run of
`refresh_dashboards` (connection `gw_trigger`). The idempotency key is derived from this run and task,
so a retried request never starts a second run."""

from __future__ import annotations

import json

from airflow.providers.http.operators.http import HttpOperator
from airflow.sdk import DAG
from airgate_http import AIRGATE_MACROS, gateway_headers, gateway_retry_args

with DAG(
    dag_id="rebuild_warehouse",
    schedule=None,
    catchup=False,
    tags=["airgate", "example"],
    user_defined_macros=AIRGATE_MACROS,
    default_args={"retries": 0},
) as dag:
    HttpOperator(
        task_id="trigger_refresh_dashboards",
        http_conn_id="gw_trigger",
        method="POST",
        endpoint="/dags/refresh_dashboards/runs",
        headers=gateway_headers(
            **{
                "Content-Type": "application/json",
                "Idempotency-Key": "{{ dag.dag_id }}.{{ run_id }}.{{ ti.task_id }}",
            }
        ),
        data=json.dumps({"conf": {"dashboard": "revenue"}}),
        retry_args=gateway_retry_args(),
        log_response=True,
    )
