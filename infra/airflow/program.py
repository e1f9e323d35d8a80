"""Adds Airflow on Kubernetes to the airgate program (plan with `infra.airflow.plan.plan_airflow`, then
wire with `wire_airflow`): the tunnel and its Access apps, the cluster side (`deploy_cluster`),
and one pre-wired connection per (gateway, task role), built from what the edge really created.

The chart comes from the stack's chart repository, or from the archive `AIRGATE_AIRFLOW_CHART`
names (infra/airflow/chart.py checks it is the pinned release).

Stack outputs: `airflow_ui_url` (through Access), `airflow_connection_ids` (gateway → connection ids),
`airflow_namespace`. A `standalone` stack (the local environment) gets only the connection ids: its
Airflow runs on the developer's machine.
"""

from __future__ import annotations

import pulumi

from infra.airflow.chart import archive_from_environment
from infra.airflow.components import (
    AirflowOnKubernetes,
    AirflowOnKubernetesArgs,
    AirflowTunnel,
    AirflowTunnelArgs,
    TriggerUpstreamIdentity,
    TriggerUpstreamIdentityArgs,
)
from infra.airflow.connections import (
    ConnectionCredentials,
    ConnectionPlan,
    OAuth2Endpoint,
    connection_json,
    oauth2_endpoint,
)
from infra.airflow.plan import AirflowPlan, KubernetesPlan, plan_airflow
from infra.components.endpoints import EdgeOutputs
from infra.config.airflow_model import AirflowSettings
from infra.config.loader import LoadedStack
from infra.config.model import StackConfig


def create_trigger_identity(loaded: LoadedStack) -> TriggerUpstreamIdentity:
    """Call before the gateways when the trigger Worker should bind its upstream credentials."""
    plan = plan_airflow(loaded.name, loaded.config)
    assert plan is not None and plan.trigger is not None, "the stack runs no Airflow on Kubernetes"
    return trigger_identity_from_plan(plan)


def trigger_identity_from_plan(plan: AirflowPlan) -> TriggerUpstreamIdentity:
    assert plan.trigger is not None
    return TriggerUpstreamIdentity("airflow-trigger", TriggerUpstreamIdentityArgs(plan.trigger))


def _connection_output(
    plan: ConnectionPlan,
    edge: EdgeOutputs,
    oauth2: OAuth2Endpoint,
    oauth2_secrets: dict[str, pulumi.Output[str]],
) -> pulumi.Output[str]:
    endpoint = edge.endpoints[plan.gateway]
    access_id: pulumi.Output[str | None] = pulumi.Output.from_input(None)
    access_secret: pulumi.Output[str | None] = pulumi.Output.from_input(None)
    if plan.service_token is not None:
        token = edge.service_tokens.get(plan.service_token)
        if token is None:
            raise ValueError(
                f"connection {plan.conn_id}: the edge issued no service token {plan.service_token!r}"
            )
        access_id, access_secret = token.client_id, token.client_secret
    oauth_secret: pulumi.Output[str | None] = pulumi.Output.from_input(None)
    if plan.oidc_client is not None:
        oauth_secret = oauth2_secrets[plan.role]

    def render(parts: list[str | None]) -> str:
        url, client_id, client_secret, oauth_value = parts
        assert url is not None
        return connection_json(
            plan,
            ConnectionCredentials(
                gateway_url=url,
                access_client_id=client_id,
                access_client_secret=client_secret,
                oauth2_client_id=plan.oidc_client,
                oauth2_client_secret=oauth_value,
            ),
            oauth2 if plan.auth == "oidc" else None,
        )

    joined = pulumi.Output.all(endpoint.url, access_id, access_secret, oauth_secret)
    return pulumi.Output.secret(joined.apply(render))


def deploy_airflow(
    loaded: LoadedStack,
    edge: EdgeOutputs,
    *,
    trigger_identity: TriggerUpstreamIdentity | None = None,
    identity_provider_id: pulumi.Output[str] | None = None,
) -> TriggerUpstreamIdentity | None:
    """Creates Airflow's resources and exports its outputs. Returns the trigger Worker's upstream
    identity (created here unless the caller made it first, to bind it into the trigger Worker)."""
    plan = plan_airflow(loaded.name, loaded.config)
    if plan is None:
        return None
    return wire_airflow(
        plan,
        loaded.config,
        edge,
        trigger_identity=trigger_identity,
        identity_provider_id=identity_provider_id,
    )


def wire_airflow(
    plan: AirflowPlan,
    stack: StackConfig,
    edge: EdgeOutputs,
    *,
    trigger_identity: TriggerUpstreamIdentity | None = None,
    identity_provider_id: pulumi.Output[str] | None = None,
) -> TriggerUpstreamIdentity | None:
    """Turns an `AirflowPlan` into resources (what `plan_stack`'s wiring calls)."""
    settings = stack.airflow
    assert settings is not None
    pulumi.export("airflow_connection_ids", plan.connection_ids)
    if plan.kubernetes is None or plan.tunnel is None or plan.trigger is None:
        return None

    config = pulumi.Config("airgate")
    oauth2_secrets = {
        role: config.require_secret(task_role.oidc_client_secret.secret)
        for role, task_role in sorted(settings.task_roles.items())
        if task_role.oidc_client_secret is not None
    }
    oauth2 = oauth2_endpoint(stack)
    values = {
        connection.env_name: _connection_output(connection, edge, oauth2, oauth2_secrets)
        for connection in plan.connections
    }

    trigger = trigger_identity or trigger_identity_from_plan(plan)
    tunnel = AirflowTunnel(
        "airflow-tunnel",
        AirflowTunnelArgs(plan.tunnel, trigger.access_token_id, identity_provider_id),
    )
    cluster = deploy_cluster(
        plan.kubernetes,
        settings,
        connection_values=values,
        tunnel_token=tunnel.connector_token,
        trigger_api_password=trigger.api_password,
    )
    pulumi.export("airflow_ui_url", tunnel.ui_url)
    pulumi.export("airflow_namespace", cluster.namespace)
    return trigger


def deploy_cluster(
    plan: KubernetesPlan,
    settings: AirflowSettings,
    *,
    connection_values: dict[str, pulumi.Output[str]],
    tunnel_token: pulumi.Output[str],
    trigger_api_password: pulumi.Output[str],
) -> AirflowOnKubernetes:
    """The cluster side: the chart and what it reads. The stack's own secrets come from its config;
    what the Cloudflare side creates (connection documents, the tunnel's token, the trigger user's
    password) is handed in, so the chart tier can deploy this part alone with values of its own."""
    config = pulumi.Config("airgate")
    database = settings.database
    kubeconfig = settings.kubernetes.kubeconfig
    assert settings.sign_in is not None and settings.chart is not None
    # An air-gapped deploy points AIRGATE_AIRFLOW_CHART at the release archive; checked against the
    # pinned sha256 before anything is planned.
    archive = archive_from_environment(settings.chart.version)
    return AirflowOnKubernetes(
        "airflow",
        AirflowOnKubernetesArgs(
            plan=plan,
            connection_values=connection_values,
            tunnel_token=tunnel_token,
            trigger_api_password=trigger_api_password,
            sign_in_client_secret=config.require_secret(settings.sign_in.client_secret.secret),
            database_url=config.require_secret(database.url.secret)
            if database is not None and database.url is not None
            else None,
            kubeconfig=config.require_secret(kubeconfig.secret) if kubeconfig is not None else None,
            chart_archive=str(archive) if archive is not None else None,
        ),
    )
