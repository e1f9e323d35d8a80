"""The Helm values and the Kubernetes objects airgate creates itself, before any chart or cluster is
involved: what they wire, and Kubernetes' own (strict) schemas. The values against the released
chart (its schema, `helm lint`, `helm template`) are the chart tier's (tests/chart/)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.airflow.chart import pinned_sha256
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
from infra.airflow.plan import plan_airflow
from infra.airflow.tunnel_plan import connector_token, plan_tunnel
from infra.config.loader import load_stack

K8S_STACKS = ["dev", "staging", "prod"]
K8S_VERSIONS = [kubernetes_validate.latest_version(), "1.33.0"]


def values_of(stack: Any) -> dict[str, Any]:
    return plan_helm_values(stack, plan_connections(stack), "# webserver_config.py")


def env_entries(values: dict[str, Any], component: str) -> dict[str, dict[str, Any]]:
    """A component's env; for `workers`, its executors' sub-sections (`kubernetes`, `celery`)."""
    section = values.get(component, {})
    entries = list(section.get("env", []))
    if component == "workers":
        entries += [e for sub in ("kubernetes", "celery") for e in section.get(sub, {}).get("env", [])]
    return {entry["name"]: entry for entry in entries}


def test_every_stack_chart_version_has_a_pinned_release_digest() -> None:
    """The chart tier checks the archive against this digest, however it arrives."""
    for name in K8S_STACKS:
        chart = load_stack(name).config.airflow.chart  # type: ignore[union-attr]
        assert chart is not None
        assert len(pinned_sha256(chart.version)) == 64


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_helm_values_pin_secrets_and_wire_every_connection(stack_name: str) -> None:
    stack = load_stack(stack_name).config
    assert stack.airflow is not None
    plans = plan_connections(stack)
    values = values_of(stack)
    names = secret_names(stack.airflow)
    assert values["fernetKeySecretName"] == names.fernet_key
    assert values["apiSecretKeySecretName"] == names.api_secret_key
    assert values["jwtSecretName"] == names.jwt_secret
    assert "secret" not in values  # the chart's global list would reach every pod
    # KubernetesExecutor: task pods (the chart's `workers.kubernetes`), deferred tasks
    for entries in (env_entries(values["workers"], "kubernetes"), env_entries(values, "triggerer")):
        for plan in plans:
            assert entries[plan.env_name] == {
                "name": plan.env_name,
                "valueFrom": {"secretKeyRef": {"name": names.connections, "key": plan.env_name}},
            }
    for component in ("apiServer", "scheduler", "dagProcessor"):
        assert not [n for n in env_entries(values, component) if n.startswith("AIRFLOW_CONN_")]
    assert not any(item["name"].startswith("AIRFLOW_CONN_") for item in values["env"])
    # The chart's contract for Jobs without hooks (immutable Job templates).
    assert values["migrateDatabaseJob"] == {"useHelmHooks": False, "applyCustomEnv": False}
    # The chart's user Job would create an Admin `admin` with password `admin`: off in every stack.
    assert values["createUserJob"] == {"enabled": False, "serviceAccount": {"create": False}}
    assert "defaultUser" not in values["apiServer"]
    # Only the executor's own worker section: the shared `workers.env` is deprecated by the chart.
    assert set(values["workers"]) == {"kubernetes"}
    assert values["apiServer"]["service"]["type"] == "ClusterIP"
    assert '"enabled": true' not in json.dumps(values["ingress"])
    assert values["executor"] == "KubernetesExecutor"
    assert "SimpleAuthManager" not in json.dumps(values)


def test_the_database_is_never_the_bitnami_subchart() -> None:
    for name in K8S_STACKS:
        stack = load_stack(name).config
        assert stack.airflow is not None
        values = values_of(stack)
        assert values["postgresql"] == {"enabled": False}
        assert values["data"] == {"metadataSecretName": secret_names(stack.airflow).metadata}


@pytest.mark.parametrize("executor", ["KubernetesExecutor", "CeleryExecutor", "LocalExecutor"])
def test_connections_go_to_the_components_that_run_tasks(executor: str) -> None:
    assert STAGING.airflow is not None
    stack = STAGING.model_copy(update={"airflow": STAGING.airflow.model_copy(update={"executor": executor})})
    values = values_of(stack)
    runs_tasks = {
        "KubernetesExecutor": {"workers"},
        "CeleryExecutor": {"workers"},
        "LocalExecutor": {"scheduler"},
    }
    expected = runs_tasks[executor] | {"triggerer"}
    holders = {
        key
        for key in ("apiServer", "scheduler", "dagProcessor", "triggerer", "workers")
        if any(name.startswith("AIRFLOW_CONN_") for name in env_entries(values, key))
    }
    assert holders == expected
    sections = {"KubernetesExecutor": {"kubernetes"}, "CeleryExecutor": {"celery"}, "LocalExecutor": set()}
    assert set(values.get("workers", {})) == sections[executor]
    # Celery's broker secrets are airgate's (the chart makes them as hooks, with a new random password).
    secrets = {m["metadata"]["name"] for m in direct_manifests(stack, []) if m["kind"] == "Secret"}
    broker = {"airflow-airgate-redis-password", "airflow-airgate-broker-url"}
    assert (broker <= secrets) == (executor == "CeleryExecutor")
    assert ("brokerUrlSecretName" in values["data"]) == (executor == "CeleryExecutor")


def test_no_component_of_the_chart_gets_the_trigger_password() -> None:
    stack = load_stack("prod").config
    text = json.dumps(values_of(stack))
    assert "AIRGATE_TRIGGER_API_PASSWORD" not in text
    assert stack.airflow is not None
    assert secret_names(stack.airflow).trigger_user not in text


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_direct_objects_pass_kubernetes_validate_strict(stack_name: str, version: str) -> None:
    stack = load_stack(stack_name).config
    plan = plan_airflow(stack_name, stack)
    assert plan is not None and plan.kubernetes is not None
    manifests = [*plan.kubernetes.manifests, *plan.kubernetes.postgres, plan.kubernetes.bootstrap_job]
    kinds = [m["kind"] for m in manifests]
    assert {"Namespace", "Secret", "Deployment", "NetworkPolicy"} <= set(kinds)
    assert "Ingress" not in kinds
    assert ("StatefulSet" in kinds) == (stack_name == "dev")  # dev's bundled database only
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
    """Whatever roles Airflow acts as: one secret entry per connection, no connection credential
    anywhere in the values (the chart tier checks such values against the release's own schema)."""
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
    values = values_of(stack)
    conn_entries = [e for e in values["triggerer"]["env"] if e["name"].startswith("AIRFLOW_CONN_")]
    assert sorted(e["name"] for e in conn_entries) == sorted(p.env_name for p in plans)
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in conn_entries} == {
        secret_names(settings_).connections
    }
    assert values["executor"] == executor
    text = json.dumps(values)
    assert "CF-Access-Client-Secret" not in text and '"password"' not in text
