"""The Airflow components: they turn the plans of `infra.airflow.*_plan` and `connections` into
resources, and decide nothing themselves.

- `TriggerUpstreamIdentity` (`airgate:airflow:TriggerUpstreamIdentity`): what the DAG-trigger Worker
  presents upstream: its own Access service token for the tunnel hostname, and the password of its
  Airflow API user. Created before the gateways so the trigger Worker can bind them.
- `AirflowTunnel` (`airgate:airflow:AirflowTunnel`): the Cloudflare Tunnel (`config_src` cloudflare),
  its one config resource, DNS records, and an Access app on each hostname (SSO for the UI; the
  trigger token only for the API).
- `AirflowOnKubernetes` (`airgate:airflow:AirflowOnKubernetes`): namespace, random stable keys, the
  Secrets, the official chart through `helm.v3.Release`, the cloudflared Deployment and the
  NetworkPolicy, all through one explicit Kubernetes provider built from stack config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.airflow.connections import ConnectionPlan
from infra.airflow.kubernetes_plan import (
    SecretNames,
    cloudflared_manifest,
    namespace_manifest,
    network_policy_manifest,
    plan_helm_values,
    secret_names,
)
from infra.airflow.tunnel_plan import TunnelPlan, connector_token, tunnel_target
from infra.components.access_app import self_hosted_app
from infra.config.model import StackConfig


def _fernet(b64: str) -> str:
    """A Fernet key is 32 bytes in url-safe base64; RandomBytes gives standard base64."""
    return b64.replace("+", "-").replace("/", "_")


def _ingress_rule(rule: dict[str, str]) -> cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgsDict:
    typed: cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgsDict = {"service": rule["service"]}
    if "hostname" in rule:
        typed["hostname"] = rule["hostname"]
    return typed


# --- the trigger Worker's upstream identity ------------------------------------------------------


@dataclass(frozen=True)
class TriggerUpstreamIdentityArgs:
    stack_name: str
    stack: StackConfig


class TriggerUpstreamIdentity(pulumi.ComponentResource):
    access_client_id: pulumi.Output[str]
    access_client_secret: pulumi.Output[str]
    access_token_id: pulumi.Output[str]
    api_username: str
    api_password: pulumi.Output[str]

    def __init__(
        self, name: str, args: TriggerUpstreamIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("airgate:airflow:TriggerUpstreamIdentity", name, None, opts)
        settings = args.stack.airflow
        assert settings is not None
        token = cloudflare.ZeroTrustAccessServiceToken(
            f"{name}-access-token",
            account_id=args.stack.account_id,
            name=f"airgate-{args.stack_name}-airflow-trigger",
            duration=settings.trigger_token_duration,
            client_secret_version=float(settings.trigger_token_version),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["client_secret"]),
        )
        password = random.RandomPassword(
            f"{name}-api-password", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.access_client_id = token.client_id
        self.access_client_secret = pulumi.Output.secret(token.client_secret)
        self.access_token_id = token.id
        self.api_username = settings.trigger_api_user
        self.api_password = pulumi.Output.secret(password.result)
        self.register_outputs(
            {
                "access_client_id": self.access_client_id,
                "access_client_secret": self.access_client_secret,
                "api_username": self.api_username,
                "api_password": self.api_password,
            }
        )


# --- Cloudflare: tunnel, DNS, Access -------------------------------------------------------------


@dataclass(frozen=True)
class AirflowTunnelArgs:
    stack: StackConfig
    plan: TunnelPlan
    trigger_token_id: pulumi.Output[str]
    identity_provider_id: pulumi.Output[str] | None = None


class AirflowTunnel(pulumi.ComponentResource):
    tunnel_id: pulumi.Output[str]
    connector_token: pulumi.Output[str]
    ui_url: str

    def __init__(
        self, name: str, args: AirflowTunnelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("airgate:airflow:AirflowTunnel", name, None, opts)
        stack, plan = args.stack, args.plan
        child = pulumi.ResourceOptions(parent=self)
        secret = random.RandomBytes(f"{name}-secret", length=32, opts=child)
        tunnel = cloudflare.ZeroTrustTunnelCloudflared(
            f"{name}-tunnel",
            account_id=stack.account_id,
            name=plan.tunnel_name,
            config_src="cloudflare",
            tunnel_secret=secret.base64,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["tunnel_secret"]),
        )
        cloudflare.ZeroTrustTunnelCloudflaredConfig(
            f"{name}-config",
            account_id=stack.account_id,
            tunnel_id=tunnel.id,
            config={"ingresses": [_ingress_rule(rule) for rule in plan.ingress]},
            opts=child,
        )
        for role, host in (("ui", plan.ui_hostname), ("api", plan.api_hostname)):
            cloudflare.DnsRecord(
                f"{name}-dns-{role}",
                zone_id=stack.zone_id,
                name=host,
                type="CNAME",
                content=tunnel.id.apply(tunnel_target),
                proxied=True,
                ttl=1,
                comment="airgate: Airflow through the Cloudflare Tunnel",
                opts=child,
            )

        includes: list[cloudflare.ZeroTrustAccessPolicyIncludeArgsDict] = [
            {"email": {"email": email}} for email in plan.ui_emails
        ]
        if args.identity_provider_id is not None:
            includes += [
                {
                    "oidc": {
                        "claim_name": stack.identity.oidc.roles_claim,
                        "claim_value": group,
                        "identity_provider_id": args.identity_provider_id,
                    }
                }
                for group in plan.ui_groups
            ]
        if not includes:
            # An Access policy with no include rule is refused by Cloudflare at apply time; say why now.
            raise ValueError(
                "airflow.ui_access_roles name only IdP groups, but no identity provider id was passed to "
                "deploy_airflow(identity_provider_id=...); pass it, or add emails to those roles"
            )
        people = cloudflare.ZeroTrustAccessPolicy(
            f"{name}-ui-people",
            account_id=stack.account_id,
            name=f"{plan.tunnel_name}-ui-people",
            decision="allow",
            includes=includes,
            session_duration="8h",
            opts=child,
        )
        machines = cloudflare.ZeroTrustAccessPolicy(
            f"{name}-api-trigger",
            account_id=stack.account_id,
            name=f"{plan.tunnel_name}-api-trigger",
            decision="non_identity",
            includes=[{"service_token": {"token_id": args.trigger_token_id}}],
            opts=child,
        )
        self_hosted_app(
            f"{name}-ui-access",
            account_id=stack.account_id,
            app_name=f"{plan.tunnel_name}-ui",
            hostname=plan.ui_hostname,
            policy_ids=[people.id],
            identity_provider_id=args.identity_provider_id,
            launcher_visible=True,
            opts=child,
        )
        self_hosted_app(
            f"{name}-api-access",
            account_id=stack.account_id,
            app_name=f"{plan.tunnel_name}-api",
            hostname=plan.api_hostname,
            policy_ids=[machines.id],
            identity_provider_id=None,
            session_duration="1h",
            opts=child,
        )
        self.tunnel_id = tunnel.id
        self.connector_token = pulumi.Output.secret(
            pulumi.Output.all(tunnel.id, secret.base64).apply(
                lambda parts: connector_token(stack.account_id, parts[0], parts[1])
            )
        )
        self.ui_url = f"https://{plan.ui_hostname}"
        self.register_outputs({"tunnel_id": self.tunnel_id, "ui_url": self.ui_url})


# --- Kubernetes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AirflowOnKubernetesArgs:
    stack: StackConfig
    connections: list[ConnectionPlan]
    connection_values: dict[str, pulumi.Output[str]]
    """AIRFLOW_CONN_<ID> → connection JSON (secret Output)."""
    tunnel_token: pulumi.Output[str]
    trigger_api_password: pulumi.Output[str]
    database_url: pulumi.Output[str] | None = None
    kubeconfig: pulumi.Output[str] | None = None


class AirflowOnKubernetes(pulumi.ComponentResource):
    namespace: str
    release_status: pulumi.Output[Any]

    def __init__(
        self, name: str, args: AirflowOnKubernetesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("airgate:airflow:AirflowOnKubernetes", name, None, opts)
        stack = args.stack
        settings = stack.airflow
        assert settings is not None and settings.chart is not None
        names = secret_names(settings)
        missing = {plan.env_name for plan in args.connections} ^ set(args.connection_values)
        assert not missing, f"connection values do not match the plan: {sorted(missing)}"

        provider = k8s.Provider(
            f"{name}-cluster",
            kubeconfig=args.kubeconfig,
            context=settings.kubernetes.context,
            opts=pulumi.ResourceOptions(parent=self),
        )
        protect = stack.protected

        ns_manifest = namespace_manifest(settings)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=ns_manifest["metadata"],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=protect),
        )
        in_ns = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace])

        fernet = random.RandomBytes(f"{name}-fernet-key", length=32, opts=pulumi.ResourceOptions(parent=self))
        api_key = random.RandomPassword(
            f"{name}-api-secret-key", length=64, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        jwt = random.RandomPassword(
            f"{name}-jwt-secret", length=64, special=False, opts=pulumi.ResourceOptions(parent=self)
        )

        def secret(role: str, secret_name: str, values: dict[str, pulumi.Input[str]]) -> k8s.core.v1.Secret:
            return k8s.core.v1.Secret(
                f"{name}-{role}",
                metadata={
                    "name": secret_name,
                    "namespace": settings.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "airgate"},
                },
                type="Opaque",
                string_data={key: pulumi.Output.secret(value) for key, value in values.items()},
                opts=pulumi.ResourceOptions.merge(
                    in_ns, pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"])
                ),
            )

        secrets = [
            secret("fernet-key", names.fernet_key, {SecretNames.FERNET_KEY: fernet.base64.apply(_fernet)}),
            secret("api-secret-key", names.api_secret_key, {SecretNames.API_SECRET_KEY: api_key.result}),
            secret("jwt-secret", names.jwt_secret, {SecretNames.JWT_SECRET: jwt.result}),
            secret("connections", names.connections, dict(sorted(args.connection_values.items()))),
            secret(
                "trigger-user",
                names.trigger_user,
                {SecretNames.TRIGGER_PASSWORD_KEY: args.trigger_api_password},
            ),
        ]
        tunnel_secret = secret(
            "cloudflared-token", names.tunnel_token, {SecretNames.TUNNEL_TOKEN_KEY: args.tunnel_token}
        )
        if settings.database is not None and settings.database.url is not None:
            assert args.database_url is not None, "the stack names a database secret; pass its value"
            secrets.append(
                secret("metadata-db", names.metadata, {SecretNames.METADATA_KEY: args.database_url})
            )

        chart = settings.chart
        oci = chart.repository.startswith("oci://")
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name=settings.release_name,
            namespace=settings.namespace,
            chart=f"{chart.repository}/{chart.name}" if oci else chart.name,
            repository_opts=None if oci else {"repo": chart.repository},
            version=chart.version,
            values=plan_helm_values(stack, args.connections),
            atomic=False,
            cleanup_on_fail=False,
            timeout=1200,
            # Protected with the namespace: deleting the release in prod takes every Airflow pod with it.
            opts=pulumi.ResourceOptions.merge(
                in_ns, pulumi.ResourceOptions(depends_on=[namespace, *secrets], protect=protect)
            ),
        )

        deployment = cloudflared_manifest(settings)
        k8s.apps.v1.Deployment(
            f"{name}-cloudflared",
            metadata=deployment["metadata"],
            spec=deployment["spec"],
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[tunnel_secret])),
        )
        policy = network_policy_manifest(settings)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-api-server-ingress",
            metadata=policy["metadata"],
            spec=policy["spec"],
            opts=in_ns,
        )
        self.namespace = settings.namespace
        self.release_status = release.status
        self.register_outputs({"namespace": self.namespace, "release_status": self.release_status})
