"""What a real kube-apiserver (v1.36, built from k8s.io/kubernetes) accepts: every object the chart
renders for each stack and every object airgate creates itself, created with strict field
validation (an unknown field is refused, not dropped) through the server's admission chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config.loader import load_stack
from tests.chart.cluster import ApiError, Cluster
from tests.chart.conftest import K8S_STACKS, kubernetes_plan, release_values
from tests.chart.helm import HelmResult, helm, render, values_file

SERVER_VERSION = "v1.36.3"


def test_the_server_is_the_one_built_here(cluster: Cluster) -> None:
    version = cluster.request("GET", "/version")
    assert version["gitVersion"] == SERVER_VERSION
    assert cluster.request("GET", "/api/v1/namespaces/default")["metadata"]["name"] == "default"


def test_the_server_refuses_a_call_without_the_token(cluster: Cluster) -> None:
    stranger = Cluster(cluster.url, cluster.ca, "not-the-token", cluster.kubeconfig, cluster.folder)
    with pytest.raises(ApiError) as refused:
        stranger.request("GET", "/api/v1/namespaces")
    assert refused.value.code == 401


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_every_object_of_a_stack_is_accepted(
    cluster: Cluster, chart: Path, stack_name: str, tmp_path: Path
) -> None:
    plan = kubernetes_plan(stack_name, load_stack(stack_name).config)
    # Each stack in a namespace of its own, renamed from the plan's, so the three do not collide.
    namespace = f"accept-{stack_name}"
    direct = [*plan.manifests, *plan.postgres, plan.bootstrap_job]
    rendered = render(chart, values_file(release_values(plan), tmp_path), namespace, "1.36.3", hooks=False)
    [ns] = [m for m in direct if m["kind"] == "Namespace"]
    cluster.create({**ns, "metadata": {**ns["metadata"], "name": namespace}}, None)
    refused: list[str] = []
    accepted = 0
    for obj in [*[m for m in direct if m["kind"] != "Namespace"], *rendered]:
        metadata = {**obj["metadata"], "namespace": namespace}
        try:
            cluster.create({**obj, "metadata": metadata}, namespace)
            accepted += 1
        except ApiError as error:
            refused.append(f"{obj['kind']}/{obj['metadata']['name']}: {error}")
    assert refused == []
    assert accepted == len(direct) - 1 + len(rendered)


def test_strict_field_validation_refuses_a_misspelt_field(cluster: Cluster) -> None:
    """The acceptance above can fail: the server refuses what a typo would silently drop."""
    plan = kubernetes_plan("dev", load_stack("dev").config)
    [deployment] = [m for m in plan.manifests if m["kind"] == "Deployment"]
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "typo"}}, None)
    broken = {**deployment, "metadata": {**deployment["metadata"], "namespace": "typo"}}
    broken["spec"] = {**deployment["spec"], "replica": 2}
    with pytest.raises(ApiError) as refused:
        cluster.create(broken, "typo")
    assert refused.value.code == 400 and 'unknown field "spec.replica"' in str(refused.value)


def test_a_helm_release_fails_on_an_image_bump(cluster: Cluster, chart: Path, tmp_path: Path) -> None:
    """Why the program deploys the chart with helm.v4.Chart (README, "Which Helm resource"): under a
    Helm release (what helm.v3.Release runs), bumping the image changes the migration Job's pod
    template, which Kubernetes refuses to change, so `helm upgrade` fails until the Job is gone (the
    TTL controller deletes it 300 s after it finishes). helm.v4.Chart plans a replacement instead."""
    plan = kubernetes_plan("dev", load_stack("dev").config)
    namespace = "helm-release"
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, None)
    values = release_values(plan)

    def release(verb: str) -> HelmResult:
        values_path = str(values_file(values, tmp_path))
        target = ("-n", namespace, "--kubeconfig", str(cluster.kubeconfig))
        return helm(verb, "airflow", str(chart), "-f", values_path, *target)

    first = release("install")
    assert first.code == 0, first.output
    values["images"]["airflow"]["tag"] = "3.3.2-airgate.2"
    bumped = release("upgrade")
    assert bumped.code != 0
    assert 'Job.batch "airflow-run-airflow-migrations" is invalid' in bumped.output
    assert "field is immutable" in bumped.output
