"""Day 2 under Pulumi mocks and on the plans: what is protected and retained, what an upgrade
changes when a connection is added or a password rotates, the image list, and the day-2 settings."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.airflow.jobs_plan import INPUTS_ANNOTATION, MIGRATION_WAIT_SECONDS, bootstrap_job_name
from infra.airflow.kubernetes_plan import TRIGGER_PASSWORD_ENV
from infra.airflow.plan import AirflowPlan, plan_airflow
from infra.airflow.program import deploy_airflow
from infra.airflow.trigger_account import PROGRAM
from infra.config.airflow_model import AirflowSettings, RemoteLogs, Resources, TriggererStorage
from infra.config.loader import LoadedStack, load_stack
from infra.plan.runner import Recording
from tests.airflow.conftest import RETAINED, fake_edge, recorded, run_recorded
from tests.airflow.test_component import plain, release
from tests.airflow.test_kubernetes_plan import env_entries

# Every day-2 setting at once, on prod (the chart tier checks the same against the release's schema).
PROD_DAY2_SETTINGS: dict[str, Any] = {
    "remote_logs": RemoteLogs(base_folder="s3://acme-airflow-logs/prod", connection_id="logs_s3"),
    "triggerer": TriggererStorage(size="20Gi", storage_class="gp3"),
    "image_pull_secret": "ghcr-pull",
    "resources": {
        "scheduler": Resources(cpu="500m", memory="1Gi", memory_limit="2Gi"),
        "workers": Resources(cpu="250m", memory="512Mi"),
    },
}


def with_airflow(loaded: LoadedStack, **changes: Any) -> LoadedStack:
    assert loaded.config.airflow is not None
    settings = loaded.config.airflow.model_copy(update=changes)
    return type(loaded)(
        loaded.name,
        loaded.path,
        loaded.config.model_copy(update={"airflow": settings}),
        loaded.secret_keys,
        loaded.missing_secrets,
        loaded.other_config,
    )


def planned(loaded: LoadedStack) -> AirflowPlan:
    plan = plan_airflow(loaded.name, loaded.config)
    assert plan is not None and plan.kubernetes is not None
    return plan


# --- protection -----------------------------------------------------------------------------------


def test_prod_protects_and_retains_what_a_recreate_cannot_bring_back() -> None:
    recording = recorded("prod")
    monitor = RETAINED[id(recording)]
    [fernet_key] = [
        r for r in recording.resources if r.type.startswith("random:") and r.name == "airflow-fernet-key"
    ]
    assert fernet_key.type == "random:index/randomBytes:RandomBytes" and fernet_key.protect
    [fernet_secret_resource] = [
        r
        for r in recording.resources
        if r.type == "kubernetes:core/v1:Secret" and r.inputs["metadata"]["name"].endswith("-fernet-key")
    ]
    assert fernet_secret_resource.protect
    assert fernet_secret_resource.name in monitor.retained
    # Losing a regenerable key costs a restart, not data: not retained.
    assert "airflow-jwt-secret" not in monitor.retained


def test_dev_protects_nothing_but_its_database_volume_outlives_the_statefulset() -> None:
    recording = recorded("dev")
    assert not any(r.protect for r in recording.resources)
    [statefulset] = [r for r in recording.resources if r.type == "kubernetes:apps/v1:StatefulSet"]
    spec = plain(statefulset.inputs["spec"])
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_a_protected_bundled_database_is_protected_and_retained() -> None:
    loaded = load_stack("dev")
    protected = type(loaded)(
        loaded.name,
        loaded.path,
        loaded.config.model_copy(update={"protect": True}),
        loaded.secret_keys,
        loaded.missing_secrets,
        loaded.other_config,
    )
    recording = run_recorded(protected, lambda s: deploy_airflow(s, fake_edge(s)))
    statefulset = recording.by_name("airflow-postgres")
    assert statefulset.protect and "airflow-postgres" in RETAINED[id(recording)].retained


# --- the bundled database and the images ----------------------------------------------------------


def test_only_airflows_pods_reach_the_bundled_database() -> None:
    recording = recorded("dev")
    policy = recording.by_name("airflow-postgres-ingress")
    spec = plain(policy.inputs["spec"])
    [statefulset] = [r for r in recording.resources if r.type == "kubernetes:apps/v1:StatefulSet"]
    assert spec["podSelector"]["matchLabels"] == plain(statefulset.inputs["spec"])["selector"]["matchLabels"]
    [rule] = spec["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"tier": "airflow", "release": "airflow"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_dev_database_is_an_owned_postgres_with_a_pinned_image() -> None:
    recording = recorded("dev")
    [statefulset] = [r for r in recording.resources if r.type == "kubernetes:apps/v1:StatefulSet"]
    [container] = plain(statefulset.inputs["spec"])["template"]["spec"]["containers"]
    assert container["image"] == "postgres:17.6-bookworm"
    values = plain(release(recording).inputs["values"])
    assert values["postgresql"] == {"enabled": False}
    metadata = next(
        r
        for r in recording.resources
        if r.type == "kubernetes:core/v1:Secret"
        and r.inputs["metadata"]["name"] == values["data"]["metadataSecretName"]
    )
    url = plain(metadata.inputs["stringData"])["connection"]
    assert (
        url.startswith("postgresql://airflow:") and "-airgate-postgres.airflow.svc.cluster.local:5432" in url
    )


@pytest.mark.parametrize("stack_name", ["dev", "staging", "prod"])
def test_every_image_in_the_recording_is_in_the_image_list(stack_name: str) -> None:
    recording = recorded(stack_name)
    listed = {pin.reference for pin in planned(load_stack(stack_name)).images}
    assert all(":" in ref.rsplit("/", 1)[-1] and not ref.endswith(":latest") for ref in listed)
    used: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("image"), str):
                used.add(node["image"])
            if {"repository", "tag"} <= set(node) and isinstance(node["tag"], str):
                used.add(f"{node['repository']}:{node['tag']}")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for resource in recording.resources:
        collect(plain(resource.inputs))
    assert used == listed


def test_celery_pins_its_broker_image() -> None:
    plan = planned(with_airflow(load_stack("staging"), executor="CeleryExecutor"))
    assert plan.kubernetes is not None
    redis = plan.kubernetes.helm_values["images"]["redis"]
    assert f"{redis['repository']}:{redis['tag']}" in {pin.reference for pin in plan.images}


def test_an_unpinned_image_is_refused() -> None:
    with pytest.raises(ValueError, match="not pinned"):
        AirflowSettings.model_validate(
            {"runtime": "standalone", "task_roles": {"airflow-worker": {}}, "cloudflared_image": "x/y:latest"}
        )


# --- upgrades ---------------------------------------------------------------------------------------


def bootstrap_job(recording: Recording) -> dict[str, Any]:
    [job] = [r for r in recording.resources if r.type == "kubernetes:batch/v1:Job"]
    return plain(job.inputs)


def test_adding_a_connection_changes_no_job() -> None:
    """Two consecutive plans, the second with one more task role (so more connections): the Job specs
    stay byte-identical (an immutable Job template would fail the upgrade), and only the env of the
    components that run tasks changes."""
    loaded = load_stack("staging")
    assert loaded.config.airflow is not None
    template = loaded.config.airflow.task_roles["airflow-worker"]
    grown = with_airflow(loaded, task_roles={"airflow-worker": template, "ai-agent": template})
    before, after = planned(loaded), planned(grown)
    assert before.kubernetes is not None and after.kubernetes is not None
    assert len(after.connections) > len(before.connections)
    old, new = before.kubernetes.helm_values, after.kubernetes.helm_values
    assert (
        old["migrateDatabaseJob"]
        == new["migrateDatabaseJob"]
        == {"useHelmHooks": False, "applyCustomEnv": False}
    )
    assert (
        old["createUserJob"]
        == new["createUserJob"]
        == {"enabled": False, "serviceAccount": {"create": False}}
    )
    assert before.kubernetes.bootstrap_job == after.kubernetes.bootstrap_job
    changed = {key for key in set(old) | set(new) if old.get(key) != new.get(key)}
    assert changed == {"workers", "triggerer"}
    # And under mocks, the Job resource's inputs are the same too.
    first = run_recorded(loaded, lambda s: deploy_airflow(s, fake_edge(s)))
    second = run_recorded(grown, lambda s: deploy_airflow(s, fake_edge(s)))
    assert bootstrap_job(first) == bootstrap_job(second)


def test_a_rotated_trigger_password_replaces_the_bootstrap_job() -> None:
    loaded = load_stack("prod")
    first = run_recorded(loaded, lambda s: deploy_airflow(s, fake_edge(s)))
    rotated = run_recorded(
        with_airflow(loaded, trigger_password_version=2), lambda s: deploy_airflow(s, fake_edge(s))
    )
    password = first.by_name("airflow-trigger-api-password").inputs
    assert password["keepers"] == {"version": "1"}
    assert rotated.by_name("airflow-trigger-api-password").inputs["keepers"] == {"version": "2"}
    # Under mocks the random value is the same; the keeper is what changes it. The Job's template
    # carries the digest of the password, so a new password is a new template and a replaced Job.
    job = bootstrap_job(first)
    assert job["metadata"]["name"] == bootstrap_job_name(loaded.config.airflow)  # type: ignore[arg-type]
    digest = job["spec"]["template"]["metadata"]["annotations"][INPUTS_ANNOTATION]
    assert len(digest) == 64 and "airflow-bootstrap" in RETAINED[id(first)].delete_before_replace


def test_another_trigger_user_changes_the_bootstrap_jobs_spec() -> None:
    # The password's digest is the only annotation: the user reaches the spec through the args.
    loaded = load_stack("prod")
    renamed = with_airflow(loaded, trigger_api_user="airgate-renamed")
    before = planned(loaded).kubernetes.bootstrap_job  # type: ignore[union-attr]
    after = planned(renamed).kubernetes.bootstrap_job  # type: ignore[union-attr]
    assert before["spec"] != after["spec"]
    assert after["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "airgate-renamed"


def test_the_bootstrap_job_runs_after_migrations_and_reads_only_its_secrets() -> None:
    job = planned(load_stack("prod")).kubernetes.bootstrap_job  # type: ignore[union-attr]
    [container] = job["spec"]["template"]["spec"]["containers"]
    # The shared account program (infra/airflow/trigger_account.py), waiting for the migration first;
    # the password only by the name of the variable that holds it.
    python, flag, program, *options = container["args"]
    assert [python, flag, program] == ["python", "-c", PROGRAM.read_text()]
    assert options == [
        "--wait-for-migrations", str(MIGRATION_WAIT_SECONDS), "--role", "User",
        "--password-env", TRIGGER_PASSWORD_ENV, "airgate-trigger",
    ]  # fmt: skip
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"airflow-airgate-metadata-db", "airflow-airgate-trigger-user"}
    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("stack_name", ["dev", "staging", "prod"])
def test_long_running_pods_that_read_credentials_carry_their_digest(stack_name: str) -> None:
    """Long-running pods that read credentials as env roll when those change (the chart tier renders
    these very values with the released chart)."""
    values = plain(release(recorded(stack_name)).inputs["values"])
    for section in (values["triggerer"], values["workers"]["kubernetes"], values["apiServer"]):
        assert len(section["podAnnotations"]["airgate.dev/secrets-sha256"]) == 64
    assert "podAnnotations" not in values["workers"]  # deprecated by the chart


# --- day-2 settings -----------------------------------------------------------------------------------


def test_day2_settings_reach_the_chart_and_stay_schema_valid() -> None:
    loaded = with_airflow(load_stack("prod"), **PROD_DAY2_SETTINGS)
    values = planned(loaded).kubernetes.helm_values  # type: ignore[union-attr]
    assert values["config"]["logging"] == {
        "remote_logging": "True",
        "remote_base_log_folder": "s3://acme-airflow-logs/prod",
        "remote_log_conn_id": "logs_s3",
    }
    assert values["triggerer"]["persistence"] == {"enabled": True, "size": "20Gi", "storageClassName": "gp3"}
    assert values["registry"] == {"secretName": "ghcr-pull"}
    assert values["scheduler"]["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }
    assert values["workers"]["kubernetes"]["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}}
    job = planned(loaded).kubernetes.bootstrap_job  # type: ignore[union-attr]
    assert job["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "ghcr-pull"}]


def test_the_task_image_follows_the_airflow_image() -> None:
    values = planned(load_stack("prod")).kubernetes.helm_values  # type: ignore[union-attr]
    image = values["images"]["airflow"]
    assert values["images"]["pod_template"] == image
    assert values["config"]["kubernetes_executor"] == {
        "worker_container_repository": image["repository"],
        "worker_container_tag": image["tag"],
    }
    assert json.dumps(values).count("ghcr.io/acme-data/airflow-airgate") == 3


STAGING = load_stack("staging")


@settings(max_examples=30, deadline=None)
@given(
    roles=st.lists(
        st.sampled_from(["airflow-worker", "ai-agent", "ci"]), min_size=1, max_size=3, unique=True
    ),
    executor=st.sampled_from(
        ["KubernetesExecutor", "CeleryExecutor", "LocalExecutor", "CeleryExecutor,KubernetesExecutor"]
    ),
)
def test_any_task_roles_give_the_same_jobs_and_connections_only_where_tasks_run(
    roles: list[str], executor: str
) -> None:
    assert STAGING.config.airflow is not None
    template = STAGING.config.airflow.task_roles["airflow-worker"]
    loaded = with_airflow(
        STAGING,
        task_roles={role: template for role in roles},
        default_task_role=roles[0],
        executor=executor,
    )
    plan = planned(loaded)
    assert plan == planned(loaded)  # pure: same config, same plan
    assert plan.kubernetes is not None
    assert plan.kubernetes.bootstrap_job == planned(STAGING).kubernetes.bootstrap_job  # type: ignore[union-attr]
    values = plan.kubernetes.helm_values
    expected = set(plan.kubernetes.connection_env_names)
    for key in ("apiServer", "scheduler", "dagProcessor", "triggerer", "workers"):
        names = {name for name in env_entries(values, key) if name.startswith("AIRFLOW_CONN_")}
        runs_tasks = (
            key == "triggerer"
            or (key == "workers" and ("Kubernetes" in executor or "Celery" in executor))
            or (key == "scheduler" and executor == "LocalExecutor")
        )
        assert names == (expected if runs_tasks else set()), key


def test_a_rotated_connection_credential_rolls_the_pods_that_read_it() -> None:
    """Env from a Secret is read at container start: the digest on the pod template is what makes a
    rotated credential reach the long-running pods on the next `pulumi up`."""
    import pulumi

    from infra.components.endpoints import MachineCredential

    def with_token_secret(secret: str) -> Recording:
        def program(loaded: LoadedStack) -> None:
            edge = fake_edge(loaded)
            token = edge.service_tokens["airflow-worker"]
            edge.service_tokens["airflow-worker"] = MachineCredential(
                token.name, token.kind, token.client_id, pulumi.Output.secret(secret)
            )
            deploy_airflow(loaded, edge)

        return run_recorded(load_stack("staging"), program)

    def annotations(recording: Recording) -> dict[str, str]:
        values = plain(release(recording).inputs["values"])
        sections = {"triggerer": values["triggerer"], "workers": values["workers"]["kubernetes"]}
        return {
            key: section["podAnnotations"]["airgate.dev/secrets-sha256"] for key, section in sections.items()
        }

    before, after, again = with_token_secret("old"), with_token_secret("new"), with_token_secret("new")
    assert annotations(after) == annotations(again)  # stable while nothing changes
    changed = {key for key in annotations(before) if annotations(before)[key] != annotations(after)[key]}
    assert changed == {"triggerer", "workers"}
    assert bootstrap_job(before) == bootstrap_job(after)  # the Job is not about connections
