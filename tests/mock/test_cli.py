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


@pytest.mark.parametrize("command", ["plan", "build", "can-i", "verify", "revoke", "kill-switch"])
def test_every_command_has_help(command: str) -> None:
    result = airgate(command, "--help")
    assert result.returncode == 0
    assert "--stack" in result.stdout


def python_m(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "python"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=120,
    )


def test_python_dash_m_runs_the_command_line() -> None:
    result = python_m("-m", "infra.cli.main", "--help")
    assert result.returncode == 0
    assert "can-i" in result.stdout and "plan" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("can-i", "-s", "local", "--as", "ai-agent", "GET", "/v1/tables/x", "-g", "warehouse"),
        ("can-i", "-s", "prod", "--as", "ci", "--list"),
        ("status",),
        ("logs",),
        ("token", "--client", "ai-agent"),
        ("revoke", "-s", "local", "someone"),
        ("kill-switch", "-s", "local", "ci"),
        ("verify", "-s", "local"),
    ],
)
def test_commands_that_need_no_pulumi_do_not_import_it(command: tuple[str, ...], tmp_path: Path) -> None:
    """Importing Pulumi and its providers costs seconds; these commands must not pay it."""
    state = ("--state-dir", str(tmp_path / "state")) if command[0] not in ("can-i",) else ()
    result = python_m("-X", "importtime", "-m", "infra.cli.main", *command, *state)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "typer" in imported, result.stderr[-2000:]  # the command line itself was imported
    assert not {name for name in imported if name.split(".")[0].startswith("pulumi")}


def test_stacks_are_found_from_the_current_directory_upwards(tmp_path: Path) -> None:
    project = tmp_path / "checkout"
    (project / "stacks").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    for stack in ("shared.yaml", "Pulumi.local.yaml"):
        text = (PROJECT_ROOT / "stacks" / stack).read_text()
        # This checkout's ci role may also query the warehouse: proof these files were read.
        text = text.replace(
            "roles: [analyst, data-engineer, ai-agent],", "roles: [analyst, data-engineer, ai-agent, ci],"
        )
        (project / "stacks" / stack).write_text(text)
    deep = project / "dags" / "nested"
    deep.mkdir(parents=True)
    asked = ("can-i", "-s", "local", "--as", "ci", "POST", "/v1/query", "-g", "warehouse")
    assert airgate(*asked, cwd=deep).returncode == 0
    assert airgate(*asked, cwd=PROJECT_ROOT).returncode == 1
    outside = airgate(*asked, cwd=tmp_path)
    assert outside.returncode == 2
    assert "no Pulumi.yaml in" in outside.stderr and "--stacks-dir" in outside.stderr


def test_logs_prints_json_lines_whole_however_narrow_the_terminal(tmp_path: Path) -> None:
    logs = tmp_path / "state" / "logs"
    logs.mkdir(parents=True)
    records = [{"gateway": "warehouse", "path": "/v1/tables/" + "x" * 200, "n": n} for n in range(5)]
    (logs / "gateways.log").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = airgate("logs", "gateways", "-n", "3", "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == records[-3:]
