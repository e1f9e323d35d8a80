"""Decides what Airflow on Kubernetes looks like: the Helm values for the official chart and the
Kubernetes objects airgate creates itself (namespace, Secrets, the cloudflared Deployment, the
NetworkPolicy around the API server). Pure: `AirflowOnKubernetes` only turns these into resources.

Decisions, and why:
- The fernet key, API secret key and JWT secret live in Secrets we create from random values kept in
  Pulumi state, and the chart is pinned to them (`fernetKeySecretName`, `apiSecretKeySecretName`,
  `jwtSecretName`). Left to the chart, every upgrade regenerates the JWT secret and breaks running pods.
- Connections reach Airflow only through the chart's `secret:` list (envName/secretName/secretKey), so no
  credential is ever in Helm values or plain `env`.
- `helm.v3.Release` waits for the release's resources; chart hook Jobs would run only after that wait
  (a deadlock: pods wait for migrations that never start), so the migrate and create-user Jobs run as
  ordinary Jobs (`useHelmHooks: false`).
- The API server stays ClusterIP with no Ingress: people come through the tunnel behind Access, machines
  only through the DAG-trigger gateway. The NetworkPolicy admits only cloudflared and Airflow's own pods.
- The auth manager is FAB's: SimpleAuthManager is for development only, and the DAG-trigger gateway
  needs a real API user (created by the create-user Job from a password held in a Secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.airflow.connections import ConnectionPlan
from infra.config.airflow_model import AirflowSettings
from infra.config.model import StackConfig

API_SERVER_PORT = 8080
CLOUDFLARED_METRICS_PORT = 2000
CLOUDFLARED_LABELS = {"app.kubernetes.io/name": "cloudflared", "app.kubernetes.io/part-of": "airgate"}
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
TRIGGER_PASSWORD_ENV = "AIRGATE_TRIGGER_API_PASSWORD"  # noqa: S105 - an env var name


@dataclass(frozen=True)
class SecretNames:
    """Kubernetes Secret names (and the keys the chart expects inside them)."""

    fernet_key: str
    api_secret_key: str
    jwt_secret: str
    metadata: str
    connections: str
    trigger_user: str
    tunnel_token: str

    FERNET_KEY = "fernet-key"
    API_SECRET_KEY = "api-secret-key"  # noqa: S105 - a key name
    JWT_SECRET = "jwt-secret"  # noqa: S105 - a key name
    METADATA_KEY = "connection"
    TRIGGER_PASSWORD_KEY = "password"  # noqa: S105 - a key name
    TUNNEL_TOKEN_KEY = "token"  # noqa: S105 - a key name


def secret_names(settings: AirflowSettings) -> SecretNames:
    prefix = f"{settings.release_name}-airgate"
    return SecretNames(
        fernet_key=f"{prefix}-fernet-key",
        api_secret_key=f"{prefix}-api-secret-key",
        jwt_secret=f"{prefix}-jwt-secret",
        metadata=f"{prefix}-metadata-db",
        connections=f"{prefix}-connections",
        trigger_user=f"{prefix}-trigger-user",
        tunnel_token=f"{prefix}-cloudflared-token",
    )


def chart_fullname(settings: AirflowSettings) -> str:
    """The chart's `airflow.fullname` helper: the release name when it contains the chart name."""
    chart = settings.chart.name if settings.chart is not None else "airflow"
    release = settings.release_name
    return release if chart in release else f"{release}-{chart}"


def api_server_url(settings: AirflowSettings) -> str:
    """The in-cluster address of Airflow's API server (what the tunnel forwards to)."""
    return f"http://{chart_fullname(settings)}-api-server.{settings.namespace}.svc.cluster.local:{API_SERVER_PORT}"


def api_server_labels(settings: AirflowSettings) -> dict[str, str]:
    """The labels the chart puts on API-server pods."""
    return {"tier": "airflow", "component": "api-server", "release": settings.release_name}


def airflow_pod_labels(settings: AirflowSettings) -> dict[str, str]:
    """Every pod of this Airflow release (scheduler, workers, task pods, triggerer, jobs)."""
    return {"tier": "airflow", "release": settings.release_name}


def plan_helm_values(stack: StackConfig, connections: list[ConnectionPlan]) -> dict[str, Any]:
    settings = stack.airflow
    assert settings is not None and settings.runtime == "kubernetes"
    assert settings.image is not None and settings.database is not None
    names = secret_names(settings)
    image: dict[str, Any] = {
        "repository": settings.image.repository,
        "tag": settings.image.tag,
        "pullPolicy": settings.image.pull_policy,
    }
    if settings.image.digest:
        image["digest"] = settings.image.digest
    secret_env = [
        {"envName": plan.env_name, "secretName": names.connections, "secretKey": plan.env_name}
        for plan in connections
    ]
    secret_env.append(
        {
            "envName": TRIGGER_PASSWORD_ENV,
            "secretName": names.trigger_user,
            "secretKey": SecretNames.TRIGGER_PASSWORD_KEY,
        }
    )
    env = [{"name": "AIRGATE_ENVIRONMENT", "value": stack.environment}]
    if settings.image.pip_additional_requirements:
        # Development only (refused in prod): pip runs at every pod start.
        env.append(
            {"name": "_PIP_ADDITIONAL_REQUIREMENTS", "value": settings.image.pip_additional_requirements}
        )
    values: dict[str, Any] = {
        "executor": settings.executor,
        "airflowVersion": settings.image.airflow_version,
        "images": {"airflow": image, "useDefaultImageForMigration": False},
        "fernetKeySecretName": names.fernet_key,
        "apiSecretKeySecretName": names.api_secret_key,
        "jwtSecretName": names.jwt_secret,
        "secret": secret_env,
        "env": env,
        "config": {
            "core": {"auth_manager": FAB_AUTH_MANAGER, "load_examples": "False"},
            "api": {"base_url": f"https://{settings.ui_hostname}"},
        },
        "apiServer": {
            "service": {"type": "ClusterIP"},
        },
        "migrateDatabaseJob": {"useHelmHooks": False},
        "createUserJob": {
            "useHelmHooks": False,
            # The only user the chart creates is the DAG-trigger gateway's, with its password read
            # from a Secret at run time: the chart's default args put a password into Helm values.
            "args": [
                "bash",
                "-c",
                'exec airflow users create -r User -u "$0" -e "$0@airgate.invalid" -f airgate -l trigger '
                f'-p "${TRIGGER_PASSWORD_ENV}"',
                settings.trigger_api_user,
            ],
        },
        "ingress": {"enabled": False, "web": {"enabled": False}, "apiServer": {"enabled": False}},
        "dags": {"persistence": {"enabled": False}, "gitSync": {"enabled": False}},
    }
    if settings.database.bundled_postgres:
        values["postgresql"] = {"enabled": True}
    else:
        values["postgresql"] = {"enabled": False}
        values["data"] = {"metadataSecretName": names.metadata}
    return values


# --- Kubernetes objects airgate creates itself ---------------------------------------------------


def _metadata(name: str, namespace: str | None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "airgate", **(labels or {})},
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def namespace_manifest(settings: AirflowSettings) -> dict[str, Any]:
    labels = {
        # The chart's pods meet `baseline`; `restricted` would refuse several of them.
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(settings.namespace, None, labels)}


def secret_manifest(settings: AirflowSettings, name: str, keys: list[str]) -> dict[str, Any]:
    """A Secret's shape; values are filled by the component from Pulumi secrets."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(name, settings.namespace),
        "stringData": {key: "" for key in keys},
    }


def cloudflared_manifest(settings: AirflowSettings) -> dict[str, Any]:
    names = secret_names(settings)
    labels = dict(CLOUDFLARED_LABELS)
    container = {
        "name": "cloudflared",
        "image": settings.cloudflared_image,
        "args": [
            "tunnel",
            "--no-autoupdate",
            "--metrics",
            f"0.0.0.0:{CLOUDFLARED_METRICS_PORT}",
            "run",
        ],
        "env": [
            {
                "name": "TUNNEL_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": names.tunnel_token, "key": SecretNames.TUNNEL_TOKEN_KEY}
                },
            }
        ],
        "ports": [{"name": "metrics", "containerPort": CLOUDFLARED_METRICS_PORT}],
        "livenessProbe": {
            "httpGet": {"path": "/ready", "port": CLOUDFLARED_METRICS_PORT},
            "failureThreshold": 1,
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata("cloudflared", settings.namespace, labels),
        "spec": {
            "replicas": settings.cloudflared_replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [container],
                },
            },
        },
    }


def network_policy_manifest(settings: AirflowSettings) -> dict[str, Any]:
    """Only cloudflared (the tunnel) and Airflow's own pods may open the API server's port."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"{settings.release_name}-api-server-ingress", settings.namespace),
        "spec": {
            "podSelector": {"matchLabels": api_server_labels(settings)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": dict(CLOUDFLARED_LABELS)}},
                        {"podSelector": {"matchLabels": airflow_pod_labels(settings)}},
                    ],
                    "ports": [{"protocol": "TCP", "port": API_SERVER_PORT}],
                }
            ],
        },
    }


def direct_manifests(stack: StackConfig, connections: list[ConnectionPlan]) -> list[dict[str, Any]]:
    """Every object the component creates directly, in creation order (for validation and review)."""
    settings = stack.airflow
    assert settings is not None and settings.database is not None
    names = secret_names(settings)
    manifests = [
        namespace_manifest(settings),
        secret_manifest(settings, names.fernet_key, [SecretNames.FERNET_KEY]),
        secret_manifest(settings, names.api_secret_key, [SecretNames.API_SECRET_KEY]),
        secret_manifest(settings, names.jwt_secret, [SecretNames.JWT_SECRET]),
        secret_manifest(settings, names.connections, [plan.env_name for plan in connections]),
        secret_manifest(settings, names.trigger_user, [SecretNames.TRIGGER_PASSWORD_KEY]),
        secret_manifest(settings, names.tunnel_token, [SecretNames.TUNNEL_TOKEN_KEY]),
    ]
    if settings.database.url is not None:
        manifests.append(secret_manifest(settings, names.metadata, [SecretNames.METADATA_KEY]))
    manifests += [cloudflared_manifest(settings), network_policy_manifest(settings)]
    return manifests
