"""Fixtures of the chart tier: the released Airflow chart archive, found as a user's machine would
(infra/airflow/chart.py), and each stack's chart values exactly as the program computes them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.airflow.chart import ChartNotFound, locate_chart
from infra.airflow.kubernetes_plan import rotation_annotations
from infra.airflow.plan import KubernetesPlan, plan_airflow
from infra.config.model import StackConfig
from tests.chart.cluster import Cluster, control_plane
from tests.chart.helm import HELM, ROOT

K8S_STACKS = ["dev", "staging", "prod"]
CHART_VERSION = "1.22.0"


@pytest.fixture(scope="session")
def chart() -> Path:
    """The verified archive. No way finding it fails the tier with the three ways named: never a skip."""
    try:
        return locate_chart(ROOT, CHART_VERSION, helm=str(HELM))
    except ChartNotFound as error:
        pytest.fail(str(error), pytrace=False)


def kubernetes_plan(stack_name: str, config: StackConfig) -> KubernetesPlan:
    plan = plan_airflow(stack_name, config)
    assert plan is not None and plan.kubernetes is not None
    return plan.kubernetes


def release_values(plan: KubernetesPlan) -> dict[str, Any]:
    """The values the component hands the chart: the plan's, with the pod digests it adds (here of
    fixed text; in a deploy, of the secrets)."""
    digest = hashlib.sha256(b"connections").hexdigest()
    return rotation_annotations(plan.helm_values, digest, hashlib.sha256(b"sign-in").hexdigest())


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One etcd and kube-apiserver for the whole tier, stopped at its end whatever happened."""
    with control_plane(tmp_path_factory.mktemp("control-plane")) as running:
        yield running
