"""Commands that read, only read: `airgate token`, `status`, `logs`, `verify`, `can-i`, `plan`, `diff`
and `lint` leave the local state folder and the stacks exactly as they found them, byte for byte, when
there is something to read and when there is nothing (no state folder is made up)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli.main import app
from infra.config.loader import load_stack
from infra.local.environment import prepare
from infra.local.plan import secret_names
from infra.local.processes import Supervisor

runner = CliRunner()


def contents(*folders: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under `folders`: (mode, sha256 of its bytes)."""
    found: dict[str, tuple[int, str]] = {}
    for folder in folders:
        for path in sorted([folder, *folder.rglob("*")]):
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            found[str(path)] = (stat.st_mode, digest)
    return found


@pytest.fixture
def stopped_environment(tmp_path: Path, stacks_dir: Path) -> Path:
    """What `airgate up` leaves in a state folder before it starts a process, plus a log; one secret
    is missing, as after a client was added to the stack since: a writer would make it up."""
    state = tmp_path / "state"
    loaded = load_stack("local", stacks_dir)
    plan = prepare(loaded, state, free=True)
    for name, document in (("oidc.json", plan.oidc_config), ("gateways.json", plan.gateways_config)):
        (state / name).write_text(json.dumps(document))
    Supervisor(state).write_config(plan.components)
    (state / "logs" / "gateways.log").write_text('{"decision": "allow"}\n')
    saved = json.loads((state / "secrets.json").read_text())
    del saved[secret_names(loaded.config)[0]]
    (state / "secrets.json").write_text(json.dumps(saved))
    return state


def local_commands(state: Path, stacks: Path) -> list[tuple[list[str], int]]:
    """(arguments, the exit code a user sees) for each command that reads the local state folder."""
    saved = state / "ports.json"
    up_once = saved.exists()
    port = json.loads(saved.read_text())["gateways"]["warehouse"] if up_once else 9603
    where = ["--state-dir", str(state), "--stacks-dir", str(stacks)]
    return [
        # No token: a secret is missing (stopped) or nothing was ever started; exit 2 says run `up`.
        (["token", "--client", "ai-agent", *where], 2),
        (["token", "--user", "data-engineer-person", *where], 2),
        (["status", "--state-dir", str(state)], 3),
        (["logs", "--state-dir", str(state)], 0),
        (["logs", "gateways", "-n", "5", "--state-dir", str(state)], 0 if up_once else 2),
        (["verify", "-s", "local", *where], 2),
        (["can-i", "-s", "local", "--as", "analyst", "GET", f"http://127.0.0.1:{port}/v1/tables/x", *where],
         0 if up_once else 2),
        (["can-i", "-s", "local", "--as", "analyst", "--list", *where], 0),
    ]  # fmt: skip


def run_each(commands: list[tuple[list[str], int]], *watched: Path, absent: Path | None = None) -> None:
    before = contents(*watched)
    for args, code in commands:
        result = runner.invoke(app, args, env={**os.environ, "COLUMNS": "200"})
        assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
        assert contents(*watched) == before, f"airgate {' '.join(args)} changed state"
        assert absent is None or not absent.exists(), f"airgate {' '.join(args)} made {absent}"


def test_local_commands_change_nothing_in_a_stopped_environment(
    stopped_environment: Path, stacks_dir: Path
) -> None:
    run_each(local_commands(stopped_environment, stacks_dir), stopped_environment, stacks_dir)


def test_local_commands_make_no_state_folder_where_none_was(tmp_path: Path, stacks_dir: Path) -> None:
    never = tmp_path / "never"
    run_each(local_commands(never, stacks_dir), stacks_dir, absent=never)


def test_plan_diff_and_lint_change_no_state(
    stopped_environment: Path, stacks_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    plan = out / "local.json"
    run_each(
        [
            (["plan", "-s", "local", "--stacks-dir", str(stacks_dir), "--json", str(plan)], 0),
            (["diff", str(plan), str(plan)], 0),
            (["lint", "-s", "local", "--stacks-dir", str(stacks_dir)], 0),
        ],
        stopped_environment,
        stacks_dir,
    )
    assert [p.name for p in out.iterdir()] == ["local.json"]  # only what was asked for
