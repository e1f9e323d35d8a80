"""Call pattern 2 — read from an internal API through a proxy gateway: GET a table's metadata from the
warehouse query API (connection `gw_warehouse`; in `oidc` mode the connection fetches and caches an
OAuth2 client-credentials token itself)."""

from __future__ import annotations

from airflow.providers.http.operators.http import HttpOperator
from airflow.sdk import DAG, Param
from airgate_http import AIRGATE_MACROS, gateway_headers, gateway_retry_args

with DAG(
    dag_id="refresh_dashboards",
    schedule=None,
    catchup=False,
    tags=["airgate", "example"],
    user_defined_macros=AIRGATE_MACROS,
    params={"dashboard": Param("revenue", enum=["revenue", "retention", "funnel"])},
    default_args={"retries": 0},
) as dag:
    HttpOperator(
        task_id="read_table",
        http_conn_id="gw_warehouse",
        method="GET",
        endpoint="/v1/tables/dashboards/{{ params.dashboard }}",
        headers=gateway_headers(),
        retry_args=gateway_retry_args(),
        log_response=True,
    )
