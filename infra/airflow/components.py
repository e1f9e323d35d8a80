"""The Airflow components: they turn their part of `AirflowPlan` (infra/airflow/plan.py) into
resources, and decide nothing themselves.

- `TriggerUpstreamIdentity` (`airgate:airflow:TriggerUpstreamIdentity`): what the DAG-trigger Worker
  presents upstream: its own Access service token for the tunnel hostname, and the password of its
  Airflow API user. Created before the gateways so the trigger Worker can bind them.
- `AirflowTunnel` (`airgate:airflow:AirflowTunnel`): the Cloudflare Tunnel (`config_src` cloudflare),
  its one config resource, DNS records, and an Access app on each hostname (SSO for the UI; the
  trigger token only for the API).
- `AirflowOnKubernetes` (`airgate:airflow:AirflowOnKubernetes`): namespace, random stable keys, the
  Secrets, the bundled PostgreSQL (dev), the official chart through `helm.v4.Chart`, the identity
  bootstrap Job, the cloudflared Deployment and the NetworkPolicy, all through one explicit
  Kubernetes provider. It receives `KubernetesPlan` (infra/airflow/plan.py) and secret Outputs only.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.airflow.jobs_plan import INPUTS_ANNOTATION
from infra.airflow.kubernetes_plan import SecretNames, rotation_annotations
from infra.airflow.plan import KubernetesPlan, TriggerIdentityPlan
from infra.airflow.tunnel_plan import TunnelPlan, connector_token, tunnel_target
from infra.components.access_app import self_hosted_app
from infra.components.options import options
from infra.components.service_token import service_token
from infra.stack_plan import UNPROTECTED, Protection


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
    plan: TriggerIdentityPlan


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
        plan = args.plan
        token = service_token(
            f"{name}-access-token", plan.account_id, plan.token, pulumi.ResourceOptions(parent=self)
        )
        # A new `password_version` is a new password (keepers); the bootstrap Job applies it.
        password = random.RandomPassword(
            f"{name}-api-password",
            length=40,
            special=False,
            keepers={"version": str(plan.password_version)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.access_client_id = token.client_id
        self.access_client_secret = pulumi.Output.secret(token.client_secret)
        self.access_token_id = token.id
        self.api_username = plan.api_user
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
        plan = args.plan
        child = pulumi.ResourceOptions(parent=self)
        secret = random.RandomBytes(f"{name}-secret", length=32, opts=child)
        tunnel = cloudflare.ZeroTrustTunnelCloudflared(
            f"{name}-tunnel",
            account_id=plan.account_id,
            name=plan.tunnel_name,
            config_src="cloudflare",
            tunnel_secret=secret.base64,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["tunnel_secret"]),
        )
        cloudflare.ZeroTrustTunnelCloudflaredConfig(
            f"{name}-config",
            account_id=plan.account_id,
            tunnel_id=tunnel.id,
            config={"ingresses": [_ingress_rule(rule) for rule in plan.ingress]},
            opts=child,
        )
        for role, host in (("ui", plan.ui_hostname), ("api", plan.api_hostname)):
            cloudflare.DnsRecord(
                f"{name}-dns-{role}",
                zone_id=plan.zone_id,
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
                        "claim_name": plan.roles_claim,
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
            account_id=plan.account_id,
            name=f"{plan.tunnel_name}-ui-people",
            decision="allow",
            includes=includes,
            session_duration="8h",
            opts=child,
        )
        machines = cloudflare.ZeroTrustAccessPolicy(
            f"{name}-api-trigger",
            account_id=plan.account_id,
            name=f"{plan.tunnel_name}-api-trigger",
            decision="non_identity",
            includes=[{"service_token": {"token_id": args.trigger_token_id}}],
            opts=child,
        )
        self_hosted_app(
            f"{name}-ui-access",
            account_id=plan.account_id,
            app_name=f"{plan.tunnel_name}-ui",
            hostname=plan.ui_hostname,
            policy_ids=[people.id],
            identity_provider_id=args.identity_provider_id,
            launcher_visible=True,
            opts=child,
        )
        self_hosted_app(
            f"{name}-api-access",
            account_id=plan.account_id,
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
                lambda parts: connector_token(plan.account_id, parts[0], parts[1])
            )
        )
        self.ui_url = f"https://{plan.ui_hostname}"
        self.register_outputs({"tunnel_id": self.tunnel_id, "ui_url": self.ui_url})


# --- Kubernetes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AirflowOnKubernetesArgs:
    plan: KubernetesPlan
    connection_values: dict[str, pulumi.Output[str]]
    """AIRFLOW_CONN_<ID> → connection JSON (secret Output)."""
    tunnel_token: pulumi.Output[str]
    trigger_api_password: pulumi.Output[str]
    sign_in_client_secret: pulumi.Output[str]
    database_url: pulumi.Output[str] | None = None
    kubeconfig: pulumi.Output[str] | None = None
    chart_archive: str | None = None
    """A local copy of the pinned chart release (checked by infra/airflow/chart.py), or None to
    fetch it from the stack's chart repository."""


def _digest(values: pulumi.Output[Any]) -> pulumi.Output[str]:
    """A digest of secret inputs, for pod annotations: pods restart when a credential they read as
    env changes (env from a Secret is read at container start only)."""
    digest = values.apply(
        lambda parts: hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    )
    # A one-way digest of high-entropy values reveals none of them; kept plain so the Helm values
    # stay plain (and reviewable) as a whole.
    return pulumi.Output.unsecret(digest)


class AirflowOnKubernetes(pulumi.ComponentResource):
    namespace: str

    def __init__(
        self, name: str, args: AirflowOnKubernetesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("airgate:airflow:AirflowOnKubernetes", name, None, opts)
        plan = args.plan
        names = plan.secret_names
        missing = set(plan.connection_env_names) ^ set(args.connection_values)
        assert not missing, f"connection values do not match the plan: {sorted(missing)}"

        provider = k8s.Provider(
            f"{name}-cluster",
            kubeconfig=args.kubeconfig,
            context=plan.kube_context,
            # pulumi-kubernetes replaces a ConfigMap or Secret whose data changes: delete, then
            # create under the same name, so pods starting in between miss it, and in a protected
            # stack the chart's objects refuse it (a gateway added or removed could not reach
            # prod's Airflow). Updated in place instead; pods roll by their digest annotations.
            enable_config_map_mutable=True,
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        manifests = {(m["kind"], m["metadata"]["name"]): m for m in plan.manifests}

        ns_manifest = next(m for m in plan.manifests if m["kind"] == "Namespace")
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=ns_manifest["metadata"],
            opts=options(self, plan.cluster_protection, provider=provider),
        )
        in_ns = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace])

        # The fernet key encrypts connections and variables in the metadata database: losing it
        # loses them, so in prod it is protected and its Secret outlives a deletion by Pulumi.
        fernet = random.RandomBytes(
            f"{name}-fernet-key", length=32, opts=options(self, plan.cluster_protection)
        )
        api_key = random.RandomPassword(
            f"{name}-api-secret-key", length=64, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        jwt = random.RandomPassword(
            f"{name}-jwt-secret", length=64, special=False, opts=pulumi.ResourceOptions(parent=self)
        )

        def secret(
            role: str,
            secret_name: str,
            values: dict[str, pulumi.Input[str]],
            protection: Protection = UNPROTECTED,
        ) -> k8s.core.v1.Secret:
            shape = manifests[("Secret", secret_name)]
            assert set(shape["stringData"]) == set(values), f"secret {secret_name}: keys differ from the plan"
            return k8s.core.v1.Secret(
                f"{name}-{role}",
                metadata=shape["metadata"],
                type="Opaque",
                string_data={key: pulumi.Output.secret(value) for key, value in values.items()},
                opts=pulumi.ResourceOptions.merge(
                    in_ns, options(self, protection, additional_secret_outputs=["data", "stringData"])
                ),
            )

        database_url = args.database_url
        postgres_password: random.RandomPassword | None = None
        if plan.postgres_url_template is not None:
            template = plan.postgres_url_template
            postgres_password = random.RandomPassword(
                f"{name}-postgres-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            database_url = postgres_password.result.apply(lambda password: template.format(password=password))
        assert database_url is not None, "the stack names a database secret; pass its value"

        secrets = [
            secret(
                "fernet-key",
                names.fernet_key,
                {SecretNames.FERNET_KEY: fernet.base64.apply(_fernet)},
                plan.fernet_protection,
            ),
            secret("api-secret-key", names.api_secret_key, {SecretNames.API_SECRET_KEY: api_key.result}),
            secret("jwt-secret", names.jwt_secret, {SecretNames.JWT_SECRET: jwt.result}),
            secret("connections", names.connections, dict(sorted(args.connection_values.items()))),
            secret("ui-oidc", names.sign_in, {SecretNames.SIGN_IN_SECRET_KEY: args.sign_in_client_secret}),
            secret("metadata-db", names.metadata, {SecretNames.METADATA_KEY: database_url}),
        ]
        trigger_secret = secret(
            "trigger-user", names.trigger_user, {SecretNames.TRIGGER_PASSWORD_KEY: args.trigger_api_password}
        )
        tunnel_secret = secret(
            "cloudflared-token", names.tunnel_token, {SecretNames.TUNNEL_TOKEN_KEY: args.tunnel_token}
        )
        database: list[pulumi.Resource] = []
        if postgres_password is not None:
            password_secret = secret(
                "postgres-password",
                names.postgres,
                {SecretNames.POSTGRES_PASSWORD_KEY: postgres_password.result},
            )
            service, statefulset, database_policy = plan.postgres
            database.append(
                k8s.core.v1.Service(
                    f"{name}-postgres-service",
                    metadata=service["metadata"],
                    spec=service["spec"],
                    opts=in_ns,
                )
            )
            database.append(
                k8s.apps.v1.StatefulSet(
                    f"{name}-postgres",
                    metadata=statefulset["metadata"],
                    spec=statefulset["spec"],
                    opts=pulumi.ResourceOptions.merge(
                        in_ns, options(self, plan.database_protection, depends_on=[password_secret])
                    ),
                )
            )
            k8s.networking.v1.NetworkPolicy(
                f"{name}-postgres-ingress",
                metadata=database_policy["metadata"],
                spec=database_policy["spec"],
                opts=in_ns,
            )

        if plan.broker_url_template is not None:
            # Celery's Redis password and broker URL, kept in state (the chart would make new ones).
            broker = plan.broker_url_template
            redis_password = random.RandomPassword(
                f"{name}-redis-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
            )
            secrets.append(
                secret(
                    "redis-password",
                    names.redis_password,
                    {SecretNames.REDIS_PASSWORD_KEY: redis_password.result},
                )
            )
            secrets.append(
                secret(
                    "broker-url",
                    names.broker_url,
                    {
                        SecretNames.BROKER_URL_KEY: redis_password.result.apply(
                            lambda p: broker.format(password=p)
                        )
                    },
                )
            )

        # Long-running pods read their Secrets as env at start: a digest of what they read rolls them
        # when a connection or the sign-in secret rotates (task pods are new each time anyway).
        values = rotation_annotations(
            plan.helm_values,
            _digest(pulumi.Output.all(*[args.connection_values[k] for k in sorted(args.connection_values)])),
            _digest(pulumi.Output.all(args.sign_in_client_secret)),
        )
        # The chart's objects as Pulumi's own (helm.v4.Chart, README "Which Helm resource"): a
        # preview shows each object, and an immutable one that changes (the migration Job on an image
        # bump) is planned as a replacement instead of failing a `helm upgrade`.
        if args.chart_archive is not None:
            source: dict[str, Any] = {"chart": args.chart_archive}
        elif plan.chart_repository.startswith("oci://"):
            source = {"chart": f"{plan.chart_repository}/{plan.chart_name}", "version": plan.chart_version}
        else:
            source = {
                "chart": plan.chart_name,
                "repository_opts": {"repo": plan.chart_repository},
                "version": plan.chart_version,
            }
        release = k8s.helm.v4.Chart(
            f"{name}-chart",
            name=plan.release_name,
            namespace=plan.namespace,
            values=values,
            **source,
            # Not protected, even in prod: its objects inherit the flag, and a protected migration Job
            # could never be replaced for a new image. It holds no data; the namespace is protected.
            opts=pulumi.ResourceOptions.merge(
                in_ns,
                pulumi.ResourceOptions(depends_on=[namespace, *secrets, *database]),
            ),
        )

        # After the release (its migration Job); replaced, and so run again, when its inputs change:
        # the user is in the container's args, the password's digest on the pod template.
        job = copy.deepcopy(plan.bootstrap_job)
        job["spec"]["template"]["metadata"]["annotations"] = {
            INPUTS_ANNOTATION: _digest(pulumi.Output.all(args.trigger_api_password))
        }
        k8s.batch.v1.Job(
            f"{name}-bootstrap",
            metadata=job["metadata"],
            spec=job["spec"],
            opts=pulumi.ResourceOptions.merge(
                in_ns,
                pulumi.ResourceOptions(
                    depends_on=[release, trigger_secret],
                    delete_before_replace=True,
                    replace_on_changes=["spec"],
                ),
            ),
        )

        deployment = next(m for m in plan.manifests if m["kind"] == "Deployment")
        k8s.apps.v1.Deployment(
            f"{name}-cloudflared",
            metadata=deployment["metadata"],
            spec=deployment["spec"],
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[tunnel_secret])),
        )
        policy = next(m for m in plan.manifests if m["kind"] == "NetworkPolicy")
        k8s.networking.v1.NetworkPolicy(
            f"{name}-api-server-ingress",
            metadata=policy["metadata"],
            spec=policy["spec"],
            opts=in_ns,
        )
        self.namespace = plan.namespace
        self.register_outputs({"namespace": self.namespace})
