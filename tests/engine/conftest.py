"""Fixtures for the engine tier: the Cloudflare API emulator, provider plugins, and a copy of the
project that the real `pulumi` CLI deploys into them.

Nothing here imitates the engine: previews, updates, refreshes and destroys are `pulumi` itself,
and what a test expects is checked against the engine's own events and the emulator's state.
"""

from __future__ import annotations

import importlib.metadata
import secrets
import shutil
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.config.loader import PROJECT_ROOT, load_stack, referenced_secrets
from local_services.cloudflare_api.testing import RunningEmulator, running_emulator
from tests.engine.project import EngineProject

TOOLS = PROJECT_ROOT / ".tools" / "bin"


def _launcher(folder: Path, provider: str) -> Path:
    path = folder / f"pulumi-resource-{provider}"
    path.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{PROJECT_ROOT}' exec '{sys.executable}' -m local_services.providers {provider} \"$@\"\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(scope="session")
def plugin_launchers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The providers the program asks for, at the versions its SDKs ask for them."""
    if shutil.which("pulumi", path=str(TOOLS)) is None:
        raise AssertionError(
            "the Pulumi CLI is not in .tools/bin: run this tier through `./dev test engine`, which builds it"
        )
    folder = tmp_path_factory.mktemp("plugins")
    launchers = {
        f"cloudflare@{importlib.metadata.version('pulumi_cloudflare')}": _launcher(folder, "cloudflare"),
        f"random@{importlib.metadata.version('pulumi_random')}": _launcher(folder, "random"),
    }
    kubernetes = TOOLS / "pulumi-resource-kubernetes"
    if kubernetes.exists():
        launchers[f"kubernetes@{importlib.metadata.version('pulumi_kubernetes')}"] = kubernetes
    return launchers


@dataclass
class Deployment:
    """One stack of the project, deployed by the real engine into the emulator."""

    project: EngineProject
    api: RunningEmulator
    token: str

    def init(self, stack: str) -> None:
        loaded = load_stack(stack, self.project.stacks_dir)
        values = {key: f"secret-{stack}-{key}" for key in sorted(referenced_secrets(loaded.config))}
        self.project.init_stack(
            stack,
            {"cloudflare:baseUrl": self.api.base_url},
            {"cloudflare:apiToken": self.token, **{f"airgate:{k}": v for k, v in values.items()}},
        )

    def account(self, stack: str) -> dict[str, object]:
        loaded = load_stack(stack, self.project.stacks_dir)
        found = self.api.state()["accounts"][loaded.config.account_id]
        assert isinstance(found, dict)
        return found


@pytest.fixture
def deployment(
    tmp_path: Path, plugin_launchers: dict[str, Path], request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """An emulator seeded with the stack's account and zone (as an account has them before any
    deploy), and the project copy the CLI runs in. The stack is the test's `stack` mark."""
    marker = request.node.get_closest_marker("stack")
    stack = marker.args[0] if marker else "dev"
    loaded = load_stack(stack)
    token = secrets.token_urlsafe(24)
    project = EngineProject.lay_out(tmp_path, plugin_launchers)
    with running_emulator(
        tmp_path / "state" / "cloudflare.json",
        token,
        loaded.config.account_id,
        {loaded.config.zone_id: loaded.config.zone},
    ) as api:
        yield Deployment(project, api, token)
