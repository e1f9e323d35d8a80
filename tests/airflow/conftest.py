"""Fixtures for the Airflow tests: the airgate program with Airflow, run in-process under Pulumi mocks
and recorded; a fake `EdgeOutputs` when a test needs Airflow alone; paths of the shipped pieces."""

from __future__ import annotations

import functools
import http.server
import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings

from infra.airflow.program import deploy_airflow
from infra.components.endpoints import EdgeOutputs, GatewayEndpoint, MachineCredential
from infra.config.airflow_model import airflow_secret_keys
from infra.config.loader import LoadedStack, load_stack, referenced_secrets
from infra.plan.mocks import AirgateMocks
from infra.plan.runner import Recording, RecordingMonitor, _resolve, plan_config

ROOT = Path(__file__).resolve().parents[2]
AUTH_PACKAGE = ROOT / "airflow_gateway_auth"
DAGS = ROOT / "dags"

# The auth package and the DAG helpers are not installed in .venv (the package goes into the Airflow
# image); the pure tests import them from the source tree.
for _path in (AUTH_PACKAGE / "src", DAGS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def fake_edge(loaded: LoadedStack) -> EdgeOutputs:
    """What the edge would hand over: https URLs and Access service tokens with secret halves."""
    stack = loaded.config
    endpoints = {
        name: GatewayEndpoint(
            name,
            gateway.hostname,
            pulumi.Output.from_input(f"https://{gateway.hostname}"),
            stack.gateway_auth(gateway),
        )
        for name, gateway in stack.gateways.items()
    }
    tokens = {
        name: MachineCredential(
            name,
            "access_service_token",
            pulumi.Output.from_input(f"{name}-client-id.access"),
            pulumi.Output.secret(f"{name}-client-secret-value"),
        )
        for name in stack.service_tokens
    }
    return EdgeOutputs(endpoints, tokens)


class OptionsMonitor(RecordingMonitor):
    """Also keeps the resource options the shared recording leaves out (`retainOnDelete`, ...)."""

    def __init__(self, mocks: pulumi.runtime.Mocks, recording: Recording) -> None:
        super().__init__(mocks, recording)
        self.retained: set[str] = set()
        self.delete_before_replace: set[str] = set()

    def RegisterResource(self, request: Any) -> Any:
        if getattr(request, "retainOnDelete", False):
            self.retained.add(request.name)
        if getattr(request, "deleteBeforeReplace", False):
            self.delete_before_replace.add(request.name)
        return super().RegisterResource(request)


RETAINED: dict[int, OptionsMonitor] = {}
"""id(recording) -> the monitor that recorded it."""


def run_recorded(loaded: LoadedStack, program: Callable[[LoadedStack], Any]) -> Recording:
    """Like `infra.plan.runner.run_program`, with placeholders for the airflow section's secrets too."""
    recording = Recording()
    monitor = OptionsMonitor(AirgateMocks(), recording)
    RETAINED[id(recording)] = monitor
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        AirgateMocks(), project="airgate", stack=loaded.name, preview=True, monitor=monitor
    )
    values, secret_keys = plan_config(loaded)
    for key in sorted(airflow_secret_keys(loaded.config.airflow) | referenced_secrets(loaded.config)):
        values[f"airgate:{key}"] = f"plan-placeholder-{key}"
        secret_keys.append(f"airgate:{key}")
    pulumi.runtime.set_all_config(values, sorted(set(secret_keys)))

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> None:
        program(loaded)

    body()
    root = settings.get_root_resource()
    for key, value in dict(getattr(root, "outputs", None) or {}).items():
        recording.outputs[key] = _resolve(value)
    return recording


def airflow_only(loaded: LoadedStack) -> None:
    deploy_airflow(loaded, fake_edge(loaded))


@functools.cache
def recorded(stack: str) -> Recording:
    return run_recorded(load_stack(stack), airflow_only)


@pytest.fixture(params=["dev", "staging", "prod"])
def recording(request: pytest.FixtureRequest) -> Recording:
    return recorded(request.param)


# --- a local HTTP server standing in for a gateway (and a token endpoint) -----------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class StandIn:
    """Answers from a per-path script (the last answer repeats) and records every request."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.scripts: dict[str, list[Scripted]] = {}
        self.tokens_issued = 0
        self.token_ttl = 3600
        self._lock = threading.Lock()
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with stand_in._lock:
                    stand_in.requests.append(Seen(self.command, path, dict(self.headers.items()), body))
                    if path == "/token":
                        stand_in.tokens_issued += 1
                        answer = Scripted(
                            200,
                            {
                                "access_token": f"token-{stand_in.tokens_issued}",
                                "token_type": "Bearer",
                                "expires_in": stand_in.token_ttl,
                            },
                        )
                    else:
                        script = stand_in.scripts.get(path) or [Scripted(200, {"ok": True})]
                        answer = script.pop(0) if len(script) > 1 else script[0]
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def to(self, path: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.path == path]


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(timeout=10)
