"""Decides the identity bootstrap Job: it makes the DAG-trigger gateway's Airflow account exist with
exactly the User role and the current password, after the database migration, every time that
password (or the account's program) changes.

Why airgate's own Job and not the chart's `createUserJob`: a Job's pod template is immutable, so a
Job that never changes never runs again, and `airflow users create` skips a user that exists (a rotated
password would never apply). This Job runs `trigger_account.account_command`, the same command
`airgate up` runs against the local Airflow:
- it first waits for the chart's migration Job's result (`check_migrations`), so the order holds
  whether or not Helm waits for Jobs;
- it creates the account if missing, sets its roles to exactly User and applies the current password,
  so running it again is harmless;
- its args name the user and carry the program; a digest of the password is on its pod template (the
  component adds it, `INPUTS_ANNOTATION`): a rotated password, another user or a changed program
  changes the template, Pulumi replaces the Job, and it applies on that `pulumi up`.
The password reaches only this Job (a secretKeyRef), never Airflow's long-running pods or task pods.
"""

from __future__ import annotations

from typing import Any

from infra.airflow.images import airflow_image
from infra.airflow.kubernetes_plan import (
    FAB_AUTH_MANAGER,
    TRIGGER_PASSWORD_ENV,
    SecretNames,
    airflow_pod_labels,
    secret_names,
)
from infra.airflow.trigger_account import account_command
from infra.config.airflow_model import AirflowSettings

INPUTS_ANNOTATION = "airgate.dev/inputs-sha256"
MIGRATION_WAIT_SECONDS = 900


def bootstrap_args(settings: AirflowSettings) -> list[str]:
    """The container's command line (also what the real-Airflow test runs)."""
    return account_command(
        settings.trigger_api_user, TRIGGER_PASSWORD_ENV, wait_for_migrations=MIGRATION_WAIT_SECONDS
    )


def bootstrap_job_name(settings: AirflowSettings) -> str:
    return f"{settings.release_name}-airgate-bootstrap"


def bootstrap_job_manifest(settings: AirflowSettings) -> dict[str, Any]:
    """The Job without its `INPUTS_ANNOTATION`: the component adds it from the password it holds."""
    assert settings.image is not None
    names = secret_names(settings)
    labels = {**airflow_pod_labels(settings), "component": "airgate-bootstrap"}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "OnFailure",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsUser": 50000, "runAsGroup": 0, "runAsNonRoot": True},
        "containers": [
            {
                "name": "bootstrap",
                "image": airflow_image(settings),
                "imagePullPolicy": settings.image.pull_policy,
                "args": bootstrap_args(settings),
                "env": [
                    {
                        "name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                        "valueFrom": {
                            "secretKeyRef": {"name": names.metadata, "key": SecretNames.METADATA_KEY}
                        },
                    },
                    {"name": "AIRFLOW__CORE__AUTH_MANAGER", "value": FAB_AUTH_MANAGER},
                    {"name": "AIRFLOW__CORE__LOAD_EXAMPLES", "value": "False"},
                    {
                        "name": TRIGGER_PASSWORD_ENV,
                        "valueFrom": {
                            "secretKeyRef": {
                                "name": names.trigger_user,
                                "key": SecretNames.TRIGGER_PASSWORD_KEY,
                            }
                        },
                    },
                ],
                "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    }
    if settings.image_pull_secret is not None:
        pod_spec["imagePullSecrets"] = [{"name": settings.image_pull_secret}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": bootstrap_job_name(settings),
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/managed-by": "airgate", **labels},
        },
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": labels},
                "spec": pod_spec,
            },
        },
    }
