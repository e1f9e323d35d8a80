"""`airgate lint` as a user runs it: one line per finding with its rule and fix, exit 1 on errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from infra.cli.main import app
from tests.review.conftest import resource

runner = CliRunner()
PlanOf = Callable[[str], dict[str, Any]]


def test_lint_plans_the_stack_and_passes(stub_templates: Path) -> None:
    result = runner.invoke(app, ["lint", "--stack", "prod", "--today", "2026-11-29"])
    assert result.exit_code == 0, result.output
    assert "airgate lint prod: ok — 16 rules, 0 errors, 0 warnings" in result.stdout


def test_lint_fails_with_the_rule_the_resource_and_the_fix(tmp_path: Path, plan_of: PlanOf) -> None:
    plan = plan_of("prod")
    resource(plan, "identity-token-ci")["inputs"]["duration"] = "forever"
    plan_file = tmp_path / "prod.json"
    plan_file.write_text(json.dumps(plan))
    result = runner.invoke(
        app, ["lint", "--stack", "prod", "--plan", str(plan_file), "--today", "2026-11-29"]
    )
    assert result.exit_code == 1
    assert (
        "error: [service-token-duration] identity-token-ci: service token duration 'forever' is unbounded"
        in (result.stdout)
    )
    assert "fix: set duration to at most 8760h" in result.stdout
    as_json = runner.invoke(
        app, ["lint", "-s", "prod", "--plan", str(plan_file), "--format", "json", "--today", "2026-11-29"]
    )
    assert json.loads(as_json.stdout)[0]["rule"] == "service-token-duration"


def test_an_intended_class_deletion_is_allowed_by_flag(tmp_path: Path, plan_of: PlanOf) -> None:
    plan = plan_of("dev")
    resource(plan, "trigger-script")["inputs"]["migrations"] = {
        "steps": [{"deletedClasses": ["IdempotencyStore"]}]
    }
    plan_file = tmp_path / "dev.json"
    plan_file.write_text(json.dumps(plan))
    base = ["lint", "-s", "dev", "--plan", str(plan_file), "--today", "2026-11-29"]
    assert runner.invoke(app, base).exit_code == 1
    assert runner.invoke(app, [*base, "--allow-deleting-class", "IdempotencyStore"]).exit_code == 0
