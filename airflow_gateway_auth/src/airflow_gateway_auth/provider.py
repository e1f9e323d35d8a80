"""Provider metadata Airflow discovers through the `apache_airflow_provider` entry point: it maps the
`airgate_gateway` connection type to `GatewayHttpHook`, so `HttpOperator` picks the hook by itself."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-gateway-auth",
        "name": "airgate gateway auth",
        "description": "OAuth2 client-credentials auth for HTTP calls through airgate gateways.",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "connection-type": "airgate_gateway",
                "hook-class-name": "airflow_gateway_auth.hooks.GatewayHttpHook",
            }
        ],
    }
