"""Decides the bundled metadata database (outside prod only): a one-replica PostgreSQL StatefulSet
and its Service, owned by airgate, on the Docker official `postgres` image pinned by version.

Why not the chart's `postgresql.enabled`: that is Bitnami's subchart, whose image for these chart
versions no longer pulls (apache/airflow#57328), so every pod waited on a database that never started.
The chart reads the database from `data.metadataSecretName` either way; for the bundled one airgate
writes that Secret itself from a generated password.
"""

from __future__ import annotations

from typing import Any

from infra.airflow.kubernetes_plan import SecretNames, airflow_pod_labels, chart_fullname, secret_names
from infra.config.airflow_model import AirflowSettings

POSTGRES_PORT = 5432
POSTGRES_USER = "airflow"
POSTGRES_DB = "airflow"
POSTGRES_UID = 999
"""The official image's `postgres` user."""


def postgres_name(settings: AirflowSettings) -> str:
    return f"{chart_fullname(settings)}-airgate-postgres"


def postgres_labels(settings: AirflowSettings) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "postgres",
        "app.kubernetes.io/instance": settings.release_name,
        "app.kubernetes.io/part-of": "airgate",
    }


def postgres_host(settings: AirflowSettings) -> str:
    return f"{postgres_name(settings)}.{settings.namespace}.svc.cluster.local"


def metadata_url(settings: AirflowSettings, password: str) -> str:
    """The connection string the chart reads from the metadata Secret (key `connection`)."""
    return (
        f"postgresql://{POSTGRES_USER}:{password}@{postgres_host(settings)}:{POSTGRES_PORT}/{POSTGRES_DB}"
        "?sslmode=disable"
    )


def postgres_manifests(settings: AirflowSettings) -> list[dict[str, Any]]:
    """The Service, the StatefulSet (its data on a PersistentVolumeClaim that outlives the pod) and a
    NetworkPolicy: only Airflow's own pods may open the database's port."""
    database = settings.database
    assert database is not None and database.bundled_postgres
    name = postgres_name(settings)
    labels = postgres_labels(settings)
    metadata = {
        "name": name,
        "namespace": settings.namespace,
        "labels": {"app.kubernetes.io/managed-by": "airgate", **labels},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "selector": labels,
            "ports": [{"name": "postgres", "port": POSTGRES_PORT, "targetPort": POSTGRES_PORT}],
        },
    }
    password_env = {
        "name": "POSTGRES_PASSWORD",
        "valueFrom": {
            "secretKeyRef": {
                "name": secret_names(settings).postgres,
                "key": SecretNames.POSTGRES_PASSWORD_KEY,
            }
        },
    }
    probe = {"exec": {"command": ["pg_isready", "-U", POSTGRES_USER, "-d", POSTGRES_DB]}, "periodSeconds": 10}
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": database.storage_size}},
    }
    if database.storage_class is not None:
        claim_spec["storageClassName"] = database.storage_class
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata,
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": labels},
            # Deleting or scaling the StatefulSet keeps the data volume (Kubernetes' default, said
            # out loud): the metadata database is the one thing a re-create cannot bring back.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "fsGroup": POSTGRES_UID,
                        "runAsUser": POSTGRES_UID,
                        "runAsNonRoot": True,
                    },
                    "containers": [
                        {
                            "name": "postgres",
                            "image": database.postgres_image,
                            "env": [
                                {"name": "POSTGRES_USER", "value": POSTGRES_USER},
                                {"name": "POSTGRES_DB", "value": POSTGRES_DB},
                                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                                password_env,
                            ],
                            "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT}],
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "initialDelaySeconds": 30},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim_spec}],
        },
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {**metadata, "name": f"{name}-ingress"},
        "spec": {
            "podSelector": {"matchLabels": labels},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": airflow_pod_labels(settings)}}],
                    "ports": [{"protocol": "TCP", "port": POSTGRES_PORT}],
                }
            ],
        },
    }
    return [service, statefulset, policy]
