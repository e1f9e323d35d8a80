"""Decides what Airflow on Kubernetes looks like: the Helm values for the official chart and the
Kubernetes objects airgate creates itself (namespace, Secrets, the cloudflared Deployment, the
NetworkPolicy around the API server). Pure: `AirflowOnKubernetes` only turns these into resources.

Decisions, and why:
- The fernet key, API secret key and JWT secret live in Secrets we create from random values kept in
  Pulumi state, and the chart is pinned to them (`fernetKeySecretName`, `apiSecretKeySecretName`,
  `jwtSecretName`). Left to the chart, every upgrade regenerates the JWT secret and breaks running pods.
- No credential is ever in Helm values or plain `env`: Secrets are referenced by name and key.
- The chart is deployed with `helm.v4.Chart` (README, "Which Helm resource"), which runs no Helm
  hooks, so the migration Job is an ordinary Job (`useHelmHooks: false`), and then, by the chart's
  contract, with `applyCustomEnv: false` so its immutable pod template does not change when a
  connection is added (an image bump does change it: Pulumi plans the Job's replacement). The chart's create-user Job is
  off in every stack: on, it creates an `Admin` account `admin` with password `admin` (the release's
  `createUserJob.defaultUser`). airgate's bootstrap Job (jobs_plan.py) owns the trigger user.
- Worker settings go to the executor's own section (`workers.kubernetes.*` for task pods,
  `workers.celery.*` for Celery workers): the chart deprecates the shared `workers.env`,
  `workers.podAnnotations` and `workers.resources`. Service links are off (`enableServiceLinks`,
  the chart's coming default: Airflow reads no `<SERVICE>_PORT` variables) and the git-sync probe
  setting is the chart's future one, so the release renders without a deprecation note.
- Connections are env (secretKeyRef) on the components that run tasks only (`task_runners`); the
  trigger user's password reaches only the bootstrap Job.
- The API server stays ClusterIP with no Ingress: people come through the tunnel behind Access, machines
  only through the DAG-trigger gateway. The NetworkPolicy admits only cloudflared and Airflow's own pods.
- The auth manager is FAB's: SimpleAuthManager is for development only. People sign in through the
  stack's OpenID provider (sign_in.py); the only password account is the DAG-trigger gateway's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, TypeVar

from infra.airflow.connections import ConnectionPlan
from infra.airflow.sign_in import CLIENT_SECRET_ENV
from infra.config.airflow_model import AirflowSettings, Component
from infra.config.model import StackConfig

API_SERVER_PORT = 8080
CLOUDFLARED_METRICS_PORT = 2000
CLOUDFLARED_LABELS = {"app.kubernetes.io/name": "cloudflared", "app.kubernetes.io/part-of": "airgate"}
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
TRIGGER_PASSWORD_ENV = "AIRGATE_TRIGGER_API_PASSWORD"  # noqa: S105 - an env var name
ROTATION_ANNOTATION = "airgate.dev/secrets-sha256"
REDIS_IMAGE = "redis:7.2.5-bookworm"
"""The Celery broker's image (Celery executors only), pinned here instead of the chart's default."""


T = TypeVar("T")


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
    sign_in: str
    postgres: str
    redis_password: str
    broker_url: str

    FERNET_KEY = "fernet-key"
    API_SECRET_KEY = "api-secret-key"  # noqa: S105 - a key name
    JWT_SECRET = "jwt-secret"  # noqa: S105 - a key name
    METADATA_KEY = "connection"
    TRIGGER_PASSWORD_KEY = "password"  # noqa: S105 - a key name
    TUNNEL_TOKEN_KEY = "token"  # noqa: S105 - a key name
    SIGN_IN_SECRET_KEY = "client-secret"  # noqa: S105 - a key name
    POSTGRES_PASSWORD_KEY = "password"  # noqa: S105 - a key name
    REDIS_PASSWORD_KEY = "password"  # noqa: S105 - a key name
    BROKER_URL_KEY = "connection"


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
        sign_in=f"{prefix}-ui-oidc",
        postgres=f"{prefix}-postgres",
        redis_password=f"{prefix}-redis-password",
        broker_url=f"{prefix}-broker-url",
    )


def uses_celery(settings: AirflowSettings) -> bool:
    return "CeleryExecutor" in settings.executor.split(",")


def broker_url_template(settings: AirflowSettings) -> str:
    """The Celery broker, the chart's Redis (`<fullname>-redis`), with `{password}` to fill with an
    alphanumeric password (nothing to quote in the URL)."""
    return f"redis://:{{password}}@{chart_fullname(settings)}-redis:6379/0"


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


def _resources(settings: AirflowSettings, component: Component) -> dict[str, Any] | None:
    chosen = settings.resources.get(component)
    if chosen is None:
        return None
    resources: dict[str, Any] = {"requests": {"cpu": chosen.cpu, "memory": chosen.memory}}
    if chosen.memory_limit is not None:
        resources["limits"] = {"memory": chosen.memory_limit}
    return resources


def task_runners(settings: AirflowSettings) -> tuple[Component, ...]:
    """The chart components whose pods run task code (and so need the gateway connections):
    Kubernetes and Celery tasks run in `workers` pods (the pod template, or Celery workers); the
    LocalExecutor runs them inside the scheduler; deferred tasks resume in the triggerer."""
    executors = settings.executor.split(",")
    runners: set[Component] = {"triggerer"}
    if "KubernetesExecutor" in executors or "CeleryExecutor" in executors:
        runners.add("workers")
    if "LocalExecutor" in executors:
        runners.add("scheduler")
    return tuple(sorted(runners))


WORKER_SECTIONS = {"KubernetesExecutor": "kubernetes", "CeleryExecutor": "celery"}
"""The chart's `workers` sub-section per executor: task pods (pod template) and Celery workers."""


def worker_sections(settings: AirflowSettings) -> tuple[str, ...]:
    executors = settings.executor.split(",")
    return tuple(section for executor, section in WORKER_SECTIONS.items() if executor in executors)


def _sections(
    settings: AirflowSettings, components: dict[str, dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    """Where a component's settings go: `workers` settings into each executor's own sub-section."""
    if key != "workers":
        return [components[key]]
    return [components[key].setdefault(section, {}) for section in worker_sections(settings)]


def rotation_annotations(values: dict[str, Any], connections: T, sign_in: T) -> dict[str, Any]:
    """The values with a digest of the secrets each long-running component reads as env on its
    pods: env from a Secret is read at container start only, so a new digest rolls the pods. The
    digests are strings, or Pulumi Outputs in the component."""
    values = copy.deepcopy(values)
    for key in ("triggerer", "scheduler"):
        if "env" in values.get(key, {}):
            values[key]["podAnnotations"] = {ROTATION_ANNOTATION: connections}
    for section in WORKER_SECTIONS.values():
        worker = values.get("workers", {}).get(section, {})
        if "env" in worker:
            worker["podAnnotations"] = {ROTATION_ANNOTATION: connections}
    values["apiServer"]["podAnnotations"] = {ROTATION_ANNOTATION: sign_in}
    return values


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def plan_helm_values(
    stack: StackConfig, connections: list[ConnectionPlan], sign_in_config: str | None = None
) -> dict[str, Any]:
    """`sign_in_config` is the `webserver_config.py` text (infra/airflow/sign_in.py)."""
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
    # Connections go only to the pods that run tasks, as env read from the connections Secret; the
    # chart's global `secret:` list would put them in every pod (API server, jobs, ...).
    connection_env = [_secret_env(plan.env_name, names.connections, plan.env_name) for plan in connections]
    env = [{"name": "AIRGATE_ENVIRONMENT", "value": stack.environment}]
    if settings.image.pip_additional_requirements:
        # Development only (refused in prod): pip runs at every pod start.
        env.append(
            {"name": "_PIP_ADDITIONAL_REQUIREMENTS", "value": settings.image.pip_additional_requirements}
        )
    config: dict[str, dict[str, Any]] = {
        "core": {
            "auth_manager": FAB_AUTH_MANAGER,
            "load_examples": "False",
            # Granted DAGs must run when the trigger gateway creates a run: the scheduler starts runs
            # of unpaused DAGs only, the trigger API does not unpause, and the default (True) would
            # leave every new DAG paused until someone clicks. A DAG that must start paused says so
            # itself (`is_paused_upon_creation=True`).
            "dags_are_paused_at_creation": "False",
        },
        "api": {"base_url": f"https://{settings.ui_hostname}"},
        # The sign-in's redirect URI must be the public https one: trust cloudflared's one hop of
        # X-Forwarded-* (the NetworkPolicy lets only cloudflared and Airflow's pods reach the server).
        "fab": {"enable_proxy_fix": "True"},
    }
    if "KubernetesExecutor" in settings.executor:
        # The task pods' image: the executor's pod template does not follow `images.airflow`.
        config["kubernetes_executor"] = {
            "worker_container_repository": settings.image.repository,
            "worker_container_tag": settings.image.tag,
        }
    if settings.remote_logs is not None:
        config["logging"] = {
            "remote_logging": "True",
            "remote_base_log_folder": settings.remote_logs.base_folder,
            "remote_log_conn_id": settings.remote_logs.connection_id,
        }
    api_server: dict[str, Any] = {
        "service": {"type": "ClusterIP"},
        "env": [_secret_env(CLIENT_SECRET_ENV, names.sign_in, SecretNames.SIGN_IN_SECRET_KEY)],
    }
    if sign_in_config is not None:
        api_server["apiServerConfig"] = sign_in_config
    components: dict[str, dict[str, Any]] = {
        "apiServer": api_server,
        "scheduler": {},
        "dagProcessor": {},
        "triggerer": {
            "persistence": {
                "enabled": True,
                "size": settings.triggerer.size,
                "storageClassName": settings.triggerer.storage_class,
            }
        },
        "workers": {},
    }
    chart_keys: dict[Component, str] = {
        "api_server": "apiServer",
        "scheduler": "scheduler",
        "dag_processor": "dagProcessor",
        "triggerer": "triggerer",
        "workers": "workers",
    }
    for component, key in chart_keys.items():
        resources = _resources(settings, component)
        if resources is not None:
            for section in _sections(settings, components, key):
                section["resources"] = resources
    for runner in task_runners(settings):
        for section in _sections(settings, components, chart_keys[runner]):
            section["env"] = connection_env
    images: dict[str, Any] = {
        "airflow": image,
        "pod_template": dict(image),
        "useDefaultImageForMigration": False,
    }
    if uses_celery(settings):
        repository, tag = REDIS_IMAGE.rsplit(":", 1)
        images["redis"] = {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}
    values: dict[str, Any] = {
        "executor": settings.executor,
        "airflowVersion": settings.image.airflow_version,
        "images": images,
        "fernetKeySecretName": names.fernet_key,
        "apiSecretKeySecretName": names.api_secret_key,
        "jwtSecretName": names.jwt_secret,
        "env": env,
        "config": config,
        **{key: value for key, value in components.items() if value},
        # The chart's contract: Jobs without Helm hooks must not take the custom env, or their
        # (immutable) pod templates change with every connection and the upgrade fails.
        "migrateDatabaseJob": {"useHelmHooks": False, "applyCustomEnv": False},
        # People sign in through the IdP; the chart's user Job would make `admin`/`admin` an Admin.
        "createUserJob": {"enabled": False, "serviceAccount": {"create": False}},
        "enableServiceLinks": False,
        "statsd": {"enabled": False},
        "ingress": {"enabled": False, "web": {"enabled": False}, "apiServer": {"enabled": False}},
        "dags": {
            "persistence": {"enabled": False},
            "gitSync": {"enabled": False, "recommendedProbeSetting": True},
        },
        # Never the chart's Bitnami subchart (its image is gone, apache/airflow#57328): either the
        # external database or the small PostgreSQL airgate runs (database_plan.py), both as a Secret.
        "postgresql": {"enabled": False},
        "data": {"metadataSecretName": names.metadata},
    }
    if uses_celery(settings):
        # The chart makes these two with a random password as pre-install hooks, which helm.v4.Chart
        # does not run (and a fresh random value each render would be a diff on every deploy).
        values["redis"] = {"passwordSecretName": names.redis_password}
        values["data"]["brokerUrlSecretName"] = names.broker_url
    if settings.image_pull_secret is not None:
        values["registry"] = {"secretName": settings.image_pull_secret}
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
        secret_manifest(settings, names.sign_in, [SecretNames.SIGN_IN_SECRET_KEY]),
        secret_manifest(settings, names.metadata, [SecretNames.METADATA_KEY]),
    ]
    if settings.database.bundled_postgres:
        manifests.append(secret_manifest(settings, names.postgres, [SecretNames.POSTGRES_PASSWORD_KEY]))
    if uses_celery(settings):
        manifests.append(secret_manifest(settings, names.redis_password, [SecretNames.REDIS_PASSWORD_KEY]))
        manifests.append(secret_manifest(settings, names.broker_url, [SecretNames.BROKER_URL_KEY]))
    manifests += [cloudflared_manifest(settings), network_policy_manifest(settings)]
    return manifests
