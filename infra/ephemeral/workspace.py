"""The narrow slice of the Pulumi Automation API that ephemeral stacks use, and where account
usage comes from.

`StackWorkspace` names exactly the calls `infra.ephemeral.service` makes; `AutomationWorkspace`
implements them over `pulumi.automation.LocalWorkspace` (the project's own Pulumi.yaml, local
program) with the CLI `./dev setup` links into `.tools/bin`, else the one on PATH. The engine tier
(`tests/engine/test_test_stacks.py`) runs it against the real CLI; the review tier keeps a
recording stand-in for the decisions only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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
    (PULUMI_BACKEND_URL / PULUMI_ACCESS_TOKEN; PULUMI_CONFIG_PASSPHRASE for a self-managed backend)
    and, for `up`/`destroy`, Cloudflare credentials (CLOUDFLARE_API_TOKEN, as the provider reads it)."""

    def __init__(self, project_dir: Path, on_output: Callable[[str], None] = print) -> None:
        from pulumi import automation as auto

        self._auto = auto
        self._on_output = on_output
        tools = pulumi_tools(project_dir)
        # The CLI starts the language host and Pulumi.yaml's toolchain (uv) by name: they must be
        # found beside the CLI this workspace chose, not some other one on PATH.
        path = os.pathsep.join([*(str(folder) for folder in tools.search_path), os.environ.get("PATH", "")])
        self.workspace = auto.LocalWorkspace(
            work_dir=str(project_dir),
            pulumi_command=auto.PulumiCommand(root=str(tools.root) if tools.root else None),
            env_vars={"PATH": path},
        )

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
        command = self.workspace.pulumi_command.command
        result = subprocess.run(  # noqa: S603 - the pulumi CLI with arguments we build
            [command, *export_command(stack)[1:]],
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


class PulumiTools:
    """Where the CLI is: `root` (a folder with `bin/pulumi`) or None for PATH, and the folders the
    CLI's own children (language host, uv) are looked up in first."""

    def __init__(self, root: Path | None, search_path: list[Path]) -> None:
        self.root = root
        self.search_path = search_path


def pulumi_tools(project_dir: Path) -> PulumiTools:
    """The project's `.tools/bin/pulumi` (what `./dev setup` links) when there is one, else `pulumi`
    on PATH; a clear error when there is neither."""
    tools = project_dir / ".tools"
    if (tools / "bin" / "pulumi").exists():
        return PulumiTools(tools, [tools / "bin", tools / "bootstrap" / "bin"])
    if shutil.which("pulumi") is None:
        raise FileNotFoundError(
            f"no Pulumi CLI: neither {tools / 'bin' / 'pulumi'} (run ./dev setup) nor `pulumi` on PATH"
        )
    return PulumiTools(None, [])


class CloudflareUsage:
    """Counts from the Cloudflare API (what really is in the account, whoever made it), through the
    official client: CLOUDFLARE_BASE_URL moves it off api.cloudflare.com as it moves the provider."""

    LISTS: Mapping[str, Callable[[Any], Any]] = {
        "service_tokens": lambda client: client.zero_trust.access.service_tokens,
        "access_apps": lambda client: client.zero_trust.access.applications,
        "identity_providers": lambda client: client.zero_trust.identity_providers,
    }

    def __init__(self, account_id: str, token: str, client: Any = None) -> None:
        from cloudflare import Cloudflare

        self.account_id = account_id
        self.client = client or Cloudflare(api_token=token, max_retries=0, timeout=30)

    def in_use(self) -> dict[str, int]:
        counts = {}
        for kind, resource in self.LISTS.items():
            page = resource(self.client).list(account_id=self.account_id, per_page=50)
            # The API's `result_info.total_count` (not a declared field of the client's page model);
            # without it, every page is read.
            total = getattr(page.result_info, "total_count", None)
            counts[kind] = int(total) if total is not None else sum(1 for _ in page)
        return counts


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
