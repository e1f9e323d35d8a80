"""Plans Airflow for one stack: `plan_airflow(stack_name, config) -> AirflowPlan`, pure.

The plan holds everything the Airflow components turn into resources: the gateway connections, the
trigger identity's settings, the tunnel, the Helm values and the Kubernetes objects airgate creates
itself, the images, the bootstrap Job and what is protected. Each component receives only its part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.airflow.connections import ConnectionPlan, connection_ids_by_gateway, plan_connections
from infra.airflow.database_plan import metadata_url, postgres_manifests
from infra.airflow.images import ImagePin, plan_images
from infra.airflow.jobs_plan import bootstrap_job_manifest
from infra.airflow.kubernetes_plan import (
    SecretNames,
    broker_url_template,
    direct_manifests,
    plan_helm_values,
    secret_names,
    uses_celery,
)
from infra.airflow.sign_in import plan_sign_in, webserver_config
from infra.airflow.tunnel_plan import TunnelPlan, plan_tunnel
from infra.config.model import StackConfig
from infra.stack_plan import UNPROTECTED, Protection, ServiceTokenPlan


@dataclass(frozen=True)
class TriggerIdentityPlan:
    account_id: str
    token: ServiceTokenPlan
    api_user: str
    password_version: int


@dataclass(frozen=True)
class KubernetesPlan:
    namespace: str
    release_name: str
    chart_repository: str
    chart_name: str
    chart_version: str
    kube_context: str | None
    secret_names: SecretNames
    connection_env_names: tuple[str, ...]
    helm_values: dict[str, Any]
    manifests: tuple[dict[str, Any], ...]
    """Namespace, Secret shapes, cloudflared, NetworkPolicy (direct_manifests)."""
    postgres: tuple[dict[str, Any], ...]
    """The bundled database's Service and StatefulSet (empty with an external database)."""
    bootstrap_job: dict[str, Any]
    postgres_url_template: str | None
    """The bundled database's URL with `{password}` to fill (None with an external database)."""
    broker_url_template: str | None
    """Celery's Redis URL with `{password}` to fill (None without a Celery executor)."""
    cluster_protection: Protection
    """The namespace, the Helm release and the fernet key's random bytes."""
    fernet_protection: Protection
    """The fernet key's Secret."""
    database_protection: Protection
    """The bundled database's StatefulSet."""


@dataclass(frozen=True)
class AirflowPlan:
    connections: tuple[ConnectionPlan, ...]
    connection_ids: dict[str, list[str]]
    trigger: TriggerIdentityPlan | None
    tunnel: TunnelPlan | None
    kubernetes: KubernetesPlan | None
    images: tuple[ImagePin, ...]


def plan_airflow(stack_name: str, config: StackConfig) -> AirflowPlan | None:
    settings = config.airflow
    if settings is None:
        return None
    connections = plan_connections(config)
    ids = connection_ids_by_gateway(connections)
    if settings.runtime != "kubernetes":
        return AirflowPlan(tuple(connections), ids, None, None, None, ())
    assert settings.chart is not None and settings.database is not None
    protected = config.protected
    kubernetes = KubernetesPlan(
        namespace=settings.namespace,
        release_name=settings.release_name,
        chart_repository=settings.chart.repository,
        chart_name=settings.chart.name,
        chart_version=settings.chart.version,
        kube_context=settings.kubernetes.context,
        secret_names=secret_names(settings),
        connection_env_names=tuple(plan.env_name for plan in connections),
        helm_values=plan_helm_values(config, connections, webserver_config(plan_sign_in(config))),
        manifests=tuple(direct_manifests(config, connections)),
        postgres=tuple(postgres_manifests(settings)) if settings.database.bundled_postgres else (),
        bootstrap_job=bootstrap_job_manifest(settings),
        postgres_url_template=metadata_url(settings, "{password}")
        if settings.database.bundled_postgres
        else None,
        broker_url_template=broker_url_template(settings) if uses_celery(settings) else None,
        cluster_protection=_protection(
            protected,
            "deleting the namespace or the release takes every Airflow pod with it; the fernet key's "
            "random bytes are the key",
        ),
        # Retained where losing it loses data, which a re-create cannot bring back. The bundled
        # database's volume also outlives its StatefulSet by the StatefulSet's own retention policy.
        fernet_protection=_protection(
            protected,
            "without the fernet key the connections and variables in the metadata database cannot "
            "be decrypted",
            retain=True,
        ),
        database_protection=_protection(
            protected, "the bundled database holds Airflow's metadata, connections and runs", retain=True
        ),
    )
    trigger = TriggerIdentityPlan(
        account_id=config.account_id,
        token=ServiceTokenPlan(
            key="airflow-trigger",
            name=f"airgate-{stack_name}-airflow-trigger",
            duration=settings.trigger_token_duration,
            client_secret_version=settings.trigger_token_rotation.secret_version,
            previous_client_secret_expires_at=settings.trigger_token_rotation.previous_expiry_text,
        ),
        api_user=settings.trigger_api_user,
        password_version=settings.trigger_password_version,
    )
    return AirflowPlan(
        connections=tuple(connections),
        connection_ids=ids,
        trigger=trigger,
        tunnel=plan_tunnel(stack_name, config),
        kubernetes=kubernetes,
        images=plan_images(settings),
    )


def _protection(protected: bool, why: str, *, retain: bool = False) -> Protection:
    """Only a protected stack (`StackConfig.protected`: prod unless `protect` says otherwise) holds
    on to its resources; elsewhere Pulumi may replace or delete anything."""
    return Protection(protect=True, retain_on_delete=retain, why=why) if protected else UNPROTECTED
