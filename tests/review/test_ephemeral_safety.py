"""Ephemeral stacks, the safety points: `stack create` writes no null (which `pulumi config set`
would turn into "" and the loader refuse), and `sweep`/`list` never read a protected or long-lived
stack's state or secrets, and go on past a stack they cannot read."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import infra.cli.stacks as stacks_cli
from infra.cli.main import app
from infra.config.errors import ConfigError
from infra.config.loader import STACKS_DIR, load_stack
from infra.ephemeral.service import list_stacks, sweep
from infra.ephemeral.workspace import export_command
from tests.review.recording import FakeStack, RecordingWorkspace, as_pulumi_stores
from tests.review.test_ephemeral import NOW, ephemeral, run_create


@pytest.fixture
def stacks_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(STACKS_DIR, tmp_path / "stacks"))


def nulls(node: Any) -> int:
    if node is None:
        return 1
    if isinstance(node, dict):
        return sum(nulls(v) for v in node.values())
    if isinstance(node, list):
        return sum(nulls(v) for v in node)
    return 0


@pytest.mark.parametrize("with_airflow", [False, True])
def test_stack_create_writes_no_null_and_survives_pulumi_config_set(
    stacks_dir: Path, stub_templates: Path, with_airflow: bool
) -> None:
    from tests.review.conftest import plan_stack

    workspace = RecordingWorkspace({"dev": FakeStack()}, stacks_dir=stacks_dir)
    run_create(workspace, stacks_dir, plan_stack, pr=7, with_airflow=with_airflow)
    written = yaml.safe_load((stacks_dir / "Pulumi.pr-7.yaml").read_text())
    assert any(call[0] == "set_secret" for call in workspace.calls)  # the stand-in rewrote the file
    assert nulls(written) == 0
    derived = load_stack("pr-7", stacks_dir).config
    assert (derived.airflow is not None) is with_airflow
    assert derived.gateways["ingest"].hostname == "pr-7-ingest.dev.acme-data.com"


def test_the_stand_in_refuses_what_pulumi_refuses(stacks_dir: Path) -> None:
    # The rule the stand-in enforces: a null written into a stack file comes back as "".
    path = stacks_dir / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["airgate:airflow"] = None
    path.write_text(yaml.safe_dump({"config": as_pulumi_stores(document["config"])}))
    with pytest.raises(ConfigError) as caught:
        load_stack("dev", stacks_dir)
    assert "airflow" in caught.value.render()


def state_reads(workspace: RecordingWorkspace) -> set[str]:
    return {call[1] for call in workspace.calls if call[0] == "state_resources"}


def test_sweep_reads_state_only_of_stacks_it_may_destroy(stacks_dir: Path) -> None:
    past = NOW - dt.timedelta(minutes=1)
    workspace = RecordingWorkspace(
        {
            "prod": FakeStack(tags={"airgate:ephemeral": "true"}, resources=[{"protect": True}]),
            "dev": FakeStack(),
            "pr-1": ephemeral(past),
            "pr-2": ephemeral(NOW + dt.timedelta(hours=1)),
            "pr-3": ephemeral(past, **{"airgate:protected": "true"}),
        }
    )
    outcomes = {o.decision.name: o.decision.action for o in sweep(workspace, NOW, stacks_dir)}
    assert outcomes == {"dev": "skip", "pr-1": "destroy", "pr-2": "keep", "pr-3": "skip", "prod": "skip"}
    # Name first (prod and dev are never asked even for tags), then tags, then state.
    assert {call[1] for call in workspace.calls if call[0] == "list_tags"} == {"pr-1", "pr-2", "pr-3"}
    assert state_reads(workspace) == {"pr-1"}


def test_sweep_goes_on_past_an_unreadable_stack_and_reports_it(
    stacks_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    past = NOW - dt.timedelta(minutes=1)
    workspace = RecordingWorkspace({"pr-1": ephemeral(past), "pr-2": ephemeral(past)}, fail_tags={"pr-1"})
    outcomes = {o.decision.name: o for o in sweep(workspace, NOW, stacks_dir)}
    assert outcomes["pr-2"].decision.action == "destroy" and "pr-2" not in workspace.stacks
    assert outcomes["pr-1"].error is not None and "403 Forbidden" in outcomes["pr-1"].error

    workspace = RecordingWorkspace({"pr-1": ephemeral(past), "pr-2": ephemeral(past)}, fail_tags={"pr-1"})
    monkeypatch.setattr(stacks_cli, "make_workspace", lambda: workspace)
    monkeypatch.setattr(stacks_cli, "now", lambda: NOW)
    result = CliRunner().invoke(app, ["stack", "sweep", "--stacks-dir", str(stacks_dir)])
    assert result.exit_code == 1
    assert "unreadable" in result.stdout and "pr-2" in result.stdout and "pr-2" not in workspace.stacks


def test_list_reads_tags_only(stacks_dir: Path) -> None:
    workspace = RecordingWorkspace(
        {"prod": FakeStack(resources=[{"protect": True}]), "pr-1": ephemeral(NOW)}, fail_tags=set()
    )
    rows = {facts.name: facts for facts, _ in list_stacks(workspace, stacks_dir)}
    assert rows["prod"].protected_config and state_reads(workspace) == set()


def test_the_state_export_never_asks_for_secrets() -> None:
    assert export_command("pr-1") == ["pulumi", "stack", "export", "--stack", "pr-1"]
    assert not any("secret" in part for part in export_command("prod"))


def test_the_cli_list_shows_an_unreadable_stack_and_the_rest(
    stacks_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = RecordingWorkspace({"pr-1": ephemeral(NOW), "prod": FakeStack()}, fail_tags={"pr-1"})
    monkeypatch.setattr(stacks_cli, "make_workspace", lambda: workspace)
    result = CliRunner().invoke(app, ["stack", "list", "--stacks-dir", str(stacks_dir)])
    assert result.exit_code == 0
    assert "pr-1" in result.stdout and "unreadable" in result.stdout and "403 Forbidden" in result.stdout
    assert "prod" in result.stdout and "protected" in result.stdout and state_reads(workspace) == set()
