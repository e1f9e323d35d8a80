"""The Airflow components under Pulumi mocks: what they would really create, and the security
properties a reviewer checks first."""

from __future__ import annotations

import base64
import json
from typing import Any

import kubernetes_validate
import pytest
from airflow.models.connection import Connection

from infra.airflow.connections import GATEWAY_CONN_TYPE
from infra.airflow.kubernetes_plan import secret_names
from infra.airflow.program import create_trigger_identity, deploy_airflow
from infra.config.loader import load_stack
from infra.config.sections import Rotation
from infra.plan.runner import RecordedResource, Recording, is_secret
from tests.airflow.conftest import fake_edge, recorded, run_recorded

K8S_STACKS = ["dev", "staging", "prod"]


def plain(value: Any) -> Any:
    """Inputs with Pulumi's secret markers removed (and whole-number floats back to ints)."""
    if is_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def k8s(recording: Recording, kind: str) -> list[RecordedResource]:
    return [
        r for r in recording.resources if r.type.startswith("kubernetes:") and r.type.endswith(f":{kind}")
    ]


def secrets_by_name(recording: Recording) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["name"]: r for r in k8s(recording, "Secret")}


def release(recording: Recording) -> RecordedResource:
    [found] = [r for r in recording.resources if r.type == "kubernetes:helm.sh/v4:Chart"]
    return found


def walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node, *(n for v in node.values() for n in walk(v))]
    if isinstance(node, list):
        return [node, *(n for v in node for n in walk(v))]
    return [node]


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_every_connection_is_a_task_pod_env_pointing_at_a_real_secret_key(stack_name: str) -> None:
    recording = recorded(stack_name)
    values = plain(release(recording).inputs["values"])
    existing = {name: set(plain(r.inputs["stringData"])) for name, r in secrets_by_name(recording).items()}
    connection_ids = [cid for ids in recording.outputs["airflow_connection_ids"].values() for cid in ids]
    for section in (values["workers"]["kubernetes"], values["triggerer"]):
        entries = {entry["name"]: entry["valueFrom"]["secretKeyRef"] for entry in section["env"]}
        for conn_id in connection_ids:
            ref = entries[f"AIRFLOW_CONN_{conn_id.upper()}"]
            assert ref["key"] in existing[ref["name"]]
    # and no secretKeyRef anywhere in the values dangles
    refs = [node for node in walk(values) if isinstance(node, dict) and "secretKeyRef" in node]
    assert refs
    for ref in refs:
        key_ref = ref["secretKeyRef"]
        assert key_ref["key"] in existing[key_ref["name"]], key_ref


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_connections_parse_with_airflow_and_carry_the_right_identity(stack_name: str) -> None:
    loaded = load_stack(stack_name)
    stack = loaded.config
    recording = recorded(stack_name)
    assert stack.airflow is not None
    secret = secrets_by_name(recording)[secret_names(stack.airflow).connections]
    assert is_secret(secret.inputs["stringData"])
    documents = plain(secret.inputs["stringData"])
    ids = recording.outputs["airflow_connection_ids"]
    assert sorted(documents) == sorted(f"AIRFLOW_CONN_{c.upper()}" for v in ids.values() for c in v)
    for gateway_name, conn_ids in ids.items():
        gateway = stack.gateways[gateway_name]
        for conn_id in conn_ids:
            conn = Connection.from_json(documents[f"AIRFLOW_CONN_{conn_id.upper()}"], conn_id=conn_id)
            assert conn.host == f"https://{gateway.hostname}"  # the edge's URL output
            extra = conn.extra_dejson
            if gateway.behind_access:
                assert extra["CF-Access-Client-Id"] == "airflow-worker-client-id.access"
                assert extra["CF-Access-Client-Secret"] == "airflow-worker-client-secret-value"
            else:
                assert "CF-Access-Client-Id" not in extra
            if stack.gateway_auth(gateway) == "oidc":
                assert conn.conn_type == GATEWAY_CONN_TYPE
                assert conn.login == "airflow-worker"
                assert conn.password == "plan-placeholder-airflowWorkerOidcSecret"
                assert extra["oauth2"]["token_url"].startswith("https://")
            else:
                assert conn.conn_type == "http" and conn.password is None


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_no_secret_reaches_plain_values_or_inputs(stack_name: str) -> None:
    recording = recorded(stack_name)
    leaked = ("client-secret-value", "plan-placeholder-", "password")
    rel = release(recording)
    assert not is_secret(rel.inputs["values"])  # the values are plain, so they must hold no secret
    for text in strings(rel.inputs["values"]):
        assert not any(marker in text for marker in leaked[:2]), text
    for resource in recording.resources:
        for key, value in resource.inputs.items():
            if is_secret(value):
                continue
            for text in strings(value):
                assert "client-secret-value" not in text, (resource.name, key)
                assert "plan-placeholder-" not in text, (resource.name, key)
    # Every k8s Secret's data is a Pulumi secret.
    for secret in k8s(recording, "Secret"):
        assert is_secret(secret.inputs["stringData"]), secret.name


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_the_three_keys_are_pinned_to_secrets_we_manage(stack_name: str) -> None:
    recording = recorded(stack_name)
    values = plain(release(recording).inputs["values"])
    managed = secrets_by_name(recording)
    assert set(plain(managed[values["fernetKeySecretName"]].inputs["stringData"])) == {"fernet-key"}
    assert set(plain(managed[values["apiSecretKeySecretName"]].inputs["stringData"])) == {"api-secret-key"}
    assert set(plain(managed[values["jwtSecretName"]].inputs["stringData"])) == {"jwt-secret"}
    # Their values come from random resources kept in state: stable across upgrades.
    randoms = {r.name for r in recording.resources if r.type.startswith("random:")}
    assert {"airflow-fernet-key", "airflow-api-secret-key", "airflow-jwt-secret"} <= randoms
    fernet = plain(managed[values["fernetKeySecretName"]].inputs["stringData"])["fernet-key"]
    assert len(base64.urlsafe_b64decode(fernet + "=" * (-len(fernet) % 4))) > 0


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_no_public_door(stack_name: str) -> None:
    recording = recorded(stack_name)
    kinds = {r.type.rsplit(":", 1)[1] for r in recording.resources if r.type.startswith("kubernetes:")}
    assert "Ingress" not in kinds
    for service in k8s(recording, "Service"):
        assert plain(service.inputs).get("spec", {}).get("type") in (None, "ClusterIP")
    values = plain(release(recording).inputs["values"])
    assert '"enabled": true' not in json.dumps(values.get("ingress", {}))
    assert "LoadBalancer" not in json.dumps(values) and "NodePort" not in json.dumps(values)


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_the_review_rules_find_nothing_wrong_with_airflow(stack_name: str) -> None:
    """The repository's own plan rules (the ones CI runs) agree: no public door, no plain-text
    secret, data protected in prod."""
    from infra.plan.document import plan_document
    from infra.rules.model import RuleConfig
    from infra.rules.registry import airflow_no_public_ingress, no_plaintext_secret, prod_data_protected
    from infra.rules.view import PlanView

    view = PlanView(plan_document(load_stack(stack_name), recorded(stack_name)))
    for rule in (airflow_no_public_ingress, no_plaintext_secret, prod_data_protected):
        assert list(rule(view, RuleConfig())) == []


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_the_tunnel_token_is_a_secret_and_opens_this_tunnel(stack_name: str) -> None:
    recording = recorded(stack_name)
    stack = load_stack(stack_name).config
    assert stack.airflow is not None
    secret = secrets_by_name(recording)[secret_names(stack.airflow).tunnel_token]
    assert is_secret(secret.inputs["stringData"])
    token = plain(secret.inputs["stringData"])["token"]
    decoded = json.loads(base64.b64decode(token))
    assert decoded["a"] == stack.account_id
    assert decoded["t"].startswith("airflow-tunnel-tunnel")  # the mocked tunnel id
    tunnel = recording.by_name("airflow-tunnel-tunnel")
    assert tunnel.inputs["configSrc"] == "cloudflare"
    assert is_secret(tunnel.inputs["tunnelSecret"])
    assert decoded["s"] == plain(tunnel.inputs["tunnelSecret"])
    [config] = [r for r in recording.resources if r.type.endswith("ZeroTrustTunnelCloudflaredConfig")]
    hosts = [rule.get("hostname") for rule in plain(config.inputs["config"])["ingresses"]]
    assert hosts == [stack.airflow.ui_hostname, stack.airflow.api_hostname, None]


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_both_hostnames_sit_behind_access(stack_name: str) -> None:
    recording = recorded(stack_name)
    stack = load_stack(stack_name).config
    assert stack.airflow is not None
    apps = {
        r.inputs["domain"]: r for r in recording.resources if r.type.endswith("ZeroTrustAccessApplication")
    }
    policies = {r.name: r for r in recording.resources if r.type.endswith("ZeroTrustAccessPolicy")}
    ui = apps[stack.airflow.ui_hostname]
    api = apps[stack.airflow.api_hostname]
    assert [p["precedence"] for p in plain(ui.inputs["policies"])] == [1]
    assert policies["airflow-tunnel-ui-people"].inputs["decision"] == "allow"
    machine = policies["airflow-tunnel-api-trigger"]
    assert machine.inputs["decision"] == "non_identity"
    [include] = plain(machine.inputs["includes"])
    assert set(include) == {"serviceToken"}
    assert plain(api.inputs["policies"])[0]["precedence"] == 1
    records = [r for r in recording.resources if r.type.endswith("DnsRecord")]
    assert sorted(r.inputs["name"] for r in records) == sorted(
        [stack.airflow.ui_hostname, stack.airflow.api_hostname]
    )
    assert all(r.inputs["proxied"] is True and r.inputs["type"] == "CNAME" for r in records)


def test_house_style_and_outputs() -> None:
    recording = recorded("prod")
    components = [r for r in recording.resources if not r.custom and r.type.startswith("airgate:")]
    # The chart is pulumi-kubernetes' own component (its objects are its children), one of ours.
    chart = release(recording)
    assert not chart.custom and chart.parent == "airflow" and chart.name == "airflow-chart"
    assert {r.type for r in components} == {
        "airgate:airflow:TriggerUpstreamIdentity",
        "airgate:airflow:AirflowTunnel",
        "airgate:airflow:AirflowOnKubernetes",
    }
    names = {r.name for r in components}
    for resource in recording.resources:
        if resource.custom:
            assert resource.parent in names, resource.name
            assert resource.name.startswith(f"{resource.parent}-"), resource.name
    assert recording.outputs["airflow_ui_url"] == "https://airflow.acme-data.com"
    assert recording.outputs["airflow_namespace"] == "airflow"
    assert recording.outputs["airflow_connection_ids"] == {
        "ingest": ["gw_ingest"],
        "trigger": ["gw_trigger"],
        "warehouse": ["gw_warehouse"],
    }
    assert recording.by_name("airflow-namespace").protect  # prod
    chart = release(recording).inputs
    assert chart["version"] == "1.22.0" and chart["repositoryOpts"] == {"repo": "https://airflow.apache.org"}
    assert chart["chart"] == "airflow" and chart["name"] == "airflow" and chart["namespace"] == "airflow"


def test_the_same_stack_plans_the_same_inputs() -> None:
    first = run_recorded(load_stack("staging"), lambda loaded: deploy_airflow(loaded, fake_edge(loaded)))
    second = run_recorded(load_stack("staging"), lambda loaded: deploy_airflow(loaded, fake_edge(loaded)))

    def inputs(recording: Recording) -> list[tuple[str, str, str]]:
        return sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True)) for r in recording.resources)

    assert inputs(first) == inputs(second)


def test_a_trigger_identity_made_first_is_reused() -> None:
    def program(loaded: Any) -> None:
        trigger = create_trigger_identity(loaded)
        assert deploy_airflow(loaded, fake_edge(loaded), trigger_identity=trigger) is trigger

    recording = run_recorded(load_stack("dev"), program)
    identities = [r for r in recording.resources if r.type == "airgate:airflow:TriggerUpstreamIdentity"]
    assert len(identities) == 1


def test_standalone_stack_gets_only_connection_ids() -> None:
    recording = run_recorded(load_stack("local"), lambda loaded: deploy_airflow(loaded, fake_edge(loaded)))
    assert recording.resources == []
    assert set(recording.outputs) == {"airflow_connection_ids"}


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_recorded_kubernetes_objects_pass_kubernetes_validate_strict(stack_name: str) -> None:
    """What the component really passes to pulumi-kubernetes, not only what the planner says."""
    recording = recorded(stack_name)
    version = kubernetes_validate.latest_version()
    checked = 0
    for resource in recording.resources:
        if not resource.type.startswith("kubernetes:") or resource.type.endswith(":Chart"):
            continue
        if resource.type.startswith("pulumi:providers"):
            continue
        manifest = plain(resource.inputs)
        kubernetes_validate.validate(manifest, version, strict=True)
        checked += 1
    assert checked >= 9


def test_with_the_real_edge_connections_use_its_urls_and_tokens() -> None:
    """The whole program as `infra/program.py` will run it: edge first, then Airflow."""
    from infra.program import define

    def program(loaded: Any) -> None:
        deploy_airflow(loaded, define(loaded))

    recording = run_recorded(load_stack("staging"), program)
    stack = load_stack("staging").config
    assert stack.airflow is not None
    documents = plain(
        secrets_by_name(recording)[secret_names(stack.airflow).connections].inputs["stringData"]
    )
    client_ids = recording.outputs["service_token_client_ids"]
    for gateway, url in recording.outputs["gateway_urls"].items():
        conn = Connection.from_json(documents[f"AIRFLOW_CONN_GW_{gateway.upper()}"], conn_id=gateway)
        assert conn.host == url
        assert conn.extra_dejson["CF-Access-Client-Id"] == client_ids["airflow-worker"]
        assert conn.extra_dejson["CF-Access-Client-Secret"]


def test_the_trigger_token_is_the_trigger_gateways_own_and_rotates_by_version() -> None:
    loaded = load_stack("prod")
    assert loaded.config.airflow is not None
    rotation = {"version": 3, "previous_secret_expires_at": "2026-12-15T00:00:00Z"}
    bumped = loaded.config.airflow.model_copy(
        update={"trigger_token_rotation": Rotation.model_validate(rotation)}
    )
    rotated = type(loaded)(
        loaded.name,
        loaded.path,
        loaded.config.model_copy(update={"airflow": bumped}),
        loaded.secret_keys,
        loaded.missing_secrets,
        loaded.other_config,
    )
    before = recorded("prod").by_name("airflow-trigger-access-token").inputs
    after = run_recorded(rotated, lambda s: deploy_airflow(s, fake_edge(s))).by_name(
        "airflow-trigger-access-token"
    )
    assert before["name"] == "airgate-prod-airflow-trigger"  # not one of the stack's role tokens
    assert before["duration"] == "8760h"
    # Never rotated: no version (the provider's default 1); rotated: version and the old secret's end.
    assert "clientSecretVersion" not in before and "previousClientSecretExpiresAt" not in before
    assert after.inputs["clientSecretVersion"] == 3
    assert after.inputs["previousClientSecretExpiresAt"] == "2026-12-15T00:00:00Z"


def test_ui_sso_admits_the_ui_roles_groups_through_the_identity_provider() -> None:
    import pulumi

    def program(loaded: Any) -> None:
        deploy_airflow(loaded, fake_edge(loaded), identity_provider_id=pulumi.Output.from_input("idp-123"))

    recording = run_recorded(load_stack("prod"), program)
    includes = plain(recording.by_name("airflow-tunnel-ui-people").inputs["includes"])
    assert {"email": {"email": "oncall@acme-data.com"}} in includes
    groups = sorted(i["oidc"]["claimValue"] for i in includes if "oidc" in i)
    assert groups == ["data-engineering", "platform"]
    app = recording.by_name("airflow-tunnel-ui-access").inputs
    assert app["allowedIdps"] == ["idp-123"] and app["autoRedirectToIdentity"] is True
