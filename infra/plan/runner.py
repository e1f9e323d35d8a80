"""Runs the airgate program in-process under Pulumi mocks and records every registration.

Recorded per resource: type, logical name, parent, inputs (with Pulumi's secret markers kept, so
callers can mask them) and protect. Stack outputs are recorded too. No credentials, no network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.sync_await import _sync_await

from infra.config.loader import LoadedStack, referenced_secrets
from infra.plan.mocks import AirgateMocks

SECRET_SIG = rpc._special_sig_key
SECRET_VALUE = rpc._special_secret_sig


@dataclass(frozen=True)
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    protect: bool
    inputs: dict[str, Any]


@dataclass
class Recording:
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_name(self, name: str) -> RecordedResource:
        return next(r for r in self.resources if r.name == name)

    def of_type(self, suffix: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type.endswith(suffix)]


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, recording: Recording) -> None:
        super().__init__(mocks)
        self.recording = recording
        self.names_by_urn: dict[str, str] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            pulumi_mocks._ensure_event_loop()  # type: ignore[attr-defined,no-untyped-call]
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
            self.names_by_urn[response.urn] = request.name
            self.recording.resources.append(
                RecordedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=self.names_by_urn.get(request.parent),
                    custom=bool(request.custom),
                    protect=bool(request.protect),
                    inputs=inputs,
                )
            )
        return response


def plan_config(loaded: LoadedStack) -> tuple[dict[str, str], list[str]]:
    """Config the mocked engine serves: real plain values, placeholders for every secret."""
    import json

    values: dict[str, str] = {}
    for key, value in loaded.other_config.items():
        values[key] = value if isinstance(value, str) else json.dumps(value)
    secret_keys = []
    for key in sorted(referenced_secrets(loaded.config) | set(loaded.secret_keys)):
        values[f"airgate:{key}"] = f"plan-placeholder-{key}"
        secret_keys.append(f"airgate:{key}")
    return values, secret_keys


def run_program(loaded: LoadedStack, program: Callable[[LoadedStack], Any]) -> Recording:
    recording = Recording()
    monitor = RecordingMonitor(AirgateMocks(), recording)
    settings.ROOT.set(None)  # each plan gets a fresh root stack
    pulumi.runtime.set_mocks(
        AirgateMocks(), project="airgate", stack=loaded.name, preview=True, monitor=monitor
    )
    values, secret_keys = plan_config(loaded)
    pulumi.runtime.set_all_config(values, secret_keys)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> None:
        program(loaded)

    body()
    root = settings.get_root_resource()
    exported: dict[str, Any] = dict(getattr(root, "outputs", None) or {})
    for key, value in exported.items():
        recording.outputs[key] = _resolve(value)
    return recording


def _resolve(value: Any) -> Any:
    """Resolves an exported value, keeping Pulumi's secret marker where the output is secret."""
    output = pulumi.Output.from_input(value)
    plain = _sync_await(output.future(with_unknowns=True))
    secret = _sync_await(output.is_secret())
    return {SECRET_SIG: SECRET_VALUE, "value": plain} if secret else plain


def run_plan(loaded: LoadedStack) -> Recording:
    from infra.program import define

    return run_program(loaded, define)
