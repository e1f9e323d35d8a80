"""One test per kind of change `airgate diff` must show, each from a real stack edit planned offline
(or, where the stack model refuses the edit, from the plan document itself), with its risk."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import infra.review.diff as diff_module
from infra.cli.main import app
from infra.config.loader import STACKS_DIR
from infra.plan.format import make_change, reason
from infra.review.diff import diff_plans, diff_sets
from infra.review.markdown import render_markdown
from tests.review.conftest import plan_stack

Edit = Callable[[dict[str, Any], dict[str, Any]], None]
runner = CliRunner()


def variant(tmp_path: Path, stack: str, edit: Edit) -> dict[str, Any]:
    """Plan `stack` after `edit(stack_config, shared)` on a copy of the example stacks."""
    folder = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, folder, dirs_exist_ok=True)
    own_file, shared_file = folder / f"Pulumi.{stack}.yaml", folder / "shared.yaml"
    own, shared = yaml.safe_load(own_file.read_text()), yaml.safe_load(shared_file.read_text())
    edit(own["config"], shared)
    own_file.write_text(yaml.safe_dump(own, sort_keys=False))
    shared_file.write_text(yaml.safe_dump(shared, sort_keys=False))
    return plan_stack(stack, folder)


def changes(report: dict[str, Any], section: str) -> list[dict[str, Any]]:
    found = [item for stack in report["stacks"] for item in stack[section]]
    for stack in report["stacks"]:
        for items in (stack[name] for name in ("grants", "routes", "gateways", "identities", "resources")):
            for item in items:
                assert item["risky"] == bool(item["reasons"]), item  # risky always says why
    return found


def kinds(report: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    return {item["change"]: item for item in changes(report, section)}


def one(base: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    return dict(diff_sets({base["stack"]: base}, {head["stack"]: head}))


@pytest.fixture
def prod(plans: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(plans["prod"])


# --- service tokens ---


def test_a_rotated_token_is_listed_with_its_grace_period(
    tmp_path: Path, prod: dict[str, Any], stub_templates: Path
) -> None:
    def rotate(own: dict[str, Any], shared: dict[str, Any]) -> None:
        shared["service_tokens"]["ci"]["rotation"] = {
            "version": 2,
            "previous_secret_expires_at": "2026-12-15T00:00:00Z",
        }

    report = one(prod, variant(tmp_path, "prod", rotate))
    rotated = kinds(report, "identities")["service_token_rotated"]
    assert (rotated["token"], rotated["before"], rotated["after"], rotated["risky"]) == ("ci", 1, 2, False)
    assert "service token `ci` rotated: v1 → v2; the old secret works until 2026-12-15T00:00:00Z" in (
        render_markdown(report)
    )


def test_a_longer_lived_prod_token_is_risky(
    tmp_path: Path, prod: dict[str, Any], stub_templates: Path
) -> None:
    def longer(own: dict[str, Any], shared: dict[str, Any]) -> None:
        shared["service_tokens"]["ci"]["duration"] = "8760h"

    item = kinds(one(prod, variant(tmp_path, "prod", longer)), "identities")["service_token_longer"]
    assert (item["before"], item["after"]) == ("720h", "8760h")
    assert item["reasons"] == ["a prod service token lives longer"]


def test_removed_and_added_tokens_are_listed(prod: dict[str, Any]) -> None:
    head = copy.deepcopy(prod)
    tokens = head["identities"]["service_tokens"]
    tokens["robot"] = tokens.pop("ci")
    found = kinds(one(prod, head), "identities")
    assert found["service_token_removed"]["token"] == "ci" and not found["service_token_removed"]["risky"]
    assert found["service_token_added"]["reasons"] == ["new machine identity in prod"]


def test_a_stack_with_no_roles_still_diffs_its_tokens() -> None:
    def doc(tokens: dict[str, Any]) -> dict[str, Any]:
        identities = {"roles": {}, "service_tokens": tokens}
        return {
            "format": "airgate-plan/1",
            "stack": "x",
            "environment": "dev",
            "resources": [],
            "identities": identities,
        }

    token = {"duration": "720h", "version": 1}
    removed = diff_plans(doc({"ci": token}), doc({}))  # type: ignore[arg-type]
    assert [(c["change"], c["token"]) for c in removed["identities"]] == [("service_token_removed", "ci")]
    rotated = diff_plans(doc({"ci": token}), doc({"ci": {**token, "version": 2}}))  # type: ignore[arg-type]
    assert [c["change"] for c in rotated["identities"]] == ["service_token_rotated"]


# --- gateways ---


def test_an_upstream_moved_outside_with_its_credential_is_critical(
    tmp_path: Path, prod: dict[str, Any], stub_templates: Path
) -> None:
    def move(own: dict[str, Any], shared: dict[str, Any]) -> None:
        own["airgate:gateways"]["ingest"]["upstream"]["url"] = "https://ingest.partner-cloud.net"

    report = one(prod, variant(tmp_path, "prod", move))
    moved = kinds(report, "gateways")["upstream_host_changed"]
    assert moved["reasons"] == ["the upstream credential now goes to a new host (ingest.partner-cloud.net)"]
    assert report["risky_changes"][0]["subject"] == moved["subject"]  # the most severe comes first
    text = render_markdown(report)
    assert "No risky changes" not in text
    assert "**critical** gateway `ingest` upstream `https://ingest.internal.acme-data.com` → " in text
    assert any(f["rule"] == "upstream-allowed-domain" for f in changes(report, "findings"))


def test_a_path_only_upstream_change_is_listed_not_risky(prod: dict[str, Any]) -> None:
    head = copy.deepcopy(prod)
    script = next(r for r in head["resources"] if r["name"] == "ingest-script")
    upstream = next(b for b in script["inputs"]["bindings"] if b["name"] == "UPSTREAM")
    upstream["json"] = json.dumps(
        {**json.loads(upstream["json"]), "url": "https://ingest.internal.acme-data.com/v2"}
    )
    item = kinds(one(prod, head), "gateways")["upstream_url_changed"]
    assert not item["risky"]


def test_a_gateway_taken_out_of_access_is_risky(
    tmp_path: Path, plans: dict[str, dict[str, Any]], stub_templates: Path
) -> None:
    def leave(own: dict[str, Any], shared: dict[str, Any]) -> None:
        own["airgate:gateways"]["ingest"].update(behind_access=False, auth="oidc")

    item = kinds(one(plans["dev"], variant(tmp_path, "dev", leave)), "gateways")["access_removed"]
    assert item["reasons"] == ["gateway taken out from behind Cloudflare Access"]


def test_fail_open_in_prod_is_risky(tmp_path: Path, prod: dict[str, Any], stub_templates: Path) -> None:
    def fail_open(own: dict[str, Any], shared: dict[str, Any]) -> None:
        own["airgate:gateways"]["ingest"]["durable_objects_fail_open"] = True

    report = one(prod, variant(tmp_path, "prod", fail_open))
    assert kinds(report, "gateways")["fail_open_on"]["reasons"] == ["fail-open switched on in prod"]
    assert any(f["rule"] == "no-fail-open-in-prod" for f in changes(report, "findings"))


def test_a_prod_body_limit_raised_is_risky(
    tmp_path: Path, prod: dict[str, Any], stub_templates: Path
) -> None:
    def bigger(own: dict[str, Any], shared: dict[str, Any]) -> None:
        own["airgate:gateways"]["ingest"]["limits"] = {"max_body_bytes": 100 * 1024 * 1024}

    report = one(prod, variant(tmp_path, "prod", bigger))
    item = kinds(report, "gateways")["max_body_bytes_raised"]
    assert (item["before"], item["after"], item["reasons"]) == (
        1024 * 1024,
        100 * 1024 * 1024,
        ["max_body_bytes raised in prod"],
    )


def test_a_new_prod_hostname_is_listed_as_risky(
    tmp_path: Path, prod: dict[str, Any], stub_templates: Path
) -> None:
    def rename_host(own: dict[str, Any], shared: dict[str, Any]) -> None:
        own["airgate:gateways"]["ingest"]["hostname"] = "events.acme-data.com"

    found = kinds(one(prod, variant(tmp_path, "prod", rename_host)), "gateways")
    assert found["hostname_added"]["after"] == "events.acme-data.com" and found["hostname_added"]["risky"]
    assert found["hostname_removed"]["before"] == "ingest.acme-data.com"


# --- routes and grants ---


def test_a_renamed_route_with_the_same_access_grants_nothing(
    tmp_path: Path, prod: dict[str, Any], stub_templates: Path
) -> None:
    def rename(own: dict[str, Any], shared: dict[str, Any]) -> None:
        routes = shared["gateways"]["ingest"]["routes"]
        routes["liveness"] = routes.pop("health")
        routes["liveness"]["path"] = "/v1/health"

    report = one(prod, variant(tmp_path, "prod", rename))
    assert report["risky"] == 0 and changes(report, "grants") == []
    [renamed] = changes(report, "routes")
    assert (renamed["change"], renamed["before"], renamed["after"]) == ("renamed", "health", "liveness")
    assert "route `health` renamed to `ingest/liveness` (`/v1/health`), same access" in render_markdown(
        report
    )


def test_renaming_a_path_parameter_is_no_grant(prod: dict[str, Any]) -> None:
    head = copy.deepcopy(prod)
    for row in head["access_matrix"]:
        row["path"] = row["path"].replace("{batch_id}", "{id}")
    assert changes(one(prod, head), "grants") == []


def test_a_dag_grant_added_in_prod_is_risky(prod: dict[str, Any]) -> None:
    head = copy.deepcopy(prod)
    head["dag_grants"].append({"gateway": "trigger", "role": "analyst", "dag": "x", "conf_schema": None})
    [item] = changes(one(prod, head), "dag_grants")
    assert item["reasons"] == ["new DAG grant in prod", "any conf accepted (no schema)"]


# --- the report ---


def test_a_stack_that_fails_to_plan_is_a_failure_not_a_removal(prod: dict[str, Any]) -> None:
    report = diff_sets({"prod": prod}, {}, errors={"HEAD:prod": "stacks/Pulumi.prod.yaml: zone: bad"})
    assert report["stacks"] == [] and report["failures"] == [
        {"stack": "prod", "side": "HEAD", "error": "stacks/Pulumi.prod.yaml: zone: bad"}
    ]
    text = render_markdown(report)
    assert "**HEAD:prod does not plan:**" in text and "removed" not in text


def test_risky_items_are_ordered_by_severity(prod: dict[str, Any]) -> None:
    head = copy.deepcopy(prod)
    head["dag_grants"].append({"gateway": "trigger", "role": "analyst", "dag": "x", "conf_schema": None})
    head["resources"] = [r for r in head["resources"] if r["name"] != "ingest-kv"]
    severities = [item["severity"] for item in one(prod, head)["risky_changes"]]
    assert severities == sorted(severities, reverse=True) and severities[0] > severities[-1]


def test_a_change_in_several_stacks_is_shown_once_with_its_stacks() -> None:
    item = make_change("grants", "added", "a b c GET", [reason("new grant in prod", 3)], role="a")
    stacks = [
        {"stack": name, "environment": "prod", "risky": [item], "changed": True}
        for name in ("prod", "prod-eu")
    ]
    merged = diff_module.merge_risky(stacks)  # type: ignore[arg-type]
    assert len(merged) == 1 and merged[0]["stacks"] == ["prod", "prod-eu"]


def test_mermaid_ids_are_unique_and_keep_both_labels(prod: dict[str, Any]) -> None:
    head = copy.deepcopy(prod)
    head["access_matrix"] = [r for r in head["access_matrix"] if r["route"] != "batch-status"]
    head["access_matrix"].append(
        {
            "role": "airflow-worker",
            "gateway": "ingest",
            "route": "batch-status",
            "path": "/v1/batches/**",
            "methods": ["GET"],
        }
    )
    text = render_markdown(one(prod, head))
    picture = text[text.index("```mermaid") : text.index("```", text.index("```mermaid") + 3)]
    defined = [line.split("[", 1)[0].strip() for line in picture.splitlines() if '["' in line]
    assert len(defined) == len(set(defined))
    assert '["/v1/batches/{batch_id}"]' in picture and '["/v1/batches/**"]' in picture


def test_a_crash_is_an_error_not_risky(
    tmp_path: Path, prod: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p.json").write_text(json.dumps(prod))

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(diff_module, "diff_sets", boom)
    result = runner.invoke(
        app, ["diff", str(tmp_path / "p.json"), str(tmp_path / "p.json"), "--fail-on", "risky"]
    )
    assert result.exit_code == 3 and "crashed: RuntimeError: bug" in result.stderr
