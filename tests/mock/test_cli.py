"""`airgate plan` and `airgate build` as a user runs them: the console script in .venv."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.config.loader import PROJECT_ROOT

AIRGATE = PROJECT_ROOT / ".venv" / "bin" / "airgate"


def airgate(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIRGATE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_plan_prod_prints_resources_and_matrix(tmp_path: Path) -> None:
    plan_file = tmp_path / "prod.json"
    result = airgate("plan", "--stack", "prod", "--json", str(plan_file))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "gateway ingest" in out and "gateway trigger" in out
    assert "WorkersScript ingest-script" in out and "[protected]" in out
    assert "ZeroTrustAccessApplication ingest-access" in out
    assert "Access matrix" in out
    assert "/v1/admin/**" in out and "platform-admin" in out
    assert "plan-placeholder" not in out
    document = json.loads(plan_file.read_text())
    assert document["format"] == "airgate-plan/1"
    assert document["stack"] == "prod"
    assert {row["gateway"] for row in document["access_matrix"]} == {"ingest", "warehouse", "trigger"}
    assert set(document["policies"]) == {"ingest", "warehouse", "trigger"}
    assert "plan-placeholder" not in plan_file.read_text()


def test_plan_of_a_missing_stack_names_the_known_ones() -> None:
    result = airgate("plan", "--stack", "does-not-exist")
    assert result.returncode == 2
    assert "stacks/Pulumi.does-not-exist.yaml" in result.stderr
    assert "no such stack file" in result.stderr
    assert "use one of: dev, local, prod, staging" in result.stderr


def test_plan_of_a_bad_stack_exits_nonzero_with_the_models_error(
    write_stack: Any, stacks_dir: Path, tmp_path: Path
) -> None:
    write_stack(shared=lambda base: base["roles"].update({"auditor": {}}))
    plan_file = tmp_path / "plan.json"
    result = airgate(
        "plan", "--stack", "candidate", "--stacks-dir", str(stacks_dir), "--json", str(plan_file)
    )
    assert result.returncode == 2
    assert "Pulumi.candidate.yaml: the stack config is invalid; nothing was created." in result.stderr
    assert "at roles.auditor: role has no members" in result.stderr
    assert "fix: add groups, emails, service_tokens or oidc_clients" in result.stderr
    assert not plan_file.exists()
    assert "Access matrix" not in result.stdout


def test_build_writes_bundle_config_and_digest(tmp_path: Path) -> None:
    result = airgate("build", "--stack", "local", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for gateway in ("ingest", "warehouse", "trigger"):
        names = {p.name for p in (tmp_path / gateway).iterdir()}
        assert {"gateway.js", "gateway.js.sha256", "wrangler.json", "policy.json", "manifest.json"} <= names


@pytest.mark.parametrize("command", ["plan", "build"])
def test_every_command_has_help(command: str) -> None:
    result = airgate(command, "--help")
    assert result.returncode == 0
    assert "--stack" in result.stdout
