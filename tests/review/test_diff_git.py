"""`airgate diff BASE HEAD` on git refs, run as a fork's pull request runs it: the console script,
no credentials in the environment, both refs planned offline from their own checkouts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli.main import app
from infra.config.loader import PROJECT_ROOT
from tests.review.conftest import write_stub_templates

AIRGATE = Path(sys.executable).parent / "airgate"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with the project's code and stacks, a stub Worker, and two commits: the second
    lets `analyst` call ingest's health route everywhere."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(PROJECT_ROOT / "infra", root / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "stacks", root / "stacks")
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    write_stub_templates(root / "worker_templates")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    shared = yaml.safe_load((root / "stacks" / "shared.yaml").read_text())
    shared["gateways"]["ingest"]["routes"]["health"]["roles"].append("analyst")
    (root / "stacks" / "shared.yaml").write_text(yaml.safe_dump(shared, sort_keys=False))
    (root / "README.md").write_text("docs only\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "analyst reaches health")
    return root


def test_a_fork_without_secrets_diffs_two_refs(repo: Path, tmp_path: Path) -> None:
    # A fork's pull request: no Pulumi, Cloudflare or GitHub credentials, a bare HOME.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "COLUMNS": "160"}
    full = tmp_path / "diff.json"
    result = subprocess.run(
        [
            str(AIRGATE),
            "diff",
            "HEAD~1",
            "HEAD",
            "--repo",
            str(repo),
            "--full-json",
            str(full),
            "--fail-on",
            "risky",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr  # a new grant in prod is risky
    text = result.stdout
    assert text.startswith("<!-- airgate-diff -->")
    assert "`analyst` may now call `GET /v1/health` on `ingest`" in text
    assert text.index("### ⚠️ Risky (1)") < text.index("### Changes")
    assert "— _new grant in prod_" in text  # one stack: no stack list on the line
    report = json.loads(full.read_text())
    assert {s["stack"] for s in report["stacks"]} == {"local", "dev", "staging", "prod"}
    assert report["risky"] == 1


def test_refs_that_plan_the_same_are_one_line(repo: Path) -> None:
    # Nothing that decides a plan differs (a docs-only change): answered without planning.
    (repo / "README.md").write_text("more docs\n")
    git(repo, "commit", "-q", "-am", "docs")
    result = CliRunner().invoke(app, ["diff", "HEAD~1", "HEAD", "--repo", str(repo)])
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert result.exit_code == 0
    assert result.stdout == "airgate diff: no changes in 4 stacks.\n"


def test_an_unknown_ref_is_a_usage_error(repo: Path) -> None:
    result = CliRunner().invoke(app, ["diff", "HEAD", "no-such-ref", "--repo", str(repo)])
    assert result.exit_code == 2
    assert "neither a plan JSON file" in result.stderr


def test_a_stack_that_stops_planning_fails_the_diff_and_is_not_a_removal(repo: Path, tmp_path: Path) -> None:
    # A prod zone typo at HEAD: exit 2 (an error) even with --fail-on risky, and the comment names
    # the failure instead of showing prod's 50-odd resources as deleted.
    prod = repo / "stacks" / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text().replace("airgate:zone: acme-data.com", "airgate:zone: not a zone"))
    git(repo, "commit", "-q", "-am", "break prod")
    try:
        result = subprocess.run(
            [
                str(AIRGATE),
                "diff",
                "HEAD~1",
                "HEAD",
                "--repo",
                str(repo),
                "--stack",
                "prod",
                "--fail-on",
                "risky",
            ],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            timeout=300,
            cwd=tmp_path,
        )
    finally:
        git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert result.returncode == 2, result.stderr
    assert "**HEAD:prod does not plan:**" in result.stdout and "zone" in result.stdout
    assert "delete" not in result.stdout and "removed" not in result.stdout
