"""The GitHub Actions workflows: valid against the GitHub workflow schema (check-jsonschema's bundled
copy of SchemaStore's), safe on forks, and calling only `airgate` commands that exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from infra.cli.main import app
from infra.config.loader import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
CHECK_JSONSCHEMA = PROJECT_ROOT / ".venv" / "bin" / "check-jsonschema"


def load(name: str) -> dict[str, Any]:
    # BaseLoader keeps `on:` a string key (YAML 1.1 would read it as True), as GitHub does.
    document = yaml.load((WORKFLOWS / name).read_text(), Loader=yaml.BaseLoader)
    assert isinstance(document, dict)
    return document


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def test_there_is_a_workflow_for_each_trigger() -> None:
    names = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
    assert names == ["comment.yml", "ephemeral.yml", "nightly.yml", "review.yml", "teardown.yml"]


def test_workflows_match_the_github_workflow_schema() -> None:
    result = subprocess.run(
        [
            str(CHECK_JSONSCHEMA),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, sorted(WORKFLOWS.glob("*.yml"))),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_the_pull_request_diff_needs_no_secrets_and_cannot_write() -> None:
    review = load("review.yml")
    assert review["on"].keys() == {"pull_request"}
    assert review["permissions"] == {"contents": "read"}
    for name in ("diff", "lint"):
        assert "secrets." not in yaml.safe_dump(review["jobs"][name])


def test_credentialed_preview_steps_are_skipped_without_credentials() -> None:
    preview = load("review.yml")["jobs"]["preview"]
    assert "secrets.PULUMI_ACCESS_TOKEN" in preview["env"]["HAS_CREDENTIALS"]
    for step in preview["steps"]:
        assert "HAS_CREDENTIALS" in step.get("if", ""), step
    assert any("--policy-pack policy" in step.get("run", "") for step in preview["steps"])


def test_privileged_workflows_never_run_pull_request_code() -> None:
    comment = load("comment.yml")
    assert not any(step.get("uses", "").startswith("actions/checkout") for step in steps(comment))
    teardown = load("teardown.yml")
    assert teardown["on"].keys() == {"pull_request_target"}
    for step in steps(teardown):
        assert "head" not in step.get("with", {}).get("ref", ""), step


def test_ephemeral_stacks_are_only_for_this_repositorys_branches() -> None:
    job = load("ephemeral.yml")["jobs"]["up"]
    assert "head.repo.full_name == github.repository" in job["if"]
    assert "author_association" in job["if"]
    assert job["concurrency"]["cancel-in-progress"] == "false"


def test_nightly_sweeps() -> None:
    nightly = load("nightly.yml")
    assert "schedule" in nightly["on"]
    assert any("airgate stack sweep" in step.get("run", "") for step in steps(nightly))


def _commands() -> set[str]:
    root = get_command(app)
    names: set[str] = set()
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        names.add(name)
        for sub in getattr(command, "commands", {}):
            names.add(f"{name} {sub}")
    return names


@pytest.mark.parametrize("workflow", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_workflows_call_only_existing_airgate_commands(workflow: str) -> None:
    known = _commands()
    for step in steps(load(workflow)):
        for match in re.finditer(r"airgate ((?:stack )?[a-z]+)", step.get("run", "")):
            assert match.group(1) in known, f"{workflow}: airgate {match.group(1)}"
