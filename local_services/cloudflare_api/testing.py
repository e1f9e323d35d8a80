"""For tests: the real emulator process on a free port, stopped even when the test fails.

with running_emulator(tmp_path / "cloudflare.json", token, account, {zone_id: "example.com"}) as api:
    client = Cloudflare(api_token=token, base_url=api.base_url)
    ...
    api.state()["accounts"][account]["scripts"]   # the state file, parsed
    api.journal()                                 # what was asked of it (every method but GET)
    api.fail_next("PUT", r"/workers/scripts/gw$") # the next such request fails, changing nothing
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_services.cloudflare_api.faults import PATH as FAULTS_PATH
from local_services.cloudflare_api.server import PREFIX

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class RunningEmulator:
    base_url: str
    state_path: Path
    token: str
    process: subprocess.Popen[str]

    def state(self) -> dict[str, Any]:
        """The state file as the emulator last wrote it."""
        parsed = json.loads(self.state_path.read_text())
        assert isinstance(parsed, dict)
        return parsed

    @property
    def journal_path(self) -> Path:
        return self.state_path.with_name(self.state_path.name + ".requests.jsonl")

    def journal(self) -> list[dict[str, Any]]:
        """Every request but GETs so far, in order: {at, method, path, status, code}."""
        if not self.journal_path.exists():
            return []
        return [json.loads(line) for line in self.journal_path.read_text().splitlines()]

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 500,
        code: int = 10000,
        message: str = "",
        times: int = 1,
    ) -> None:
        """The next `times` requests with this method and a path matching the regex `path` (after
        /client/v4) fail with this error and change nothing (faults.py)."""
        fault = {"method": method, "path": path, "status": status, "code": code, "times": times}
        if message:
            fault["message"] = message
        request = urllib.request.Request(  # noqa: S310 - the emulator on 127.0.0.1
            self.base_url.removesuffix(PREFIX) + FAULTS_PATH,
            data=json.dumps(fault).encode(),
            method="POST",
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            assert json.loads(answer.read())["success"] is True


def _command(state_path: Path, token: str, account: str, zones: dict[str, str]) -> list[str]:
    command = [sys.executable, "-m", "local_services.cloudflare_api", "--state", str(state_path)]
    # `--token=…` in one word: a random token may begin with "-", which argparse would take for an option.
    command += [f"--token={token}", f"--account={account}", "--port", "0"]
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
        yield RunningEmulator(json.loads(line)["url"], state_path, token, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
