"""Each policy rule on a passing and a failing plan, as `airgate lint` and the policy pack see it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from infra.rules import RULES, Finding, RuleConfig, evaluate
from tests.review.conftest import add_resource, resource

PlanOf = Callable[[str], dict[str, Any]]
K8S_SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
RELEASE = "kubernetes:helm.sh/v3:Release"
TUNNEL_CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"


def findings(plan: dict[str, Any], config: RuleConfig, rule: str) -> list[Finding]:
    return evaluate(plan, config, only={rule})


def errors(plan: dict[str, Any], config: RuleConfig, rule: str) -> list[Finding]:
    return [f for f in findings(plan, config, rule) if f.severity == "error"]


@pytest.mark.parametrize("stack", ["local", "dev", "staging", "prod"])
def test_the_example_stacks_pass_every_rule(plan_of: PlanOf, rules_config: RuleConfig, stack: str) -> None:
    assert evaluate(plan_of(stack), rules_config) == []


def test_every_finding_names_a_rule_a_fix_and_where() -> None:
    assert len({rule.id for rule in RULES}) == len(RULES) >= 7


# --- access-in-prod ---


def test_a_prod_gateway_without_access_app_fails(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")
    plan["resources"] = [r for r in plan["resources"] if r["name"] != "ingest-access"]
    [finding] = errors(plan, rules_config, "access-in-prod")
    assert finding.gateway == "ingest"
    assert "ingest.acme-data.com" in finding.message and "events-write" in finding.message
    assert "behind_access" in finding.fix


def test_an_access_app_on_one_path_leaves_the_other_routes_exposed(
    plan_of: PlanOf, rules_config: RuleConfig
) -> None:
    plan = plan_of("prod")
    app = resource(plan, "warehouse-access")
    app["inputs"]["domain"] = "warehouse.acme-data.com/v1/admin"
    app["inputs"]["destinations"] = [{"type": "public", "uri": "warehouse.acme-data.com/v1/admin"}]
    [finding] = errors(plan, rules_config, "access-in-prod")
    assert "query" in finding.message and "tables" in finding.message
    assert "admin" not in finding.message.split("route(s)")[1]


def test_workers_dev_beside_a_prod_gateway_fails(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")
    add_resource(
        plan,
        "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain",
        "ingest-subdomain",
        {"scriptName": "airgate-prod-ingest", "enabled": True},
        gateway="ingest",
    )
    [finding] = errors(plan, rules_config, "access-in-prod")
    assert "workers.dev" in finding.message


def test_access_is_not_required_outside_prod(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("dev")  # dev's warehouse gateway is oidc-only, without Access
    assert findings(plan, rules_config, "access-in-prod") == []


# --- no-bypass-in-prod ---


def _bypass(plan: dict[str, Any]) -> None:
    resource(plan, "identity-analyst-people")["inputs"]["decision"] = "bypass"


def test_bypass_in_prod_fails(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")
    _bypass(plan)
    [finding] = errors(plan, rules_config, "no-bypass-in-prod")
    assert finding.resource == "identity-analyst-people"


def test_bypass_elsewhere_only_warns(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("dev")
    _bypass(plan)
    [finding] = findings(plan, rules_config, "no-bypass-in-prod")
    assert finding.severity == "warning"


# --- service-token-duration ---


@pytest.mark.parametrize(
    ("duration", "fails"),
    [("720h", False), ("8760h", False), ("17520h", True), ("forever", True), (None, True)],
)
def test_service_token_duration_is_bounded(
    plan_of: PlanOf, rules_config: RuleConfig, duration: str | None, fails: bool
) -> None:
    plan = plan_of("prod")
    token = resource(plan, "identity-token-ci")
    if duration is None:
        token["inputs"].pop("duration")
    else:
        token["inputs"]["duration"] = duration
    found = errors(plan, rules_config, "service-token-duration")
    assert bool(found) == fails
    if fails:
        assert found[0].resource == "identity-token-ci"


def test_the_token_bound_is_configurable(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    strict = dataclasses.replace(rules_config, max_service_token_hours=1000)
    names = {f.resource for f in errors(plan_of("prod"), strict, "service-token-duration")}
    assert names == {
        "identity-token-airflow-worker",
        "identity-token-ai-agent",
        "airflow-trigger-access-token",
    }


# --- no-plaintext-secret ---


def _add_binding(plan: dict[str, Any], binding: dict[str, Any]) -> None:
    resource(plan, "ingest-script")["inputs"]["bindings"].append(binding)


@pytest.mark.parametrize(
    "binding",
    [
        {"name": "API_TOKEN", "type": "plain_text", "text": "abc123"},
        # A PEM header, assembled here so no key-shaped line sits in the repository.
        {"name": "WELCOME", "type": "plain_text", "text": "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE"},
        {"name": "SETTINGS", "type": "json", "json": '{"upstream": {"client_secret": "s3cr3t"}}'},
        {"name": "DSN", "type": "plain_text", "text": "postgres://app:hunter2@db.internal/x"},
    ],
)
def test_secret_looking_plain_bindings_fail(
    plan_of: PlanOf, rules_config: RuleConfig, binding: dict[str, Any]
) -> None:
    plan = plan_of("prod")
    _add_binding(plan, binding)
    [finding] = errors(plan, rules_config, "no-plaintext-secret")
    assert binding["name"] in finding.message and finding.gateway == "ingest"


def test_secret_text_and_harmless_json_pass(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")  # UPSTREAM holds credential_header/credential_scheme, ACCESS_CLIENTS ids
    _add_binding(plan, {"name": "EXTRA_TOKEN", "type": "secret_text", "text": "[secret]"})
    assert findings(plan, rules_config, "no-plaintext-secret") == []


def test_kubernetes_literals_that_look_secret_fail(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")
    add_resource(plan, "kubernetes:core/v1:ConfigMap", "airflow-config", {"data": {"db_password": "x"}})
    add_resource(
        plan,
        "kubernetes:apps/v1:Deployment",
        "airflow-api",
        {"spec": {"template": {"spec": {"containers": [{"env": [{"name": "API_KEY", "value": "k"}]}]}}}},
    )
    add_resource(plan, "kubernetes:core/v1:Secret", "airflow-secret", {"stringData": {"password": "ok"}})
    found = errors(plan, rules_config, "no-plaintext-secret")
    assert {f.resource for f in found} == {"airflow-config", "airflow-api"}


# --- compatibility-date ---


@pytest.mark.parametrize(
    ("date", "fragment"),
    [(None, "no compatibility date"), ("2024-01-01", "older than 365 days"), ("2027-01-01", "future")],
)
def test_compatibility_date_must_be_set_and_recent(
    plan_of: PlanOf, rules_config: RuleConfig, date: str | None, fragment: str
) -> None:
    plan = plan_of("prod")
    script = resource(plan, "trigger-script")
    if date is None:
        script["inputs"].pop("compatibilityDate")
    else:
        script["inputs"]["compatibilityDate"] = date
    [finding] = errors(plan, rules_config, "compatibility-date")
    assert fragment in finding.message and finding.gateway == "trigger"


def test_the_age_limit_is_configurable(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    tight = dataclasses.replace(rules_config, max_compatibility_age_days=7)
    assert len(errors(plan_of("prod"), tight, "compatibility-date")) == 3


# --- airflow-no-public-ingress ---


@pytest.mark.parametrize(
    ("type_", "inputs"),
    [
        (K8S_SERVICE, {"metadata": {"name": "airflow-api-server"}, "spec": {"type": "LoadBalancer"}}),
        (K8S_SERVICE, {"metadata": {"name": "airflow-api-server"}, "spec": {"type": "NodePort"}}),
        (K8S_SERVICE, {"metadata": {"name": "airflow"}, "spec": {"externalIPs": ["203.0.113.7"]}}),
        (INGRESS, {"metadata": {"name": "airflow"}, "spec": {"rules": []}}),
        (RELEASE, {"chart": "airflow", "values": {"ingress": {"apiServer": {"enabled": True}}}}),
        (RELEASE, {"chart": "airflow", "values": {"apiServer": {"service": {"type": "LoadBalancer"}}}}),
    ],
)
def test_public_doors_into_the_cluster_fail(
    plan_of: PlanOf, rules_config: RuleConfig, type_: str, inputs: dict[str, Any]
) -> None:
    plan = plan_of("prod")
    add_resource(plan, type_, "airflow-thing", inputs)
    [finding] = errors(plan, rules_config, "airflow-no-public-ingress")
    assert finding.resource == "airflow-thing"


def test_cluster_internal_airflow_passes(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")
    add_resource(plan, K8S_SERVICE, "airflow-api", {"spec": {"type": "ClusterIP"}})
    add_resource(
        plan, RELEASE, "airflow", {"chart": "airflow", "values": {"ingress": {"web": {"enabled": False}}}}
    )
    assert findings(plan, rules_config, "airflow-no-public-ingress") == []


def _tunnel(plan: dict[str, Any], hostname: str) -> None:
    add_resource(
        plan,
        TUNNEL_CONFIG,
        "airflow-tunnel-config",
        {"config": {"ingresses": [{"hostname": hostname, "service": "http://airflow-api-server:8080"}]}},
    )


def test_a_tunnel_hostname_serving_airflow_needs_access(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")
    _tunnel(plan, "airflow-backdoor.acme-data.com")
    [finding] = errors(plan, rules_config, "airflow-no-public-ingress")
    assert "airflow-backdoor.acme-data.com" in finding.message
    add_resource(
        plan,
        "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication",
        "airflow-access",
        {"domain": "airflow-backdoor.acme-data.com", "policies": [{"id": "p", "precedence": 1}]},
    )
    assert errors(plan, rules_config, "airflow-no-public-ingress") == []


# --- durable-object-deletion ---


def _delete_class(plan: dict[str, Any]) -> None:
    resource(plan, "trigger-script")["inputs"]["migrations"] = {
        "newTag": "v2",
        "oldTag": "v1",
        "steps": [{"deletedClasses": ["IdempotencyStore"]}],
    }


def test_deleting_a_durable_object_class_fails_without_the_flag(
    plan_of: PlanOf, rules_config: RuleConfig
) -> None:
    plan = plan_of("prod")
    _delete_class(plan)
    [finding] = errors(plan, rules_config, "durable-object-deletion")
    assert "IdempotencyStore" in finding.message and "allow_deleting_classes" in finding.fix


def test_the_flag_allows_the_deletion(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")
    _delete_class(plan)
    allowed = dataclasses.replace(rules_config, allow_deleting_classes=frozenset({"IdempotencyStore"}))
    assert findings(plan, allowed, "durable-object-deletion") == []
    plan["durable_object_migrations"] = [
        {"tag": "v2", "deleted_classes": ["IdempotencyStore"], "allow_deleting_classes": True}
    ]
    assert findings(plan, rules_config, "durable-object-deletion") == []


# --- prod-data-protected ---


def test_unprotected_data_in_prod_fails(plan_of: PlanOf, rules_config: RuleConfig) -> None:
    plan = plan_of("prod")
    resource(plan, "warehouse-kv")["protect"] = False
    [finding] = errors(plan, rules_config, "prod-data-protected")
    assert finding.resource == "warehouse-kv"
    assert findings(plan_of("dev"), rules_config, "prod-data-protected") == []
