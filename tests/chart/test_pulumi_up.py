"""`pulumi up` of the Airflow part of dev and prod with the real CLI and the real pulumi-kubernetes
provider into the tier's kube-apiserver: every object accepted (the chart's included), no change on
a second preview, a day-2 change with no immutable-field error and no replacement but the planned
ones, and `pulumi destroy` leaving the namespace empty (prod: only what it retains on purpose)."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.airflow.chart import CHART_ENV
from infra.config.loader import PROJECT_ROOT, load_stack, referenced_secrets
from tests.chart.cluster import Cluster, control_plane
from tests.chart.conftest import kubernetes_plan
from tests.engine.plugins import provider_plugins
from tests.engine.project import EngineProject, Run

TOOLS = PROJECT_ROOT / ".tools" / "bin"
PROGRAM = Path(__file__).resolve().parent / "program"


def lay_out(base: Path, chart: Path, cluster: Cluster, context: str) -> EngineProject:
    """A copy of the program and `stacks/` the CLI runs in (the program imports `infra` from the
    project's .venv), with its own PULUMI_HOME and file backend; the kubernetes plugin is the one
    toolchain/pulumi-kubernetes built."""
    for tool in ("pulumi", "pulumi-language-python", "pulumi-resource-kubernetes"):
        if not (TOOLS / tool).exists():
            raise AssertionError(f"{TOOLS / tool} is missing: run ./dev test chart, which builds it")
    root = base / "project"
    (root / "program").mkdir(parents=True)
    shutil.copy2(PROGRAM / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy2(PROGRAM / "__main__.py", root / "program" / "__main__.py")
    shutil.copy2(
        PROJECT_ROOT / "tests" / "engine" / "no_controllers.py", root / "program" / "no_controllers.py"
    )
    shutil.copytree(PROJECT_ROOT / "stacks", root / "stacks")
    (root / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    (root / "local_services").symlink_to(PROJECT_ROOT / "local_services")
    launchers = provider_plugins(base / "plugins")
    kubeconfig = base / "kubeconfig"
    kubeconfig.write_text(cluster.kubeconfig_text(context))
    kubeconfig.chmod(0o600)
    project = EngineProject(root, base / "pulumi-home", base / "backend", launchers)
    project.extra_env = {CHART_ENV: str(chart), "KUBECONFIG": str(kubeconfig)}
    project.backend.mkdir()
    for spec, launcher in launchers.items():
        name, version = spec.split("@")
        project.pulumi("plugin", "install", "resource", name, version, "--file", str(launcher))
    return project


def init(project: EngineProject, stack: str, cluster: Cluster, context: str) -> None:
    loaded = load_stack(stack, project.stacks_dir)
    values = {key: secrets.token_urlsafe(24) for key in sorted(referenced_secrets(loaded.config))}
    airflow = loaded.config.airflow
    assert airflow is not None
    if airflow.kubernetes.kubeconfig is not None:
        values[airflow.kubernetes.kubeconfig.secret] = cluster.kubeconfig_text(context)
    project.init_stack(
        stack,
        {},
        {
            **{f"airgate:{key}": value for key, value in values.items()},
            "chart-tier:connectionSeed": secrets.token_urlsafe(24),
            "chart-tier:tunnelToken": secrets.token_urlsafe(32),
            "chart-tier:triggerPassword": secrets.token_urlsafe(24),
        },
    )


def day2(stack: str) -> Any:
    """A connection added (a second task role), the image bumped, resources changed."""

    def change(config: dict[str, Any]) -> None:
        airflow = config.setdefault("airgate:airflow", {})
        roles = dict(airflow.get("task_roles") or {"airflow-worker": {}})
        roles["ai-agent"] = dict(roles["airflow-worker"])
        airflow["task_roles"] = roles
        airflow["image"] = {
            "repository": "ghcr.io/acme-data/airflow-airgate",
            "tag": "3.3.2-airgate.2",
            "airflow_version": "3.3.2",
        }
        airflow["resources"] = {"scheduler": {"cpu": "500m", "memory": "1Gi", "memory_limit": "2Gi"}}

    return change


def succeeded(run: Run) -> Run:
    assert run.ok, run.describe()
    assert run.failed == []
    return run


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A control plane of its own per stack, as each stack has its own cluster: a namespace that
    one test deleted stays `Terminating` (no namespace controller), and dev and prod share a name."""
    with control_plane(tmp_path / "control-plane") as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, chart: Path, cluster: Cluster, stack: str) -> EngineProject:
    context = kubernetes_plan(stack, load_stack(stack).config).kube_context or "chart-tier"
    project = lay_out(tmp_path, chart, cluster, context)
    init(project, stack, cluster, context)
    return project


def test_airflow_up_day2_and_destroy(project: EngineProject, cluster: Cluster, stack: str) -> None:
    plan = kubernetes_plan(stack, load_stack(stack, project.stacks_dir).config)
    namespace = plan.namespace

    created = succeeded(project.up(stack))
    kinds = {kind for op, kind, _ in created.changes if op == "create"}
    # The chart's objects are Pulumi resources of their own (helm.v4.Chart), all accepted.
    assert {"Namespace", "Secret", "Job", "Deployment", "StatefulSet", "ConfigMap", "Service"} <= kinds
    from_chart = {name for _, _, name in created.changes if name.startswith("airflow-chart:")}
    assert "airflow-chart:airflow/airflow-run-airflow-migrations" in from_chart
    live = cluster.namespaced_objects(namespace)
    assert "Job/airflow-run-airflow-migrations" in live and "Deployment/airflow-scheduler" in live
    assert "Job/airflow-airgate-bootstrap" in live and "Deployment/cloudflared" in live
    assert not [name for name in live if "create-user" in name]

    again = succeeded(project.preview(stack, "--expect-no-changes"))
    assert again.changes == set()

    project.edit(f"Pulumi.{stack}.yaml", day2(stack))
    project.pulumi(
        "config",
        "set",
        "-s",
        stack,
        "--secret",
        "chart-tier:triggerPassword",
        "--",
        secrets.token_urlsafe(24),
    )
    updated = succeeded(project.up(stack))
    assert "immutable" not in updated.errors
    replaced = {(kind, name) for op, kind, name in updated.changes if op == "replace"}
    # The two Jobs and nothing else: the migration Job's template follows the image (immutable,
    # so replaced), the bootstrap Job carries the password's digest (replaced to re-run).
    assert replaced == {
        ("Job", "airflow-bootstrap"),
        ("Job", "airflow-chart:airflow/airflow-run-airflow-migrations"),
    }
    # Secrets and ConfigMaps change in place (the provider would otherwise replace them), and the
    # pods that read them roll by their digests.
    updates = {(kind, name) for op, kind, name in updated.changes if op == "update"}
    assert {("Secret", "airflow-connections"), ("Secret", "airflow-trigger-user")} <= updates
    assert ("ConfigMap", "airflow-chart:airflow/airflow-config") in updates
    assert ("Deployment", "airflow-chart:airflow/airflow-scheduler") in updates  # image, resources
    assert "Secret/airflow-airgate-connections" in cluster.namespaced_objects(namespace)

    if stack == "prod":  # the namespace and the fernet key are protected: a person lifts that first
        project.pulumi("state", "unprotect", "--all", "--yes", "-s", stack)
    succeeded(project.destroy(stack))
    left = cluster.namespaced_objects(namespace)
    # prod keeps the fernet key's Secret on purpose (retain_on_delete): without it the database's
    # connections and variables cannot be read.
    assert left == (["Secret/airflow-airgate-fernet-key"] if stack == "prod" else [])
