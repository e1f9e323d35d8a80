"""Every stack's values against the released Airflow chart 1.22.0, with the real `helm`: the
release's own schema (`helm lint --strict`), rendering, its deprecation notes, Kubernetes' strict
schemas for what it renders, and no account or default password in it."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from infra.airflow.chart import CHART_ENV, RELEASE_SHA256, ChartNotFound, locate_chart
from infra.config.loader import load_stack
from tests.airflow.test_day2 import PROD_DAY2_SETTINGS
from tests.chart.accounts import account_findings
from tests.chart.conftest import CHART_VERSION, K8S_STACKS, kubernetes_plan, release_values
from tests.chart.helm import HELM, lint, notes, render, values_file

K8S_VERSIONS = ["1.33.0", kubernetes_validate.latest_version()]
EXECUTORS = ["KubernetesExecutor", "CeleryExecutor", "LocalExecutor", "CeleryExecutor,KubernetesExecutor"]


def stack_values(stack_name: str, **airflow_changes: Any) -> tuple[dict[str, Any], str]:
    config = load_stack(stack_name).config
    if airflow_changes:
        assert config.airflow is not None
        config = config.model_copy(update={"airflow": config.airflow.model_copy(update=airflow_changes)})
    plan = kubernetes_plan(stack_name, config)
    return release_values(plan), plan.namespace


def release_schema(chart: Path) -> dict[str, Any]:
    with tarfile.open(chart) as archive:
        member = archive.extractfile("airflow/values.schema.json")
        assert member is not None
        schema: dict[str, Any] = json.load(member)
    return schema


# --- the archive ---------------------------------------------------------------------------------


def test_the_archive_is_the_pinned_release(chart: Path) -> None:
    assert hashlib.sha256(chart.read_bytes()).hexdigest() == RELEASE_SHA256[CHART_VERSION]
    with tarfile.open(chart) as archive:
        member = archive.extractfile("airflow/Chart.yaml")
        assert member is not None
        assert f"version: {CHART_VERSION}" in member.read().decode()


def test_an_archive_that_is_not_the_release_is_refused(
    chart: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = tmp_path / chart.name
    shutil.copy(chart, tampered)
    with tampered.open("ab") as handle:
        handle.write(b"\0")
    monkeypatch.setenv(CHART_ENV, str(tampered))
    with pytest.raises(ChartNotFound, match=f"{CHART_ENV}: .* is not the Airflow chart 1.22.0 release"):
        locate_chart(tmp_path, CHART_VERSION, helm=str(HELM))
    monkeypatch.setenv(CHART_ENV, str(chart))  # the variable wins over every other way
    assert locate_chart(tmp_path, CHART_VERSION, helm=str(HELM)) == chart.resolve()


def test_no_way_to_the_chart_names_all_three(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CHART_ENV, raising=False)
    with socket.socket() as unused:  # a repository address nothing answers on
        unused.bind(("127.0.0.1", 0))
        repository = f"http://127.0.0.1:{unused.getsockname()[1]}"
    root = tmp_path / "clone"
    root.mkdir()
    with pytest.raises(ChartNotFound) as refused:
        locate_chart(root, CHART_VERSION, helm=str(HELM), cache=tmp_path / "cache", repository=repository)
    message = str(refused.value)
    assert f"1. {CHART_ENV}: not set" in message
    assert f"2. {tmp_path / 'shared' / 'charts' / 'airflow-1.22.0.tgz'}: no such file" in message
    assert f"3. helm pull airflow --repo {repository} --version 1.22.0:" in message
    assert not (tmp_path / "cache" / "airflow-1.22.0.tgz").exists()


# --- the values against the release ----------------------------------------------------------------


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_helm_lint_strict_passes(chart: Path, stack_name: str, tmp_path: Path) -> None:
    values, namespace = stack_values(stack_name)
    result = lint(chart, values_file(values, tmp_path), namespace)
    assert result.code == 0, result.output
    assert "1 chart(s) linted, 0 chart(s) failed" in result.output
    assert "[ERROR]" not in result.output and "[WARNING]" not in result.output


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_the_install_prints_no_deprecation_note(chart: Path, stack_name: str, tmp_path: Path) -> None:
    values, namespace = stack_values(stack_name)
    result = notes(chart, values_file(values, tmp_path), namespace)
    assert result.code == 0, result.output
    assert "NOTES:" in result.output
    assert "DEPRECATION" not in result.output, result.output[result.output.index("NOTES:") :]


def test_lint_refuses_what_the_release_refuses(chart: Path, tmp_path: Path) -> None:
    """The checks above can fail: the key every stack set before (the release has no
    `apiServer.defaultUser`), and a misspelt key."""
    values, namespace = stack_values("prod")
    values["apiServer"]["defaultUser"] = {"enabled": False}
    result = lint(chart, values_file(values, tmp_path), namespace)
    assert result.code != 0 and "additional properties 'defaultUser' not allowed" in result.output
    values, _ = stack_values("prod")
    values["migrateDatabaseJob"]["applyCustomEnvs"] = False
    assert lint(chart, values_file(values, tmp_path), namespace).code != 0


def test_deprecated_keys_are_noticed(chart: Path, tmp_path: Path) -> None:
    values, namespace = stack_values("dev")
    values["workers"]["env"] = values["workers"]["kubernetes"].pop("env")
    result = notes(chart, values_file(values, tmp_path), namespace)
    assert "`workers.env` has been renamed" in result.output


@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_executor_and_the_day2_settings_pass_the_release_schema(
    chart: Path, executor: str, tmp_path: Path
) -> None:
    values, namespace = stack_values("prod", executor=executor, **PROD_DAY2_SETTINGS)
    jsonschema.Draft7Validator(release_schema(chart)).validate(values)
    result = lint(chart, values_file(values, tmp_path), namespace)
    assert result.code == 0, result.output
    if executor == EXECUTORS[-1]:  # both worker sections
        assert "DEPRECATION" not in notes(chart, values_file(values, tmp_path), namespace).output


# --- what it renders ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_rendered_objects_pass_kubernetes_strict_schemas(
    chart: Path, stack_name: str, version: str, tmp_path: Path
) -> None:
    values, namespace = stack_values(stack_name)
    objects = render(chart, values_file(values, tmp_path), namespace, version)
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "StatefulSet", "Job", "Service", "ConfigMap"} <= kinds
    assert "Ingress" not in kinds
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("stack_name", K8S_STACKS)
def test_no_rendered_object_creates_an_account_or_carries_a_default_password(
    chart: Path, stack_name: str, tmp_path: Path
) -> None:
    values, namespace = stack_values(stack_name)
    objects = render(chart, values_file(values, tmp_path), namespace, K8S_VERSIONS[-1])
    assert account_findings(objects) == []
    labels = [obj["metadata"].get("labels", {}).get("component") for obj in objects]
    assert "create-user-job" not in labels


def test_the_account_check_finds_the_charts_default_admin(chart: Path, tmp_path: Path) -> None:
    """With the chart's user Job on (its default), the check above fails: it is not blind."""
    values, namespace = stack_values("prod")
    values["createUserJob"] = {"enabled": True}
    objects = render(chart, values_file(values, tmp_path), namespace, K8S_VERSIONS[-1])
    findings = account_findings(objects)
    assert any("creates an account" in f for f in findings), findings
    assert any("literal password" in f for f in findings), findings


@pytest.mark.parametrize("executor", ["KubernetesExecutor", "CeleryExecutor,KubernetesExecutor"])
def test_what_helm_v4_chart_deploys_renders_the_same_twice(
    chart: Path, executor: str, tmp_path: Path
) -> None:
    """helm.v4.Chart renders at every preview: a value the chart randomises would be a change on every
    deploy. Hooks are left out, as the provider leaves them out; every Secret the release reads
    (Celery's Redis password and broker URL included) is one airgate manages."""
    values, namespace = stack_values("staging", executor=executor)
    path = values_file(values, tmp_path)
    first = render(chart, path, namespace, K8S_VERSIONS[-1], hooks=False)
    assert first == render(chart, path, namespace, K8S_VERSIONS[-1], hooks=False)
    assert [obj["metadata"]["name"] for obj in first if obj["kind"] == "Secret"] == []
    if "Celery" in executor:
        assert values["data"]["brokerUrlSecretName"] == "airflow-airgate-broker-url"
        assert values["redis"] == {"passwordSecretName": "airflow-airgate-redis-password"}
