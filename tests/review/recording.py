"""A recording stand-in for the Automation API workspace: same methods as `StackWorkspace`, state
in memory, every call logged, so tests can assert what would have been done to a real backend.

Given the stacks folder, `set_secret` also rewrites the stack file as `pulumi config set` does: it
re-serialises every value, and a top-level null comes back as "" (pulumi/pulumi#19483; the engine
tier checks it against the real CLI), so such a stack file no longer loads after the first secret
is set, as on a real backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MUTATING = ("create_or_select", "set_tag", "set_secret", "up", "destroy", "remove_stack")


@dataclass
class FakeStack:
    tags: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)


class RecordingWorkspace:
    def __init__(
        self,
        stacks: dict[str, FakeStack] | None = None,
        fail_destroy: set[str] | None = None,
        fail_tags: set[str] | None = None,
        stacks_dir: Path | None = None,
    ) -> None:
        self.stacks = stacks or {}
        self.calls: list[tuple[str, ...]] = []
        self.fail_destroy = fail_destroy or set()
        self.fail_tags = fail_tags or set()
        self.stacks_dir = stacks_dir

    def mutations(self) -> list[tuple[str, ...]]:
        return [call for call in self.calls if call[0] in MUTATING]

    def list_stacks(self) -> list[str]:
        self.calls.append(("list_stacks",))
        return sorted(self.stacks)

    def create_or_select(self, stack: str) -> None:
        self.calls.append(("create_or_select", stack))
        self.stacks.setdefault(stack, FakeStack())

    def list_tags(self, stack: str) -> dict[str, str]:
        self.calls.append(("list_tags", stack))
        if stack in self.fail_tags:
            raise RuntimeError(f"error: could not read stack {stack}: 403 Forbidden")
        return dict(self.stacks[stack].tags)

    def set_tag(self, stack: str, key: str, value: str) -> None:
        self.calls.append(("set_tag", stack, key, value))
        self.stacks[stack].tags[key] = value

    def set_secret(self, stack: str, key: str, value: str) -> None:
        self.calls.append(("set_secret", stack, key))  # never log the value
        self.stacks[stack].secrets[key] = value
        if self.stacks_dir is not None:
            path = self.stacks_dir / f"Pulumi.{stack}.yaml"
            document = yaml.safe_load(path.read_text()) if path.exists() else {}
            config = as_pulumi_stores(dict(document.get("config") or {}))
            config[key] = {"secure": f"v1:{len(value)}:ciphertext"}
            path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))

    def state_resources(self, stack: str) -> list[dict[str, Any]]:
        self.calls.append(("state_resources", stack))
        return list(self.stacks[stack].resources)

    def up(self, stack: str) -> dict[str, Any]:
        self.calls.append(("up", stack))
        return {"create": 20}

    def destroy(self, stack: str) -> None:
        self.calls.append(("destroy", stack))
        if stack in self.fail_destroy:
            raise RuntimeError("provider error: rate limited")
        self.stacks[stack].resources = []

    def remove_stack(self, stack: str) -> None:
        self.calls.append(("remove_stack", stack))
        del self.stacks[stack]


class FixedUsage:
    def __init__(self, **counts: int) -> None:
        self.counts = {"service_tokens": 0, "access_apps": 0, "identity_providers": 0, **counts}

    def in_use(self) -> dict[str, int]:
        return dict(self.counts)


def as_pulumi_stores(config: dict[str, Any]) -> dict[str, Any]:
    """A stack file's config after `pulumi config set` rewrote it: a top-level null is stored as ""
    and nested ones stay null, as the real CLI does it
    (`tests/engine/test_test_stacks.py::test_pulumi_config_set_stores_a_top_level_null_as_empty`)."""
    return {key: "" if value is None else value for key, value in config.items()}
