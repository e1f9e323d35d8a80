"""The Helm values and the Kubernetes objects airgate creates itself, checked against the chart's
schema and Kubernetes' own (strict) schemas, before any cluster is involved."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.airflow.connections import plan_connections
from infra.airflow.kubernetes_plan import (
    API_SERVER_PORT,
    CLOUDFLARED_LABELS,
    airflow_pod_labels,
    api_server_labels,
    chart_fullname,
    direct_manifests,
    plan_helm_values,
    secret_names,
)
from infra.airflow.tunnel_plan import connector_token, plan_tunnel
from infra.config.loader import load_stack
from tests.airflow.conftest import SCHEMA

K8S_STACKS = ["dev", "staging", "prod"]
K8S_VERSIONS = [kubernetes_validate.latest_version(), "1.33.0"]


def strict_chart_schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA.read_text())
    schema = copy.deepcopy(schema)
    schema["additionalProperties"] = False  # stricter than the chart: catches a misspelt top-level key
    return schema


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_helm_values_pass_the_chart_schema(stack_name: str) -> None:
    stack = load_stack(stack_name).config
    values = plan_helm_values(stack, plan_connections(stack))
    jsonschema.Draft7Validator(strict_chart_schema()).validate(values)


def test_the_strict_schema_catches_a_typo() -> None:
    stack = load_stack("dev").config
    values = plan_helm_values(stack, plan_connections(stack))
    values["fernetKeySecretname"] = values.pop("fernetKeySecretName")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(strict_chart_schema()).validate(values)


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_helm_values_pin_secrets_and_wire_every_connection(stack_name: str) -> None:
    stack = load_stack(stack_name).config
    assert stack.airflow is not None
    plans = plan_connections(stack)
    values = plan_helm_values(stack, plans)
    names = secret_names(stack.airflow)
    assert values["fernetKeySecretName"] == names.fernet_key
    assert values["apiSecretKeySecretName"] == names.api_secret_key
    assert values["jwtSecretName"] == names.jwt_secret
    entries = {entry["envName"]: entry for entry in values["secret"]}
    for plan in plans:
        assert entries[plan.env_name] == {
            "envName": plan.env_name,
            "secretName": names.connections,
            "secretKey": plan.env_name,
        }
    assert not any(item["name"].startswith("AIRFLOW_CONN_") for item in values["env"])
    assert values["migrateDatabaseJob"]["useHelmHooks"] is False
    assert values["createUserJob"]["useHelmHooks"] is False
    assert values["apiServer"]["service"]["type"] == "ClusterIP"
    assert '"enabled": true' not in json.dumps(values["ingress"])
    assert values["executor"] == "KubernetesExecutor"
    assert "SimpleAuthManager" not in json.dumps(values)


def test_database_choice_follows_the_stack() -> None:
    dev = load_stack("dev").config
    prod = load_stack("prod").config
    dev_values = plan_helm_values(dev, plan_connections(dev))
    prod_values = plan_helm_values(prod, plan_connections(prod))
    assert dev_values["postgresql"] == {"enabled": True} and "data" not in dev_values
    assert prod_values["postgresql"] == {"enabled": False}
    assert prod.airflow is not None
    assert prod_values["data"] == {"metadataSecretName": secret_names(prod.airflow).metadata}


def test_the_create_user_job_reads_its_password_from_a_secret() -> None:
    stack = load_stack("prod").config
    values = plan_helm_values(stack, plan_connections(stack))
    command = " ".join(values["createUserJob"]["args"])
    assert '-p "$AIRGATE_TRIGGER_API_PASSWORD"' in command
    entry = next(e for e in values["secret"] if e["envName"] == "AIRGATE_TRIGGER_API_PASSWORD")
    assert stack.airflow is not None
    assert entry["secretName"] == secret_names(stack.airflow).trigger_user


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_direct_objects_pass_kubernetes_validate_strict(stack_name: str, version: str) -> None:
    stack = load_stack(stack_name).config
    manifests = direct_manifests(stack, plan_connections(stack))
    kinds = [m["kind"] for m in manifests]
    assert {"Namespace", "Secret", "Deployment", "NetworkPolicy"} <= set(kinds)
    assert "Ingress" not in kinds and "Service" not in kinds
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    stack = load_stack("dev").config
    deployment = next(m for m in direct_manifests(stack, []) if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["envv"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_network_policy_admits_only_cloudflared_and_airflow() -> None:
    stack = load_stack("prod").config
    assert stack.airflow is not None
    policy = next(m for m in direct_manifests(stack, []) if m["kind"] == "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == api_server_labels(stack.airflow)
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]
    peers = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    assert peers == [CLOUDFLARED_LABELS, airflow_pod_labels(stack.airflow)]
    assert all(set(peer) == {"podSelector"} for peer in rule["from"])  # no namespace or IP-block peers
    assert rule["ports"] == [{"protocol": "TCP", "port": API_SERVER_PORT}]


def test_cloudflared_reads_its_token_from_the_secret() -> None:
    stack = load_stack("prod").config
    assert stack.airflow is not None
    deployment = next(m for m in direct_manifests(stack, []) if m["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [env] = container["env"]
    assert env["name"] == "TUNNEL_TOKEN"
    assert env["valueFrom"]["secretKeyRef"]["name"] == secret_names(stack.airflow).tunnel_token
    assert "value" not in env
    assert not any("token" in arg.lower() for arg in container["args"])


def test_tunnel_forwards_both_hostnames_to_the_api_server_and_nothing_else() -> None:
    stack = load_stack("prod").config
    assert stack.airflow is not None
    plan = plan_tunnel("prod", stack)
    service = f"http://{chart_fullname(stack.airflow)}-api-server.airflow.svc.cluster.local:8080"
    assert plan.ingress == (
        {"hostname": "airflow.acme-data.com", "service": service},
        {"hostname": "airflow-api.acme-data.com", "service": service},
        {"service": "http_status:404"},
    )
    assert plan.ui_groups == ("data-engineering", "platform")
    assert plan.ui_emails == ("oncall@acme-data.com",)


@settings(max_examples=50, deadline=None)
@given(
    account=st.from_regex(r"\A[0-9a-f]{32}\Z"),
    tunnel=st.uuids().map(str),
    secret=st.binary(min_size=32, max_size=32),
)
def test_connector_token_carries_account_tunnel_and_secret(account: str, tunnel: str, secret: bytes) -> None:
    import base64

    secret_b64 = base64.b64encode(secret).decode()
    decoded = json.loads(base64.b64decode(connector_token(account, tunnel, secret_b64)))
    assert decoded == {"a": account, "t": tunnel, "s": secret_b64}


@settings(max_examples=50, deadline=None)
@given(release=st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z"))
def test_chart_fullname_follows_the_chart_helper(release: str) -> None:
    stack = load_stack("dev").config
    assert stack.airflow is not None
    settings_ = stack.airflow.model_copy(update={"release_name": release})
    name = chart_fullname(settings_)
    assert name == (release if "airflow" in release else f"{release}-airflow")


STAGING = load_stack("staging").config


@settings(max_examples=30, deadline=None)
@given(
    roles=st.lists(
        st.sampled_from(["airflow-worker", "ai-agent", "ci"]), min_size=1, max_size=3, unique=True
    ),
    executor=st.sampled_from(
        ["KubernetesExecutor", "CeleryExecutor", "LocalExecutor", "CeleryExecutor,KubernetesExecutor"]
    ),
    release=st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z"),
)
def test_helm_values_stay_valid_and_complete_for_any_task_roles(
    roles: list[str], executor: str, release: str
) -> None:
    """Whatever roles Airflow acts as: schema-valid values, one secret entry per connection, no
    connection credential anywhere in the values."""
    assert STAGING.airflow is not None
    template = STAGING.airflow.task_roles["airflow-worker"]
    settings_ = STAGING.airflow.model_copy(
        update={
            "task_roles": {role: template for role in roles},
            "default_task_role": roles[0],
            "executor": executor,
            "release_name": release,
        }
    )
    stack = STAGING.model_copy(update={"airflow": settings_})
    plans = plan_connections(stack)
    values = plan_helm_values(stack, plans)
    jsonschema.Draft7Validator(strict_chart_schema()).validate(values)
    conn_entries = [e for e in values["secret"] if e["envName"].startswith("AIRFLOW_CONN_")]
    assert sorted(e["envName"] for e in conn_entries) == sorted(p.env_name for p in plans)
    assert {e["secretName"] for e in conn_entries} == {secret_names(settings_).connections}
    assert values["executor"] == executor
    text = json.dumps(values)
    assert "CF-Access-Client-Secret" not in text and '"password"' not in text.replace(
        '"secretKey": "password"', ""
    )
