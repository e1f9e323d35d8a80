"""The gateway connections: which exist, and what Airflow itself reads out of their JSON."""

from __future__ import annotations

import json
import re

import pytest
from airflow.models.connection import Connection
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.airflow.connections import (
    ConnectionCredentials,
    ConnectionPlan,
    OAuth2Endpoint,
    connection_document,
    connection_ids_by_gateway,
    connection_json,
    oauth2_endpoint,
    plain_connections,
    plan_connections,
)
from infra.config.loader import load_stack
from infra.config.model import StackConfig

OAUTH2 = OAuth2Endpoint("https://idp.example/oauth2/v1/token", "api://airgate", "resource", None, 60)


def test_dev_gets_one_connection_per_reachable_gateway() -> None:
    stack = load_stack("dev").config
    plans = {plan.conn_id: plan for plan in plan_connections(stack)}
    assert sorted(plans) == ["gw_ingest", "gw_trigger", "gw_warehouse"]
    assert plans["gw_ingest"].auth == "access" and plans["gw_ingest"].service_token == "airflow-worker"
    # dev's warehouse gateway is in oidc mode without Access: OAuth2 only, no service token.
    assert plans["gw_warehouse"].auth == "oidc" and plans["gw_warehouse"].service_token is None
    assert plans["gw_warehouse"].oidc_client == "airflow-worker"
    assert plans["gw_ingest"].env_name == "AIRFLOW_CONN_GW_INGEST"


def test_second_task_role_gets_its_own_connections() -> None:
    stack = load_stack("staging").config
    assert stack.airflow is not None
    more = stack.airflow.model_copy(
        update={
            "task_roles": {**stack.airflow.task_roles, "ai-agent": stack.airflow.task_roles["airflow-worker"]}
        }
    )
    stack = stack.model_copy(update={"airflow": more})
    by_gateway = connection_ids_by_gateway(plan_connections(stack))
    # ai-agent may query the warehouse and trigger DAGs, but has no route on ingest.
    assert by_gateway == {
        "ingest": ["gw_ingest"],
        "trigger": ["gw_trigger", "gw_trigger_as_ai_agent"],
        "warehouse": ["gw_warehouse", "gw_warehouse_as_ai_agent"],
    }


def test_access_connection_as_airflow_reads_it() -> None:
    plan = ConnectionPlan("gw_ingest", "ingest", "airflow-worker", "access", True, "airflow-worker", None)
    text = connection_json(
        plan,
        ConnectionCredentials("https://ingest.dev.acme-data.com", "abc.access", "s3cret"),
        None,
    )
    conn = Connection.from_json(text, conn_id="gw_ingest")
    assert conn.conn_type == "http"
    assert conn.host == "https://ingest.dev.acme-data.com"
    assert conn.extra_dejson == {"CF-Access-Client-Id": "abc.access", "CF-Access-Client-Secret": "s3cret"}
    assert conn.login is None and conn.password is None


def test_oidc_connection_as_airflow_reads_it() -> None:
    plan = ConnectionPlan(
        "gw_warehouse", "warehouse", "airflow-worker", "oidc", False, None, "airflow-worker"
    )
    text = connection_json(
        plan,
        ConnectionCredentials(
            "https://warehouse.dev.acme-data.com",
            oauth2_client_id="airflow-worker",
            oauth2_client_secret="client-secret",
        ),
        OAUTH2,
    )
    conn = Connection.from_json(text, conn_id="gw_warehouse")
    assert conn.conn_type == "airgate_gateway"
    assert conn.host == "https://warehouse.dev.acme-data.com"
    assert (conn.login, conn.password) == ("airflow-worker", "client-secret")
    assert conn.extra_dejson == {
        "oauth2": {
            "token_url": "https://idp.example/oauth2/v1/token",
            "audience": "api://airgate",
            "audience_parameter": "resource",
            "refresh_margin_seconds": 60,
        }
    }


def test_a_missing_credential_is_an_error_not_an_open_connection() -> None:
    plan = ConnectionPlan("gw_ingest", "ingest", "airflow-worker", "access", True, "airflow-worker", None)
    with pytest.raises(ValueError, match="behind Access but no service token"):
        connection_document(plan, ConnectionCredentials("https://ingest.dev.acme-data.com"), None)


def test_token_endpoint_defaults_and_overrides() -> None:
    dev = load_stack("dev").config
    assert oauth2_endpoint(dev).token_url == "https://acme.okta.com/oauth2/default/v1/token"
    local = load_stack("local").config
    assert oauth2_endpoint(local).token_url == "http://127.0.0.1:9400/token"
    assert oauth2_endpoint(local, issuer="http://127.0.0.1:4242/").token_url == "http://127.0.0.1:4242/token"


# --- properties -----------------------------------------------------------------------------------

printable = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)
hosts = st.from_regex(r"\Ahttps://[a-z][a-z0-9-]{0,20}\.example\.com(:[1-9][0-9]{2,4})?\Z")


@settings(max_examples=60, deadline=None)
@given(url=hosts, client_id=printable, secret=printable, oidc=st.booleans(), behind_access=st.booleans())
def test_airflow_reads_back_exactly_what_was_written(
    url: str, client_id: str, secret: str, oidc: bool, behind_access: bool
) -> None:
    """Whatever characters a credential holds, Airflow's own parser gets host and credential intact."""
    if not (oidc or behind_access):
        behind_access = True
    plan = ConnectionPlan(
        "gw_x",
        "x",
        "r",
        "oidc" if oidc else "access",
        behind_access,
        "r" if behind_access else None,
        "r-client" if oidc else None,
    )
    credentials = ConnectionCredentials(
        url,
        access_client_id=client_id if behind_access else None,
        access_client_secret=secret if behind_access else None,
        oauth2_client_id="r-client" if oidc else None,
        oauth2_client_secret=secret if oidc else None,
    )
    conn = Connection.from_json(connection_json(plan, credentials, OAUTH2 if oidc else None), conn_id="gw_x")
    assert conn.host == url
    extra = conn.extra_dejson
    if behind_access:
        assert extra["CF-Access-Client-Id"] == client_id
        assert extra["CF-Access-Client-Secret"] == secret
    if oidc:
        assert conn.conn_type == "airgate_gateway" and conn.password == secret
        assert extra["oauth2"]["token_url"] == OAUTH2.token_url
    else:
        assert conn.conn_type == "http" and conn.password is None


def _with_task_roles(stack: StackConfig, roles: list[str]) -> StackConfig:
    assert stack.airflow is not None
    template = stack.airflow.task_roles["airflow-worker"]
    settings_ = stack.airflow.model_copy(
        update={"task_roles": {role: template for role in roles}, "default_task_role": roles[0]}
    )
    return stack.model_copy(update={"airflow": settings_})


STAGING = load_stack("staging").config
MACHINE_ROLES = ["airflow-worker", "ai-agent", "ci"]


@settings(max_examples=40, deadline=None)
@given(st.permutations(MACHINE_ROLES), st.integers(min_value=1, max_value=3))
def test_connections_do_not_depend_on_declaration_order(order: list[str], count: int) -> None:
    chosen = order[:count]
    default = chosen[0]
    forward = plan_connections(_with_task_roles(STAGING, [default, *sorted(chosen[1:])]))
    backward = plan_connections(_with_task_roles(STAGING, [default, *sorted(chosen[1:], reverse=True)]))
    assert forward == backward
    ids = [plan.conn_id for plan in forward]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"AIRFLOW_CONN_[A-Z0-9_]+", plan.env_name) for plan in forward)
    # Exactly the granted pairs: a role gets a connection to a gateway iff it may call something there.
    for plan in forward:
        gateway = STAGING.gateways[plan.gateway]
        granted = any(plan.role in route.roles for route in gateway.routes.values()) or any(
            g.gateway == plan.gateway and g.role == plan.role for g in STAGING.dag_grants
        )
        assert granted
    pairs = {(plan.gateway, plan.role) for plan in forward}
    for role in chosen:
        for name, gateway in STAGING.gateways.items():
            if any(role in route.roles for route in gateway.routes.values()):
                assert (name, role) in pairs
    assert sum(1 for plan in forward if plan.role == default and "_as_" in plan.conn_id) == 0


def test_connection_json_is_canonical() -> None:
    plan = ConnectionPlan("gw_ingest", "ingest", "airflow-worker", "access", True, "airflow-worker", None)
    credentials = ConnectionCredentials("https://ingest.dev.acme-data.com/", "id", "secret")
    text = connection_json(plan, credentials, None)
    assert text == connection_json(plan, credentials, None)
    assert json.loads(text)["host"] == "https://ingest.dev.acme-data.com"


def test_plain_connections_for_the_local_environment() -> None:
    stack = load_stack("local").config
    urls = {name: f"http://127.0.0.1:{9601 + i}" for i, name in enumerate(sorted(stack.gateways))}
    found = plain_connections(
        stack, urls, oauth2_client_secrets={"airflow-worker": "local-secret"}, issuer="http://127.0.0.1:9400"
    )
    assert sorted(found) == ["AIRFLOW_CONN_GW_INGEST", "AIRFLOW_CONN_GW_TRIGGER", "AIRFLOW_CONN_GW_WAREHOUSE"]
    conn = Connection.from_json(found["AIRFLOW_CONN_GW_INGEST"], conn_id="gw_ingest")
    assert conn.host == urls["ingest"]
    assert (conn.conn_type, conn.login, conn.password) == (
        "airgate_gateway",
        "airflow-worker",
        "local-secret",
    )
    assert conn.extra_dejson["oauth2"]["token_url"] == "http://127.0.0.1:9400/token"
