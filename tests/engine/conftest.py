"""Fixtures for the engine tier: the Cloudflare API emulator, provider plugins, and a copy of the
project that the real `pulumi` CLI deploys into them.

Nothing here imitates the engine: previews, updates, refreshes and destroys are `pulumi` itself,
and what a test expects is checked against the engine's own events and the emulator's state.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.airflow.chart import CHART_ENV, locate_chart
from infra.config.loader import PROJECT_ROOT, load_stack, referenced_secrets
from local_services.cloudflare_api.testing import RunningEmulator, running_emulator
from tests.chart.cluster import Cluster, control_plane
from tests.engine.plugins import TOOLS, provider_plugins
from tests.engine.project import EngineProject


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stack(name): the stack whose account and zone the emulator holds")
    config.addinivalue_line("markers", "kubernetes: the deployment gets a Kubernetes API server of its own")


@pytest.fixture(scope="session")
def plugin_launchers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The providers the program asks for, at the versions its SDKs ask for them."""
    if shutil.which("pulumi", path=str(TOOLS)) is None:
        raise AssertionError(
            "the Pulumi CLI is not in .tools/bin: run this tier through `./dev test engine`, which builds it"
        )
    return provider_plugins(tmp_path_factory.mktemp("plugins"))


@dataclass
class Deployment:
    """One stack of the project, deployed by the real engine into the emulator."""

    project: EngineProject
    api: RunningEmulator
    token: str
    cluster: Cluster | None
    account_id: str
    """The account the emulator was seeded with (the stack's own, as committed)."""

    def init(self, stack: str, **overrides: str) -> dict[str, str]:
        """`pulumi stack init` and the config a user sets: the provider's endpoint and token, and a
        value for every secret the stack refers to (`overrides` by key; a kubeconfig secret gets
        the test cluster's). Returns the secrets."""
        loaded = load_stack(stack, self.project.stacks_dir)
        values = {key: f"secret-{stack}-{key}" for key in sorted(referenced_secrets(loaded.config))}
        target = loaded.config.airflow.kubernetes if loaded.config.airflow is not None else None
        if self.cluster is not None and target is not None and target.kubeconfig is not None:
            values[target.kubeconfig.secret] = self.cluster.kubeconfig_text(target.context or "default")
        values.update(overrides)
        self.project.init_stack(
            stack,
            {"cloudflare:baseUrl": self.api.base_url},
            {"cloudflare:apiToken": self.token, **{f"airgate:{k}": v for k, v in values.items()}},
        )
        return values

    def account(self, stack: str) -> dict[str, Any]:
        """What the API holds in the stack's account (the one the emulator was seeded with)."""
        found = self.api.state()["accounts"][self.account_id]
        assert isinstance(found, dict)
        return found

    def tags(self, stack: str) -> dict[str, str | None]:
        """Script name → the Durable Object migration tag the API holds for it."""
        return {name: s.get("migration_tag") for name, s in self.account(stack)["scripts"].items()}


@pytest.fixture
def deployment(
    tmp_path: Path, plugin_launchers: dict[str, Path], request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """An emulator seeded with the stack's account and zone (as an account has them before any
    deploy), and the project copy the CLI runs in; with the `kubernetes` mark, a Kubernetes API
    server of its own too (etcd and kube-apiserver, no nodes). The stack is the `stack` mark."""
    marker = request.node.get_closest_marker("stack")
    stack = marker.args[0] if marker else "dev"
    loaded = load_stack(stack)
    token = secrets.token_hex(24)
    project = EngineProject.lay_out(tmp_path, plugin_launchers)
    with ExitStack() as running:
        api = running.enter_context(
            running_emulator(
                tmp_path / "state" / "cloudflare.json",
                token,
                loaded.config.account_id,
                {loaded.config.zone_id: loaded.config.zone},
            )
        )
        cluster = None
        if request.node.get_closest_marker("kubernetes"):
            cluster = running.enter_context(control_plane(tmp_path / "cluster"))
            project.without_controllers()
            # The released chart, found as the chart tier finds it (this machine cannot reach the
            # chart repository the program would otherwise pull from).
            assert loaded.config.airflow is not None and loaded.config.airflow.chart is not None
            project.extra_env[CHART_ENV] = str(
                locate_chart(PROJECT_ROOT, loaded.config.airflow.chart.version)
            )
            # A stack without a kubeconfig secret uses the ambient one, as on a developer's machine.
            target = loaded.config.airflow.kubernetes if loaded.config.airflow is not None else None
            kubeconfig = tmp_path / "kubeconfig"
            kubeconfig.write_text(cluster.kubeconfig_text((target.context if target else None) or "default"))
            project.extra_env["KUBECONFIG"] = str(kubeconfig)
        yield Deployment(project, api, token, cluster, loaded.config.account_id)
