"""The local environment's Airflow connections, from the same builder as the Kubernetes Secrets,
pointed at the local gateway ports and the local OpenID provider."""

from __future__ import annotations

from infra.airflow.connections import plain_connections
from infra.config.loader import LoadedStack
from infra.local.plan import Ports, machine_clients


def local_airflow_connections(loaded: LoadedStack, ports: Ports, secrets: dict[str, str]) -> dict[str, str]:
    """AIRFLOW_CONN_<ID> → connection JSON for every (gateway, task role) pair."""
    stack = loaded.config
    if stack.airflow is None:
        return {}
    return plain_connections(
        stack,
        {name: f"http://127.0.0.1:{port}" for name, port in ports.gateways.items()},
        oauth2_client_secrets={c: secrets[f"oidc-client-{c}"] for c in machine_clients(stack)},
        issuer=f"http://127.0.0.1:{ports.oidc}",
    )
