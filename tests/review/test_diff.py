"""`airgate diff` as a reviewer meets it: risky changes first, in policy terms, within one comment."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from infra.cli.main import app
from infra.config.loader import STACKS_DIR
from infra.config.patterns import parse_pattern
from infra.review.coverage import covers, widens
from infra.review.diff import diff_plans, diff_sets, grant_changes
from infra.review.markdown import MAX_CHARS, render_markdown
from tests.review.conftest import plan_stack, resource

PlanOf = Callable[[str], dict[str, Any]]
runner = CliRunner()


def risky_reasons(report: dict[str, Any]) -> list[str]:
    return [reason for stack in report["stacks"] for item in stack["risky"] for reason in item["reasons"]]


def one(base: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    return diff_sets({base["stack"]: base}, {head["stack"]: head})


def grant(plan: dict[str, Any], role: str, gateway: str, route: str, methods: list[str]) -> None:
    path = next(r["path"] for r in plan["access_matrix"] if r["gateway"] == gateway and r["route"] == route)
    plan["access_matrix"].append(
        {"role": role, "gateway": gateway, "route": route, "path": path, "methods": methods}
    )


# --- risky classes ---


def test_a_new_grant_in_prod_is_risky_and_named(plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    grant(head, "analyst", "ingest", "health", ["GET"])
    report = one(base, head)
    assert risky_reasons(report) == ["new grant in prod"]
    text = render_markdown(report)
    assert "`analyst` may now call `GET /v1/health` on `ingest`" in text


def test_the_same_new_grant_in_dev_is_listed_but_not_risky(plan_of: PlanOf) -> None:
    base, head = plan_of("dev"), plan_of("dev")
    grant(head, "analyst", "ingest", "health", ["GET"])
    report = one(base, head)
    assert report["risky"] == 0
    assert [g["change"] for g in report["stacks"][0]["grants"]] == ["added"]


def test_a_role_gaining_a_method_is_risky_anywhere(plan_of: PlanOf) -> None:
    base, head = plan_of("dev"), plan_of("dev")
    row = next(r for r in head["access_matrix"] if r["role"] == "analyst" and r["route"] == "tables")
    row["methods"] = ["GET", "DELETE"]
    report = one(base, head)
    assert risky_reasons(report) == ["role gains a method"]
    assert "`analyst` gains `DELETE` on `warehouse /v1/tables/**`" in render_markdown(report)


def test_a_widened_wildcard_is_risky(plan_of: PlanOf) -> None:
    base, head = plan_of("staging"), plan_of("staging")
    route = next(r for r in head["policies"]["ingest"]["document"]["routes"] if r["name"] == "batch-status")
    route["pattern"] = "/v1/batches/**"
    report = one(base, head)
    assert any("widened wildcard" in reason for reason in risky_reasons(report))


def test_a_narrowed_path_is_not_risky(plan_of: PlanOf) -> None:
    base, head = plan_of("staging"), plan_of("staging")
    route = next(r for r in head["policies"]["warehouse"]["document"]["routes"] if r["name"] == "tables")
    route["pattern"] = "/v1/tables/{table}"
    report = one(base, head)
    assert report["risky"] == 0 and report["stacks"][0]["routes"][0]["change"] == "path_changed"


def test_removing_access_is_listed_and_safe(plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    head["access_matrix"] = [r for r in head["access_matrix"] if r["role"] != "ai-agent"]
    report = one(base, head)
    assert report["risky"] == 0
    assert {g["change"] for g in report["stacks"][0]["grants"]} == {"removed"}


def test_dag_grant_changes(plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    head["dag_grants"].append(
        {"gateway": "trigger", "role": "analyst", "dag": "rebuild_warehouse", "conf_schema": None}
    )
    agent = next(g for g in head["dag_grants"] if g["role"] == "ai-agent")
    agent["conf_schema"] = None
    reasons = risky_reasons(one(base, head))
    assert "new DAG grant in prod" in reasons
    assert "conf schema dropped: any conf is now accepted" in reasons


def test_new_members_of_prod_roles_are_risky(plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    head["identities"]["roles"]["platform-admin"]["emails"].append("contractor@example.com")
    report = one(base, head)
    assert risky_reasons(report) == ["new member of a prod role"]
    assert "email `contractor@example.com` joins role `platform-admin`" in render_markdown(report)


def test_a_loosened_prod_rate_limit_is_risky(plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    route = next(r for r in head["policies"]["warehouse"]["document"]["routes"] if r["name"] == "query")
    route["rate_limit"] = {"requests": 3000, "per_seconds": 60}
    report = one(base, head)
    assert risky_reasons(report) == ["rate limit loosened in prod"]
    assert "rate limit loosened: 30/60s → 3000/60s" in render_markdown(report)


def test_deleting_protected_data_is_risky(plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    head["resources"] = [r for r in head["resources"] if r["name"] != "trigger-kv"]
    report = one(base, head)
    [item] = report["stacks"][0]["risky"]
    assert item["change"] == "delete" and "deletes a protected resource" in item["reasons"]


def test_a_rule_that_starts_failing_is_risky(plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    resource(head, "identity-analyst-people")["inputs"]["decision"] = "bypass"
    report = one(base, head)
    assert "a policy rule now fails" in risky_reasons(report)
    assert "**no-bypass-in-prod** (error)" in render_markdown(report)


def test_risky_changes_come_first(plan_of: PlanOf) -> None:
    dev_base, dev_head = plan_of("dev"), plan_of("dev")
    grant(dev_head, "analyst", "ingest", "health", ["GET"])  # not risky in dev
    prod_base, prod_head = plan_of("prod"), plan_of("prod")
    grant(prod_head, "analyst", "ingest", "health", ["GET"])
    report = diff_sets({"dev": dev_base, "prod": prod_base}, {"dev": dev_head, "prod": prod_head})
    assert [s["stack"] for s in report["stacks"]] == ["prod", "dev"]
    text = render_markdown(report)
    risky = text[text.index("### ⚠️ Risky (1)") : text.index("### Changes")]
    assert "`analyst` may now call `GET /v1/health` on `ingest`" in risky
    assert risky.rstrip().endswith("· prod")
    changes = text[text.index("### Changes") :]
    assert "`analyst` may now call `GET /v1/health` on `ingest` (route health) · prod, dev" in changes


# --- resources ---


def test_resource_changes_name_the_changed_keys_and_mask_secrets(plan_of: PlanOf) -> None:
    base, head = plan_of("staging"), plan_of("staging")
    resource(head, "ingest-script")["inputs"]["compatibilityDate"] = "2026-11-20"
    resource(head, "warehouse-script")["inputs"]["accountId"] = "f" * 32
    report = one(base, head)
    changes = {r["name"]: r for r in report["stacks"][0]["resources"]}
    assert changes["ingest-script"]["change"] == "update"
    assert changes["ingest-script"]["keys"] == ["compatibilityDate"]
    assert changes["warehouse-script"]["change"] == "replace"
    assert "[secret]" not in json.dumps(changes["ingest-script"]["details"])


def test_a_binding_change_is_named_by_binding(plan_of: PlanOf) -> None:
    base, head = plan_of("staging"), plan_of("staging")
    bindings = resource(head, "ingest-script")["inputs"]["bindings"]
    bindings.reverse()  # order alone is not a change
    next(b for b in bindings if b["name"] == "ENVIRONMENT")["text"] = "other"
    [change] = one(base, head)["stacks"][0]["resources"]
    assert change["keys"] == ["bindings[ENVIRONMENT].text"]


# --- output shape ---


def test_no_change_is_one_line_and_exit_zero(tmp_path: Path, plans: dict[str, dict[str, Any]]) -> None:
    plan_file = tmp_path / "prod.json"
    plan_file.write_text(json.dumps(plans["prod"]))
    result = runner.invoke(app, ["diff", str(plan_file), str(plan_file), "--fail-on", "risky"])
    assert result.exit_code == 0
    assert result.stdout == "airgate diff: no changes in 1 stack.\n"


def test_fail_on_risky_exits_non_zero(tmp_path: Path, plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    grant(head, "analyst", "ingest", "health", ["GET"])
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    files = [str(tmp_path / "base.json"), str(tmp_path / "head.json")]
    assert runner.invoke(app, ["diff", *files]).exit_code == 0
    failed = runner.invoke(app, ["diff", *files, "--fail-on", "risky"])
    assert failed.exit_code == 1 and "**1 risky change**" in failed.stdout
    as_json = json.loads(runner.invoke(app, ["diff", *files, "--format", "json"]).stdout)
    assert as_json["format"] == "airgate-diff/2" and as_json["risky"] == 1


def test_mermaid_draws_only_changed_gateways(plan_of: PlanOf) -> None:
    base, head = plan_of("prod"), plan_of("prod")
    grant(head, "analyst", "ingest", "health", ["GET"])
    text = render_markdown(one(base, head))
    picture = text[text.index("```mermaid") : text.index("```", text.index("```mermaid") + 3)]
    assert "subgraph g" in picture and '["ingest"]' in picture
    assert '["warehouse"]' not in picture and '["trigger"]' not in picture
    assert '==>|"+ GET"|' in picture


def test_mermaid_merges_the_methods_of_routes_sharing_a_path(plan_of: PlanOf) -> None:
    """Two routes on one path shape are one edge, with both routes' methods (as in the grants list)."""
    base, head = plan_of("prod"), plan_of("prod")
    grant(head, "analyst", "ingest", "health", ["GET"])
    grant(head, "analyst", "ingest", "health", ["POST"])
    head["access_matrix"][-1]["route"] = "health-write"
    report = one(base, head)
    [added] = report["stacks"][0]["grants"]
    assert added["methods"] == ["GET", "POST"]
    text = render_markdown(report)
    picture = text[text.index("```mermaid") : text.index("```", text.index("```mermaid") + 3)]
    assert '==>|"+ GET POST"|' in picture


def routes_stack(folder: Path, routes: int, offset: int = 0) -> Path:
    """The example stacks with `routes` generated routes on prod's shared gateways."""
    shutil.copytree(STACKS_DIR, folder, dirs_exist_ok=True)
    shared = yaml.safe_load((folder / "shared.yaml").read_text())
    roles = sorted(shared["roles"])
    gateways = sorted(shared["gateways"])
    for index in range(routes):
        gateway = gateways[index % len(gateways)]
        shared["gateways"][gateway]["routes"][f"gen-{index}"] = {
            "path": f"/gen/{index}/{{item}}",
            "methods": ["GET"] if (index + offset) % 3 else ["GET", "POST"],
            "roles": [roles[(index + offset) % len(roles)]],
        }
    (folder / "shared.yaml").write_text(yaml.safe_dump(shared, sort_keys=False))
    return folder


def test_a_2000_route_change_fits_one_comment(
    tmp_path: Path, plans: dict[str, dict[str, Any]], stub_templates: Path
) -> None:
    head = plan_stack("prod", routes_stack(tmp_path / "stacks", 2000))
    report = one(plans["prod"], head)
    assert report["risky"] >= 2000
    text = render_markdown(report, "the `airgate-diff` artifact")
    assert len(text) < MAX_CHARS
    assert "### ⚠️ Risky (" in text and "more risky changes (see the full JSON)" in text
    assert "Full machine-readable diff: the `airgate-diff` artifact" in text
    assert len(report["stacks"][0]["grants"]) >= 2000  # the JSON keeps everything


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=6000), st.integers(min_value=0, max_value=3))
def test_markdown_is_always_under_the_cap(rows: int, stacks: int) -> None:
    def doc(name: str, count: int) -> dict[str, Any]:
        matrix = [
            {
                "role": f"role-{i % 7}",
                "gateway": f"gw-{i % 5}",
                "route": f"r{i}",
                "path": f"/p/{i}/**",
                "methods": ["GET"],
            }
            for i in range(count)
        ]
        return {
            "stack": name,
            "environment": "prod",
            "protected": True,
            "resources": [],
            "access_matrix": matrix,
        }

    names = [f"s{i}" for i in range(stacks + 1)]
    report = diff_sets({n: doc(n, 0) for n in names}, {n: doc(n, rows) for n in names})
    text = render_markdown(report)
    assert len(text) < MAX_CHARS
    plural = "" if len(names) == 1 else "s"
    expected = "<!-- airgate-diff -->" if rows else f"airgate diff: no changes in {len(names)} stack{plural}."
    assert text.splitlines()[0] == expected


# --- properties of the pieces ---

SEGMENTS = st.sampled_from(["a", "b", "{x}", "*"])
PATTERNS = st.builds(
    lambda parts, rest: "/" + "/".join([*parts, *(["**"] if rest else [])]),
    st.lists(SEGMENTS, max_size=3),
    st.booleans(),
)
PATHS = st.lists(st.sampled_from(["a", "b", "c"]), max_size=4).map(tuple)


@settings(max_examples=300)
@given(PATTERNS, PATTERNS, PATHS)
def test_covers_never_claims_a_path_the_wider_pattern_misses(
    wide: str, narrow: str, path: tuple[str, ...]
) -> None:
    if covers(wide, narrow) and parse_pattern(narrow).matches(path):
        assert parse_pattern(wide).matches(path)
    assert covers(wide, wide) and not widens(wide, wide)
    assert covers("/**", narrow)


ROWS = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3"]),
        st.sampled_from(["g1", "g2"]),
        st.sampled_from(["x", "y", "z"]),
        st.sets(st.sampled_from(["GET", "POST", "DELETE"]), min_size=1),
    ),
    max_size=12,
    unique_by=lambda row: row[:3],
)


def as_plan(rows: list[tuple[str, str, str, set[str]]]) -> dict[str, Any]:
    return {
        "stack": "s",
        "environment": "dev",
        "resources": [],
        "access_matrix": [
            {"role": r, "gateway": g, "route": x, "path": f"/{x}", "methods": sorted(m)}
            for r, g, x, m in rows
        ],
    }


@settings(max_examples=200)
@given(ROWS, ROWS)
def test_grant_changes_are_exactly_the_difference(a: list[Any], b: list[Any]) -> None:
    changes = grant_changes(as_plan(a), as_plan(b), prod=False)
    old = {row[:3]: row[3] for row in a}
    new = {row[:3]: row[3] for row in b}
    added = {(c["role"], c["gateway"], c["route"]) for c in changes if c["change"] == "added"}
    removed = {(c["role"], c["gateway"], c["route"]) for c in changes if c["change"] == "removed"}
    gained = {
        (c["role"], c["gateway"], c["route"], m)
        for c in changes
        if c["change"] == "methods_added"
        for m in c["methods"]
    }
    assert added == set(new) - set(old)
    assert removed == set(old) - set(new)
    assert gained == {(*k, m) for k in set(old) & set(new) for m in new[k] - old[k]}
    assert all(c["risky"] == (c["change"] == "methods_added") for c in changes)


@settings(max_examples=50)
@given(ROWS)
def test_a_plan_never_differs_from_itself(rows: list[Any]) -> None:
    plan = as_plan(rows)
    assert not diff_plans(plan, copy.deepcopy(plan))["changed"]


def test_folders_of_plans_diff_stack_by_stack(tmp_path: Path, plan_of: PlanOf) -> None:
    for side in ("base", "head"):
        (tmp_path / side).mkdir()
        for name in ("dev", "prod"):
            plan = plan_of(name)
            if side == "head" and name == "dev":
                grant(plan, "analyst", "ingest", "health", ["GET"])
            (tmp_path / side / f"{name}.json").write_text(json.dumps(plan))
    result = runner.invoke(app, ["diff", str(tmp_path / "base"), str(tmp_path / "head"), "--format", "json"])
    report = json.loads(result.stdout)
    assert report["stacks_compared"] == 2
    assert [s["stack"] for s in report["stacks"]] == ["dev"]


def test_a_stack_that_does_not_plan_is_shown_and_named() -> None:
    report = diff_sets({}, {}, errors={"HEAD:prod": "stacks/Pulumi.prod.yaml: gateways.x: unknown key"})
    text = render_markdown(report)
    assert "**HEAD:prod does not plan:**" in text and "unknown key" in text


def test_a_file_that_is_not_a_plan_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "x.json"
    bogus.write_text("{}")
    result = runner.invoke(app, ["diff", str(bogus), str(bogus)])
    assert result.exit_code == 2 and "airgate plan --json" in result.stderr
