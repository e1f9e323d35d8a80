"""For tests: the real emulator process on a free port, stopped even when the test fails.

with running_emulator(tmp_path / "cloudflare.json", token, account, {zone_id: "example.com"}) as api:
    client = Cloudflare(api_token=token, base_url=api.base_url)
    ...
    api.state()["accounts"][account]["scripts"]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class RunningEmulator:
    base_url: str
    state_path: Path
    process: subprocess.Popen[str]

    def state(self) -> dict[str, Any]:
        """The state file as the emulator last wrote it."""
        parsed = json.loads(self.state_path.read_text())
        assert isinstance(parsed, dict)
        return parsed


def _command(state_path: Path, token: str, account: str, zones: dict[str, str]) -> list[str]:
    command = [sys.executable, "-m", "local_services.cloudflare_api", "--state", str(state_path)]
    command += ["--token", token, "--account", account, "--port", "0"]
    for zone_id, name in zones.items():
        command += ["--zone", f"{zone_id}={name}"]
    return command


@contextmanager
def running_emulator(
    state_path: Path, token: str, account: str, zones: dict[str, str] | None = None
) -> Iterator[RunningEmulator]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    # stderr goes to a file beside the state: a pipe nobody reads could fill and stall the server.
    log_path = state_path.with_name(state_path.name + ".log")
    state_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            _command(state_path, token, account, zones or {}),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert process.stdout is not None
        # The process prints its URL once it accepts connections; a process that dies first closes
        # stdout, so this read ends either way (no polling, no sleep).
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=START_TIMEOUT)
            stderr = log_path.read_text()[-2000:]
            raise RuntimeError(f"the Cloudflare API emulator exited with {process.returncode}: {stderr}")
        yield RunningEmulator(json.loads(line)["url"], state_path, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
