"""The CrossGuard pack runs the same rules as `airgate lint`: given the engine's view of the same
resources (proxied props, unknowns during preview, secrets unwrapped), it reports the same errors.

These build that view by hand to reach cases a preview of the example stacks never shows (a wholly
unknown list, every rule broken at once); `tests/engine/test_policy_pack.py` runs the pack under
the real engine."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from infra.rules import RULES, RuleConfig, evaluate
from policy_pack.airgate_pack import plan_from_engine, policies
from tests.review.conftest import resource

PlanOf = Callable[[str], dict[str, Any]]
COMPONENT_TYPES = {
    "EdgeGateway": "airgate:edge:EdgeGateway",
    "AccessIdentity": "airgate:access:AccessIdentity",
}


def urn(stack: str, raw: dict[str, Any]) -> str:
    """https://www.pulumi.com/docs/iac/concepts/resources/names/#urns (parent types elided)."""
    return f"urn:pulumi:{stack}::airgate::{raw['type']}::{raw['name']}"


def engine_view(plan: dict[str, Any]) -> list[PolicyResource]:
    """What AnalyzeStack hands a stack policy: every resource, with components and parents linked."""
    by_name: dict[str, PolicyResource] = {}
    made = []
    for raw in plan["resources"]:
        opts = PolicyResourceOptions(raw["protect"], [], None, [], None, [], raw["parent"])  # type: ignore[arg-type]
        props = unknown_checking_proxy(raw["inputs"])
        made.append(
            (
                raw,
                PolicyResource(
                    raw["type"], props, urn(plan["stack"], raw), raw["name"], opts, None, None, [], {}
                ),
            )
        )
        by_name[raw["name"]] = made[-1][1]
    for raw, item in made:
        item.parent = by_name.get(raw["parent"]) if raw["parent"] else None
    return [item for _, item in made]


def run_pack(
    plan: dict[str, Any], config: dict[str, Any] | None = None
) -> dict[str, list[tuple[str, str | None]]]:
    violations: dict[str, list[tuple[str, str | None]]] = {}
    resources = engine_view(plan)
    for policy in policies():
        assert isinstance(policy, StackValidationPolicy)
        args = StackValidationArgs(resources, {"environment": plan["environment"], **(config or {})})
        found: list[tuple[str, str | None]] = []

        def report(message: str, urn: str | None = None, found: list[tuple[str, str | None]] = found) -> None:
            found.append((message, urn))

        policy.validate(args, report)
        if found:
            violations[policy.name] = found
    return violations


def engine_ready(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan as the engine would see it at preview: a KV id unknown, secrets in clear."""
    resource(plan, "ingest-policy")["inputs"]["namespaceId"] = UNKNOWN_STRING_VALUE
    for binding in resource(plan, "ingest-script")["inputs"]["bindings"]:
        if binding["type"] == "secret_text":
            binding["text"] = "the-real-upstream-token"
    return plan


def test_each_rule_is_a_mandatory_policy_for_its_errors_and_an_advisory_one_for_its_warnings() -> None:
    levels = {p.name: p.enforcement_level for p in policies()}
    for rule in RULES:
        assert levels.pop(rule.id) is EnforcementLevel.MANDATORY
        assert levels.pop(f"{rule.id}-advisory") is EnforcementLevel.ADVISORY
    assert levels == {"review-exceptions": EnforcementLevel.ADVISORY}


def test_a_warning_is_advice_and_the_same_finding_in_prod_blocks(plan_of: PlanOf) -> None:
    """`no-bypass-in-prod` warns outside prod: only its advisory policy reports it there."""
    for stack, reported in (("staging", "no-bypass-in-prod-advisory"), ("prod", "no-bypass-in-prod")):
        plan = plan_of(stack)
        resource(plan, "identity-ci-machines")["inputs"]["decision"] = "bypass"
        assert set(run_pack(plan)) == {reported}


def test_the_example_prod_stack_passes_the_pack(plan_of: PlanOf) -> None:
    assert run_pack(engine_ready(plan_of("prod"))) == {}


def test_the_pack_reads_compiled_policies_back_from_kv(plan_of: PlanOf) -> None:
    plan = engine_ready(plan_of("prod"))
    rebuilt = plan_from_engine(engine_view(plan), {}, {})
    assert rebuilt["environment"] == "prod"
    assert rebuilt["policies"]["warehouse"]["document"] == plan["policies"]["warehouse"]["document"]
    script = next(r for r in rebuilt["resources"] if r["name"] == "ingest-script")
    assert {b["text"] for b in script["inputs"]["bindings"] if b["type"] == "secret_text"} == {"[secret]"}
    assert (
        next(r for r in rebuilt["resources"] if r["name"] == "ingest-policy")["inputs"]["namespaceId"]
        == "[unknown]"
    )


@pytest.mark.parametrize("key", ["destinations", "selfHostedDomains"])
def test_an_access_app_with_wholly_unknown_destinations_is_no_violation(plan_of: PlanOf, key: str) -> None:
    """At preview a whole list can be unknown; its marker is a string, never a list of known hosts."""
    plan = engine_ready(plan_of("prod"))
    app = resource(plan, "ingest-access")["inputs"]
    app.pop("domain", None)
    app.pop("destinations", None)
    app[key] = UNKNOWN_STRING_VALUE
    assert run_pack(plan) == {}
    assert [f for f in evaluate(plan_from_engine(engine_view(plan), {}, {})) if f.severity == "error"] == []


def test_pack_and_lint_report_the_same_errors(plan_of: PlanOf) -> None:
    plan = engine_ready(plan_of("prod"))
    plan["resources"] = [r for r in plan["resources"] if r["name"] != "trigger-access"]
    resource(plan, "identity-ci-machines")["inputs"]["decision"] = "bypass"
    resource(plan, "identity-token-ci")["inputs"]["duration"] = "forever"
    resource(plan, "warehouse-script")["inputs"]["compatibilityDate"] = "2020-01-01"
    resource(plan, "ingest-script")["inputs"]["bindings"].append(
        {"name": "DB_PASSWORD", "type": "plain_text", "text": "x"}
    )
    plan["resources"].append(
        {
            "type": "kubernetes:core/v1:Service",
            "name": "airflow-web",
            "parent": None,
            "custom": True,
            "protect": False,
            "gateway": None,
            "inputs": {"spec": {"type": "LoadBalancer"}},
        }
    )
    resource(plan, "trigger-script")["inputs"]["migrations"] = {
        "newTag": "v2",
        "steps": [{"deletedClasses": ["RateLimiter"]}],
    }
    resource(plan, "ingest-kv")["protect"] = False
    break_every_grant_rule(plan)

    lint = {f.rule for f in evaluate(plan, RuleConfig()) if f.severity == "error"}
    pack = run_pack(plan)
    assert set(pack) == lint == {rule.id for rule in RULES}
    [(message, urn)] = pack["service-token-duration"]
    assert urn is not None and urn.endswith("::identity-token-ci") and "Fix:" in message
    assert "the-real-upstream-token" not in repr(pack)


def edit_policy(plan: dict[str, Any], gateway: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Change a compiled policy in the plan and in the KV value the engine (and so the pack) sees."""
    document = plan["policies"][gateway]["document"]
    change(document)
    resource(plan, f"{gateway}-policy")["inputs"]["value"] = json.dumps(document)


def break_every_grant_rule(plan: dict[str, Any]) -> None:
    def warehouse(doc: dict[str, Any]) -> None:
        everything = {"name": "everything", "pattern": "/**", "methods": ["GET"], "roles": ["analyst"]}
        doc["routes"].append(everything)
        admin = next(r for r in doc["routes"] if r["name"] == "admin")
        admin["roles"].append("ci")
        doc["roles"]["ci"] = {"groups": [], "emails": [], "service_tokens": ["ci"], "oidc_clients": ["ci"]}
        doc["limits"]["durable_objects_fail_open"] = True
        doc["limits"]["max_body_bytes"] = 100 * 1024 * 1024

    def ingest(doc: dict[str, Any]) -> None:
        next(r for r in doc["routes"] if r["name"] == "events-write")["methods"].append("DELETE")

    def trigger(doc: dict[str, Any]) -> None:
        doc["dags"]["drop_everything"] = {"analyst": {"conf_schema": None}}

    edit_policy(plan, "warehouse", warehouse)
    edit_policy(plan, "ingest", ingest)
    edit_policy(plan, "trigger", trigger)
    for binding in resource(plan, "ingest-script")["inputs"]["bindings"]:
        if binding["name"] == "UPSTREAM":
            binding["json"] = json.dumps({"url": "https://collector.example.net"})
    plan["resources"] = [r for r in plan["resources"] if r["type"].rsplit(":", 1)[-1] != "LogpushJob"]


def test_pack_config_tunes_the_rules(plan_of: PlanOf) -> None:
    pack = run_pack(engine_ready(plan_of("prod")), {"max_service_token_hours": 1000})
    assert len(pack["service-token-duration"]) == 3  # airflow-worker, ai-agent, the trigger's own
