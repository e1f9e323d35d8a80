"""The rules reviewers ask for (what the policy allows), their thresholds per stack and per run, named
exceptions, and the CrossGuard pack agreeing with `airgate lint` on every example stack."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE
from typer.testing import CliRunner

from infra.cli.main import app
from infra.config.loader import STACKS_DIR
from infra.config.migration_history import chained_digest
from infra.config.sections import MigrationStep
from infra.rules import RuleConfig, evaluate
from policy_pack.airgate_pack import plan_from_engine
from tests.review.conftest import TODAY, plan_stack, resource
from tests.review.test_policy_pack import break_every_grant_rule, edit_policy, engine_view, run_pack

PlanOf = Callable[[str], dict[str, Any]]
runner = CliRunner()
GRANT_RULE_IDS = {
    "no-wildcard-in-prod",
    "no-destructive-data-routes",
    "prod-dag-conf-schema",
    "no-machine-admin",
    "no-fail-open-in-prod",
    "prod-body-limit",
    "upstream-allowed-domain",
    "prod-logpush",
}


def errors(plan: dict[str, Any], config: RuleConfig | None = None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in evaluate(plan, config or RuleConfig(today=TODAY)):
        if finding.severity == "error":
            found.setdefault(finding.rule, []).append(finding.message)
    return found


def test_each_reviewer_rule_catches_its_case(plan_of: PlanOf) -> None:
    plan = plan_of("prod")
    break_every_grant_rule(plan)
    found = errors(plan)
    assert set(found) >= GRANT_RULE_IDS
    assert found["no-wildcard-in-prod"] == [
        "route everything (/**) on warehouse grants analyst every path of the gateway"
    ]
    assert found["no-machine-admin"] == [
        "machine role ci may call admin route admin (/v1/admin/**) on warehouse"
    ]
    assert "DELETE" in found["no-destructive-data-routes"][0]
    assert "collector.example.net" in found["upstream-allowed-domain"][0]


def test_the_same_plan_outside_prod_keeps_only_the_rules_for_everywhere(plan_of: PlanOf) -> None:
    plan = plan_of("staging")
    break_every_grant_rule(plan)
    assert set(errors(plan)) & GRANT_RULE_IDS == {
        "no-destructive-data-routes",
        "no-machine-admin",
        "upstream-allowed-domain",
    }


def test_the_admin_route_may_delete_and_prod_names_its_dag_exceptions(
    plans: dict[str, dict[str, Any]],
) -> None:
    # The example warehouse admin route allows DELETE (an admin route, not a data route), and prod
    # lists its schema-less DAG grants as named exceptions in stacks/Pulumi.prod.yaml.
    assert errors(plans["prod"]) == {}
    assert "prod-dag-conf-schema" in plans["prod"]["review"]["exceptions"]
    no_exceptions = copy.deepcopy(plans["prod"])
    no_exceptions["review"]["exceptions"] = {}
    assert len(errors(no_exceptions)["prod-dag-conf-schema"]) == 5


def test_an_exception_names_one_subject_only(plan_of: PlanOf) -> None:
    plan = plan_of("prod")
    edit_policy(plan, "ingest", lambda doc: doc["routes"][0]["methods"].append("DELETE"))
    edit_policy(plan, "ingest", lambda doc: doc["routes"][1]["methods"].append("DELETE"))
    names = [r["name"] for r in plan["policies"]["ingest"]["document"]["routes"][:2]]
    plan["review"]["exceptions"]["no-destructive-data-routes"] = [f"ingest/{names[0]}"]
    assert [m.split(" ")[1] for m in errors(plan)["no-destructive-data-routes"]] == [names[1]]


def test_an_undetermined_environment_gets_the_prod_rules(plan_of: PlanOf) -> None:
    plan = plan_of("prod")
    plan["environment"] = "?"
    plan["resources"] = [r for r in plan["resources"] if r["type"].rsplit(":", 1)[-1] != "LogpushJob"]
    assert "prod-logpush" in errors(plan)


# --- thresholds: per stack and per run ---


def stacks_with(tmp_path: Path, stack: str, review: dict[str, Any]) -> Path:
    folder = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, folder, dirs_exist_ok=True)
    path = folder / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["airgate:review"] = {**document["config"].get("airgate:review", {}), **review}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


def test_the_token_limit_is_set_per_stack_and_overridden_per_run(
    tmp_path: Path, stub_templates: Path
) -> None:
    folder = stacks_with(tmp_path, "staging", {"max_service_token_hours": 1000})
    plan = plan_stack("staging", folder)
    assert plan["review"]["max_service_token_hours"] == 1000
    # 8760h airflow-worker, 2160h ai-agent, and the trigger's own 8760h token to Airflow
    assert len(errors(plan)["service-token-duration"]) == 3
    (tmp_path / "staging.json").write_text(json.dumps(plan))
    lint = ["lint", "--stack", "staging", "--plan", str(tmp_path / "staging.json"), "--today", "2026-11-29"]
    assert runner.invoke(app, lint).exit_code == 1
    assert runner.invoke(app, [*lint, "--threshold", "max_service_token_hours=9000"]).exit_code == 0
    bad = runner.invoke(app, [*lint, "--threshold", "max_token_hours=1"])
    assert bad.exit_code == 2 and "max_service_token_hours" in bad.stderr


def test_a_stack_can_allow_an_upstream_domain(tmp_path: Path, stub_templates: Path) -> None:
    folder = stacks_with(tmp_path, "staging", {"allowed_upstream_domains": ["partner-cloud.net"]})
    own = folder / "Pulumi.staging.yaml"
    own.write_text(own.read_text().replace("ingest.internal.staging.acme-data.com", "in.partner-cloud.net"))
    assert errors(plan_stack("staging", folder)) == {}
    document = yaml.safe_load(own.read_text())
    document["config"]["airgate:review"]["allowed_upstream_domains"] = ["other.net"]
    own.write_text(yaml.safe_dump(document))
    assert "upstream-allowed-domain" in errors(plan_stack("staging", folder))


def test_a_bad_review_section_is_refused_with_its_key(tmp_path: Path) -> None:
    from infra.config.errors import ConfigError
    from infra.config.loader import load_stack

    folder = stacks_with(tmp_path, "dev", {"max_service_token_hours": 0})
    with pytest.raises(ConfigError) as caught:
        load_stack("dev", folder)
    assert "review" in caught.value.render() and "max_service_token_hours" in caught.value.render()


# --- the pack and lint agree ---


@pytest.mark.parametrize("stack", ["local", "dev", "staging", "prod"])
def test_pack_and_lint_agree_on_every_example_stack(plan_of: PlanOf, stack: str) -> None:
    plan = plan_of(stack)
    break_every_grant_rule(plan)
    lint = {f.rule for f in evaluate(plan, RuleConfig()) if f.severity == "error"}
    assert set(run_pack(plan)) == lint
    assert run_pack(plan_of(stack)) == {} == errors(plan_of(stack))


def deleting(plan: dict[str, Any], flagged: bool) -> dict[str, Any]:
    resource(plan, "trigger-script")["inputs"]["migrations"] = {
        "newTag": "v2",
        "oldTag": "v1",
        "steps": [{"deletedClasses": ["IdempotencyStore"]}],
    }
    plan["durable_object_migrations"].append(
        {
            "tag": "v2",
            "new_sqlite_classes": [],
            "deleted_classes": ["IdempotencyStore"],
            "allow_deleting_classes": flagged,
        }
    )
    return plan


@pytest.mark.parametrize("flagged", [True, False])
def test_pack_and_lint_agree_on_allow_deleting_classes(
    tmp_path: Path, plan_of: PlanOf, flagged: bool, stub_templates: Path
) -> None:
    # The pack reads the stack's migration history from its stack file, as lint reads it from the plan.
    folder = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, folder)
    shared = yaml.safe_load((folder / "shared.yaml").read_text())
    history = shared["durable_object_migrations"]
    entry = {"tag": "v2", "deleted_classes": ["IdempotencyStore"], "allow_deleting_classes": flagged}
    # A new entry is sealed with its chained digest, as the loader asks of any appended step.
    entry["digest"] = chained_digest(history[-1]["digest"], MigrationStep.model_validate(entry))
    history.append(entry)
    (folder / "shared.yaml").write_text(yaml.safe_dump(shared, sort_keys=False))
    plan = deleting(plan_of("dev"), flagged)
    lint = "durable-object-deletion" in errors(plan)
    rebuilt = plan_from_engine(engine_view(plan), {}, {}, stacks_dir=folder)
    pack = "durable-object-deletion" in errors(dict(rebuilt))
    assert lint == pack == (not flagged)


def test_the_pack_knows_the_environment_from_the_stack(plan_of: PlanOf) -> None:
    plan = plan_of("prod")
    for script in (r for r in plan["resources"] if r["type"].endswith("WorkersScript")):
        for binding in script["inputs"]["bindings"]:
            if binding["name"] == "ENVIRONMENT":
                binding["text"] = UNKNOWN_STRING_VALUE
    rebuilt = plan_from_engine(engine_view(plan), {}, {})
    assert rebuilt["environment"] == "prod" and rebuilt["stack"] == "prod"
    unknown_stack = plan_from_engine(engine_view({**plan, "stack": "nowhere"}), {}, {})
    assert unknown_stack["environment"] == "prod"  # undetermined: the strict rules


def leaves(node: Any, trail: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [t for key, value in node.items() for t in leaves(value, (*trail, key))]
    if isinstance(node, list):
        return [t for index, value in enumerate(node) for t in leaves(value, (*trail, index))]
    return [trail] if isinstance(node, str) else []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_unknown_values_at_preview_never_make_a_mandatory_violation(
    plans: dict[str, Any], data: st.DataObject
) -> None:
    plan = copy.deepcopy(plans[data.draw(st.sampled_from(["prod", "staging", "dev", "local"]))])
    candidates = [
        (index, trail)
        for index, item in enumerate(plan["resources"])
        if item["custom"] and item["type"].rsplit(":", 1)[-1] != "WorkersKv"
        for trail in leaves(item["inputs"])
    ]
    chosen = data.draw(st.lists(st.sampled_from(candidates), max_size=25, unique=True))
    for index, trail in chosen:
        node = plan["resources"][index]["inputs"]
        for step in trail[:-1]:
            node = node[step]
        node[trail[-1]] = UNKNOWN_STRING_VALUE
    assert run_pack(plan) == {}


def test_an_exception_for_no_such_rule_is_a_warning(plan_of: PlanOf) -> None:
    plan = plan_of("dev")
    plan["review"]["exceptions"] = {"no-wildcards": ["ingest/x"]}
    [finding] = evaluate(plan, RuleConfig(today=TODAY))
    assert finding.severity == "warning" and "'no-wildcards', which is no rule" in finding.message
