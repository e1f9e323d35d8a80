"""`airgate up` when something is wrong: it stops what it started, shows the failing component's log
tail and a hint, exits non-zero, leaves no process behind and keeps the state folder."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from infra.config.loader import PROJECT_ROOT, load_stack
from infra.local.plan import free_ports
from tests.e2e.test_local_environment import our_processes

pytestmark = pytest.mark.slow
AIRGATE = PROJECT_ROOT / ".venv" / "bin" / "airgate"


def up(state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIRGATE), "up", "--state-dir", str(state_dir), "--free-ports"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def preset_ports(state_dir: Path) -> dict[str, object]:
    ports = free_ports(load_stack("local").config).__dict__
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "ports.json").write_text(json.dumps(ports))
    return ports


def test_a_busy_port_stops_before_anything_starts(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    ports = preset_ports(state_dir)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(ports["airflow"])))  # type: ignore[call-overload]
        holder.listen()
        result = up(state_dir)
    assert result.returncode == 1
    assert f"port(s) already in use: {ports['airflow']}" in result.stderr
    assert "--free-ports" in result.stderr
    assert our_processes(state_dir) == []


def test_a_component_that_fails_stops_the_others_and_shows_its_log(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    preset_ports(state_dir)
    (state_dir / "oidc-keys.json").write_text("{ this is not a key set")  # corrupt state
    result = up(state_dir)
    assert result.returncode == 1
    assert "oidc failed to start" in result.stderr
    assert "--- last lines of oidc's log ---" in result.stderr
    assert "SyntaxError" in result.stderr
    assert "hint:" in result.stderr
    assert "Everything started was stopped" in result.stderr
    assert our_processes(state_dir) == []
    assert (state_dir / "secrets.json").exists()
    assert (state_dir / "oidc-keys.json").read_text() == "{ this is not a key set"
