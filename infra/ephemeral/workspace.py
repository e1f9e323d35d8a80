"""The narrow slice of the Pulumi Automation API that ephemeral stacks use, and where account
usage comes from.

`StackWorkspace` names exactly the calls `infra.ephemeral.service` makes; `AutomationWorkspace`
implements them over `pulumi.automation.LocalWorkspace` (the project's own Pulumi.yaml, local
program). Tests use a recording stand-in with the same methods, since no Pulumi CLI exists here.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol


class StackWorkspace(Protocol):
    def list_stacks(self) -> list[str]: ...
    def create_or_select(self, stack: str) -> None: ...
    def list_tags(self, stack: str) -> dict[str, str]: ...
    def set_tag(self, stack: str, key: str, value: str) -> None: ...
    def set_secret(self, stack: str, key: str, value: str) -> None: ...
    def state_resources(self, stack: str) -> list[dict[str, Any]]:
        """The stack's deployment resources (`type`, `urn`, `protect`), [] before its first update."""
        ...

    def up(self, stack: str) -> dict[str, Any]: ...
    def destroy(self, stack: str) -> None: ...
    def remove_stack(self, stack: str) -> None: ...


class AccountUsage(Protocol):
    def in_use(self) -> dict[str, int]:
        """Current counts per cap kind (see `CAPS`)."""
        ...


class AutomationWorkspace:
    """`StackWorkspace` over the Automation API. Needs the Pulumi CLI, a backend login
    (PULUMI_BACKEND_URL / PULUMI_ACCESS_TOKEN) and, for `up`/`destroy`, Cloudflare credentials."""

    def __init__(self, project_dir: Path, on_output: Callable[[str], None] = print) -> None:
        from pulumi import automation as auto

        self._auto = auto
        self._on_output = on_output
        self.workspace = auto.LocalWorkspace(work_dir=str(project_dir))

    def _stack(self, stack: str) -> Any:
        return self._auto.Stack.select(stack, self.workspace)

    def list_stacks(self) -> list[str]:
        return sorted(summary.name.rsplit("/", 1)[-1] for summary in self.workspace.list_stacks())

    def create_or_select(self, stack: str) -> None:
        self._auto.Stack.create_or_select(stack, self.workspace)

    def list_tags(self, stack: str) -> dict[str, str]:
        return dict(self.workspace.list_tags(stack))

    def set_tag(self, stack: str, key: str, value: str) -> None:
        self.workspace.set_tag(stack, key, value)

    def set_secret(self, stack: str, key: str, value: str) -> None:
        self.workspace.set_config(stack, key, self._auto.ConfigValue(value=value, secret=True))

    def state_resources(self, stack: str) -> list[dict[str, Any]]:
        # Not `LocalWorkspace.export_stack`: it always passes --show-secrets. `pulumi stack export`
        # without it leaves secrets encrypted (https://www.pulumi.com/docs/iac/cli/commands/pulumi_stack_export/),
        # and the guard needs only each resource's type, URN and `protect`.
        result = subprocess.run(  # noqa: S603 - the pulumi CLI with arguments we build
            export_command(stack),
            cwd=self.workspace.work_dir,
            env={**os.environ, **(self.workspace.env_vars or {})},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pulumi stack export --stack {stack}: {result.stderr.strip()[-500:]}")
        deployment = json.loads(result.stdout).get("deployment") or {}
        return [
            {key: resource.get(key) for key in ("type", "urn", "protect")}
            for resource in deployment.get("resources") or []
        ]

    def up(self, stack: str) -> dict[str, Any]:
        result = self._stack(stack).up(on_output=self._on_output, color="never")
        return dict(result.summary.resource_changes or {})

    def destroy(self, stack: str) -> None:
        # Never `exclude_protected`: the guard refuses stacks holding protected resources instead.
        self._stack(stack).destroy(on_output=self._on_output, color="never")

    def remove_stack(self, stack: str) -> None:
        self.workspace.remove_stack(stack)


def export_command(stack: str) -> list[str]:
    """The state export the guard runs: never with --show-secrets."""
    return ["pulumi", "stack", "export", "--stack", stack]


class CloudflareUsage:
    """Counts from the Cloudflare API (what really is in the account, whoever made it)."""

    ENDPOINTS: Mapping[str, str] = {
        "service_tokens": "access/service_tokens",
        "access_apps": "access/apps",
        "identity_providers": "access/identity_providers",
    }

    def __init__(
        self,
        account_id: str,
        token: str,
        fetch: Callable[[str, Mapping[str, str]], dict[str, Any]] | None = None,
    ) -> None:
        self.account_id = account_id
        self.token = token
        self.fetch = fetch or _fetch_json

    def in_use(self) -> dict[str, int]:
        counts = {}
        for kind, path in self.ENDPOINTS.items():
            url = f"https://api.cloudflare.com/client/v4/accounts/{self.account_id}/{path}?per_page=1"
            body = self.fetch(url, {"Authorization": f"Bearer {self.token}"})
            info = body.get("result_info") or {}
            counts[kind] = int(info.get("total_count", len(body.get("result") or [])))
        return counts


def _fetch_json(url: str, headers: Mapping[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 - fixed https API host
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return dict(json.loads(response.read().decode()))


class StateUsage:
    """Counts from the Pulumi state of every stack in the project: all a workspace can see without
    Cloudflare credentials. It misses what other projects or people made in the account."""

    def __init__(self, workspace: StackWorkspace) -> None:
        self.workspace = workspace

    def in_use(self) -> dict[str, int]:
        from infra.ephemeral.model import count_caps

        return count_caps(
            str(resource.get("type", ""))
            for stack in self.workspace.list_stacks()
            for resource in self.workspace.state_resources(stack)
        )


def usage_source(workspace: StackWorkspace, account_id: str) -> AccountUsage:
    token = os.environ.get("CLOUDFLARE_API_TOKEN")
    return CloudflareUsage(account_id, token) if token else StateUsage(workspace)
