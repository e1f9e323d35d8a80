"""The `airflow:` section of a stack: how Airflow runs on Kubernetes and which roles its tasks act as.

It decides what a valid Airflow deployment is: which cluster and namespace, which chart (repository
and an exactly pinned version), which image (a derived one that installs `airflow-gateway-auth`),
which executor, where the metadata database lives (a Pulumi secret; the chart's bundled Postgres only
outside prod), the hostnames of the UI and of the private API tunnel, and the task roles: the roles
Airflow's tasks may act as at the gateways, each with its own machine identity.

Rules that only need this section live in validators here; rules that need the whole stack (a task
role exists and has the right kind of identity, hostnames sit in the zone, prod has a real database)
live in `check_airflow(stack)`, which the stack model calls after its own rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from infra.config.errors import StackRuleError
from infra.config.sections import AuthMode, DagGrant, EnvironmentKind, Gateway, Role, Rotation

NAME = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
SECRET_KEY = r"^[A-Za-z][A-Za-z0-9]*$"  # noqa: S105 - a pattern
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
EXECUTORS = ("KubernetesExecutor", "CeleryExecutor", "LocalExecutor", "CeleryExecutor,KubernetesExecutor")
"""Executors the chart runs with Airflow 3 (CeleryKubernetesExecutor is gone: use the pair)."""
Executor = Literal[
    "KubernetesExecutor", "CeleryExecutor", "LocalExecutor", "CeleryExecutor,KubernetesExecutor"
]
PINNED_IMAGE = r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
"""`repository:tag`; `_pinned_tag` also refuses the moving `latest`."""
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


def _pinned_tag(image: str) -> str:
    if image.rsplit(":", 1)[1] == "latest":
        raise ValueError(f"{image!r} is not pinned: write a version tag (latest moves under you)")
    return image


PinnedImage = Annotated[str, Field(pattern=PINNED_IMAGE), AfterValidator(_pinned_tag)]
AirflowRole = Literal["Admin", "Op", "User", "Viewer"]
Component = Literal["api_server", "scheduler", "dag_processor", "triggerer", "workers"]
EXACT_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
HOSTNAME = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")


class StackConfig(Protocol):
    """What the whole-stack Airflow rules read of a stack. `infra.config.model.StackConfig` fits it;
    declaring it here keeps the imports one-way (model -> airflow_model -> sections)."""

    @property
    def environment(self) -> EnvironmentKind: ...
    @property
    def zone(self) -> str: ...
    @property
    def roles(self) -> Mapping[str, Role]: ...
    @property
    def gateways(self) -> Mapping[str, Gateway]: ...
    @property
    def dag_grants(self) -> Sequence[DagGrant]: ...
    @property
    def airflow(self) -> AirflowSettings | None: ...
    def gateway_auth(self, gateway: Gateway) -> AuthMode: ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AirflowSecretRef(_Strict):
    """Names a Pulumi secret config key (`airgate:<secret>`); the value never sits in a stack file."""

    secret: Annotated[str, Field(pattern=SECRET_KEY)]

    @model_validator(mode="before")
    @classmethod
    def _not_plain_text(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                "a secret is written in plain text; only a Pulumi secret is allowed: remove it, run "
                "`pulumi config set --secret airgate:<key>` and write {secret: <key>}"
            )
        return value


class KubernetesTarget(_Strict):
    """Which cluster: a kubeconfig kept as a Pulumi secret, and/or a context name in it. Neither set
    means the ambient kubeconfig (KUBECONFIG or ~/.kube/config), which is what a developer expects."""

    kubeconfig: AirflowSecretRef | None = None
    context: str | None = None


class ChartSettings(_Strict):
    """The official Apache Airflow chart. `repository` may be a mirror (https:// or oci://)."""

    repository: str = "https://airflow.apache.org"
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")] = "airflow"
    version: str

    @field_validator("repository")
    @classmethod
    def _repository_url(cls, value: str) -> str:
        if not re.match(r"^(https://|oci://)[^\s/]+(/\S*)?$", value):
            raise ValueError(
                "chart.repository must be an https:// or oci:// URL (the official one is "
                "https://airflow.apache.org)"
            )
        return value.rstrip("/")

    @field_validator("version")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not EXACT_VERSION.match(value):
            raise ValueError(
                f"chart.version {value!r} is not pinned; write one exact chart version such as "
                "1.22.0 (ranges and 'latest' let an upgrade change the deployment unseen)"
            )
        return value


class ImageSettings(_Strict):
    """The Airflow image the chart runs. It must contain `airflow-gateway-auth` (the oidc-mode
    connections use its connection type), so production points this at a derived image built from
    `airflow_gateway_auth/Dockerfile`; `_PIP_ADDITIONAL_REQUIREMENTS` installs at every pod start and is
    for development only."""

    repository: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9]$")]
    tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    airflow_version: Annotated[str, Field(pattern=r"^3\.[0-9]+\.[0-9]+$")] = "3.3.2"
    """The Airflow version inside the image; the chart decides some templates on it."""
    pip_additional_requirements: str | None = None
    """Development only: packages pip-installs at every pod start. Refused in prod."""


class MetadataDatabase(_Strict):
    """Either an external Postgres URL held as a Pulumi secret, or (outside prod) a small PostgreSQL
    StatefulSet airgate owns. Not the chart's Bitnami subchart: its image is gone (apache/airflow#57328)."""

    url: AirflowSecretRef | None = None
    bundled_postgres: bool = False
    postgres_image: PinnedImage = "postgres:17.6-bookworm"
    """The bundled database's image (the Docker official image), pinned by version."""
    storage_class: Annotated[str, Field(pattern=DNS_LABEL)] | None = None
    """The bundled database's volume class; unset means the cluster's default StorageClass."""
    storage_size: Annotated[str, Field(pattern=QUANTITY)] = "8Gi"

    @model_validator(mode="after")
    def _one_source(self) -> MetadataDatabase:
        if self.url is None and not self.bundled_postgres:
            raise StackRuleError(
                ("url",),
                "no metadata database is configured",
                "write url: {secret: airflowDbUrl} and run `pulumi config set --secret "
                "airgate:airflowDbUrl postgresql://...`, or (outside prod) bundled_postgres: true",
            )
        if self.url is not None and self.bundled_postgres:
            raise StackRuleError(
                ("bundled_postgres",),
                "both an external database url and the bundled Postgres are set",
                "keep one: remove bundled_postgres, or remove url",
            )
        return self


class TaskRole(_Strict):
    """A role Airflow's tasks may act as. Its identity at the gateways is the role's own service token
    (gateways behind Access) and/or its own OAuth2 client (gateways in oidc mode). When the role names
    exactly one token or client, it is picked without being repeated here."""

    service_token: Annotated[str, Field(pattern=NAME)] | None = None
    oidc_client: str | None = None
    oidc_client_secret: AirflowSecretRef | None = None


class OAuth2Settings(_Strict):
    """How the task roles' OAuth2 clients get tokens (oidc-mode gateways)."""

    token_url: str | None = None
    """Defaults to the Okta-style `<issuer>/v1/token`."""
    audience_parameter: Literal["resource", "audience", "none"] = "resource"
    """How the gateway audience is requested: RFC 8707 `resource`, Auth0-style `audience`, or not."""
    scope: str | None = None
    refresh_margin_seconds: Annotated[int, Field(ge=0, le=3600)] = 60

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("oauth2.token_url must be an absolute http(s) URL")
        return value


class SignIn(_Strict):
    """How people sign in to Airflow's UI and API: FAB's OAuth login against the stack's OpenID
    provider (`identity.oidc.issuer`, the same as the gateways'), with this client registered there
    (authorization code flow, redirect `https://<ui_hostname>/auth/oauth-authorized/airgate`)."""

    client_id: Annotated[str, Field(min_length=1, max_length=200)]
    client_secret: AirflowSecretRef
    scope: str = "openid email profile groups"


class Resources(_Strict):
    """Kubernetes resource requests (and an optional memory limit) for one component."""

    cpu: Annotated[str, Field(pattern=QUANTITY)]
    memory: Annotated[str, Field(pattern=QUANTITY)]
    memory_limit: Annotated[str, Field(pattern=QUANTITY)] | None = None


class RemoteLogs(_Strict):
    """Task logs shipped to object storage (task pods' own log volume is an emptyDir that vanishes
    with the pod). `connection_id` names an Airflow connection the image or a Secret provides."""

    base_folder: Annotated[str, Field(pattern=r"^(s3|gs|wasb|oss)://[^\s]+$")]
    connection_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class TriggererStorage(_Strict):
    """The triggerer's StatefulSet volume (its logs)."""

    size: Annotated[str, Field(pattern=QUANTITY)] = "10Gi"
    storage_class: Annotated[str, Field(pattern=DNS_LABEL)] | None = None


class AirflowSettings(_Strict):
    """Field names are the keys under `airgate:airflow:`."""

    runtime: Literal["kubernetes", "standalone"] = "kubernetes"
    """`standalone` is the local environment's Airflow (one machine, no cluster): only `local` may use it."""
    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = "airflow"
    release_name: Annotated[str, Field(pattern=DNS_LABEL, max_length=53)] = "airflow"
    kubernetes: KubernetesTarget = KubernetesTarget()
    chart: ChartSettings | None = None
    image: ImageSettings | None = None
    executor: Executor = "KubernetesExecutor"
    database: MetadataDatabase | None = None
    task_roles: dict[Annotated[str, Field(pattern=NAME)], TaskRole]
    default_task_role: Annotated[str, Field(pattern=NAME)] | None = None
    """Its connections are `gw_<gateway>`; other roles' are `gw_<gateway>_as_<role>`."""
    oauth2: OAuth2Settings = OAuth2Settings()
    ui_hostname: str | None = None
    api_hostname: str | None = None
    ui_access_roles: tuple[Annotated[str, Field(pattern=NAME)], ...] = ()
    """People roles (IdP groups, emails) let through Access to the Airflow UI."""
    cloudflared_image: PinnedImage = "cloudflare/cloudflared:2025.11.1"
    cloudflared_replicas: Annotated[int, Field(ge=1, le=10)] = 2
    trigger_api_user: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{2,63}$")] = "airgate-trigger"
    """The Airflow user the DAG-trigger gateway signs in as (FAB auth manager, role User)."""
    trigger_token_duration: Annotated[str, Field(pattern=r"^[1-9][0-9]*h$")] = "8760h"  # noqa: S105
    trigger_token_rotation: Rotation = Rotation()
    """Bump `version` (with `previous_secret_expires_at`, as for the stack's service tokens) to issue
    the trigger gateway's tunnel service token a new secret."""
    trigger_password_version: Annotated[int, Field(ge=1)] = 1
    """Bump to give the trigger gateway's Airflow user a new password (applied on the next up)."""
    sign_in: SignIn | None = None
    """People's sign-in to the UI and API (required on Kubernetes)."""
    ui_roles: dict[AirflowRole, tuple[Annotated[str, Field(pattern=NAME)], ...]] = Field(default_factory=dict)
    """Airflow role -> the stack's people roles whose IdP groups get it, e.g. {Admin: [platform-admin]}.
    A person in none of the mapped groups is refused at sign-in."""
    remote_logs: RemoteLogs | None = None
    triggerer: TriggererStorage = TriggererStorage()
    image_pull_secret: Annotated[str, Field(pattern=DNS_LABEL)] | None = None
    """An existing `kubernetes.io/dockerconfigjson` Secret in the namespace, for a private registry
    (the chart's `registry.secretName`: one Secret for every Airflow pod, task pods included)."""
    resources: dict[Component, Resources] = Field(default_factory=dict)
    """Requests per component: api_server, scheduler, dag_processor, triggerer, workers (task pods)."""

    @field_validator("ui_hostname", "api_hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and not HOSTNAME.match(value):
            raise ValueError("write a DNS name such as airflow.dev.acme-data.com")
        return value

    @model_validator(mode="after")
    def _complete(self) -> AirflowSettings:
        if not self.task_roles:
            raise StackRuleError(
                ("task_roles",),
                "no task role is declared, so Airflow gets no gateway connection",
                "name at least one role Airflow's tasks act as, e.g. task_roles: {airflow-worker: {}}",
            )
        default = self.default_task_role
        if default is not None and default not in self.task_roles:
            raise StackRuleError(
                ("default_task_role",),
                f"{default!r} is not one of the task roles",
                f"use one of: {', '.join(sorted(self.task_roles))}",
            )
        if self.runtime == "standalone":
            return self
        for key in ("chart", "image", "database", "ui_hostname", "api_hostname", "sign_in"):
            if getattr(self, key) is None:
                raise StackRuleError(
                    (key,),
                    f"Airflow on Kubernetes needs `{key}`",
                    _MISSING_FIX[key],
                )
        if self.ui_hostname == self.api_hostname:
            raise StackRuleError(
                ("api_hostname",),
                "the API hostname equals the UI hostname",
                "give the private API its own name (e.g. airflow-api.<zone>): it has its own Access app",
            )
        return self

    @property
    def main_task_role(self) -> str:
        return self.default_task_role or sorted(self.task_roles)[0]


_MISSING_FIX = {
    "chart": "add chart: {version: 1.22.0} (an exact chart version; repository defaults to the official one)",
    "image": "add image: {repository: <registry>/airflow-airgate, tag: <tag>} built from "
    "airflow_gateway_auth/Dockerfile",
    "database": "add database: {url: {secret: airflowDbUrl}} (or bundled_postgres: true outside prod)",
    "ui_hostname": "add ui_hostname: airflow.<zone> (served through the tunnel behind Access SSO)",
    "api_hostname": "add api_hostname: airflow-api.<zone> (the trigger gateway's private upstream)",
    "sign_in": "add sign_in: {client_id: <an OAuth client of identity.oidc.issuer>, client_secret: "
    "{secret: airflowUiOidcSecret}} so people sign in with the stack's identity provider",
}


def airflow_secret_keys(settings: AirflowSettings | None) -> set[str]:
    """Every `airgate:` secret key the airflow section refers to (for the loader's missing-secret
    check and for the offline plan's placeholders)."""
    if settings is None:
        return set()
    keys: set[str] = set()
    if settings.runtime == "kubernetes":
        if settings.database is not None and settings.database.url is not None:
            keys.add(settings.database.url.secret)
        if settings.kubernetes.kubeconfig is not None:
            keys.add(settings.kubernetes.kubeconfig.secret)
        if settings.sign_in is not None:
            keys.add(settings.sign_in.client_secret.secret)
    for role in settings.task_roles.values():
        if role.oidc_client_secret is not None:
            keys.add(role.oidc_client_secret.secret)
    return keys


def reachable_gateways(stack: StackConfig, role: str) -> list[str]:
    """Gateways on which `role` is granted at least one route or DAG: only those get a connection,
    so the connection list is also the list of what Airflow may call."""
    names = []
    for name in sorted(stack.gateways):
        gateway = stack.gateways[name]
        routes = any(role in route.roles for route in gateway.routes.values())
        grants = any(g.gateway == name and g.role == role for g in stack.dag_grants)
        if routes or grants:
            names.append(name)
    return names


def needs_service_token(stack: StackConfig, gateway: Gateway) -> bool:
    return gateway.behind_access


def needs_oauth2_client(stack: StackConfig, gateway: Gateway) -> bool:
    return stack.gateway_auth(gateway) == "oidc"


def task_role_service_token(stack: StackConfig, role: str) -> str | None:
    assert stack.airflow is not None
    chosen = stack.airflow.task_roles[role].service_token
    tokens = stack.roles[role].service_tokens
    return chosen if chosen is not None else (tokens[0] if len(tokens) == 1 else None)


def task_role_oidc_client(stack: StackConfig, role: str) -> str | None:
    assert stack.airflow is not None
    chosen = stack.airflow.task_roles[role].oidc_client
    clients = stack.roles[role].oidc_clients
    return chosen if chosen is not None else (clients[0] if len(clients) == 1 else None)


def check_airflow(stack: StackConfig) -> None:
    """Rules of the airflow section that need the whole stack. Raises `StackRuleError` with a key
    path starting at `airflow`."""
    settings = stack.airflow
    if settings is None:
        return
    _check_runtime(stack, settings)
    _check_task_roles(stack, settings)
    if settings.runtime == "kubernetes":
        _check_hostnames(stack, settings)
        _check_prod(stack, settings)
        _check_ui_roles(stack, settings)
        _check_sign_in_roles(stack, settings)


def _check_runtime(stack: StackConfig, settings: AirflowSettings) -> None:
    if settings.runtime == "standalone" and stack.environment != "local":
        raise StackRuleError(
            ("airflow", "runtime"),
            f"runtime 'standalone' is the local environment's Airflow; a {stack.environment} stack "
            "runs Airflow on Kubernetes",
            "remove runtime (it defaults to kubernetes)",
        )


def _check_task_roles(stack: StackConfig, settings: AirflowSettings) -> None:
    for role_name in sorted(settings.task_roles):
        where = ("airflow", "task_roles", role_name)
        task_role = settings.task_roles[role_name]
        role = stack.roles.get(role_name)
        if role is None:
            raise StackRuleError(
                where,
                f"role {role_name!r} is not declared",
                f"declare it under roles, or use one of: {', '.join(sorted(stack.roles))}",
            )
        if not role.service_tokens and not role.oidc_clients:
            raise StackRuleError(
                where,
                f"role {role_name!r} has no machine identity (no service_tokens, no oidc_clients)",
                "Airflow's tasks act as machines: give the role a service token or an OAuth2 client",
            )
        if task_role.service_token is not None and task_role.service_token not in role.service_tokens:
            raise StackRuleError(
                (*where, "service_token"),
                f"service token {task_role.service_token!r} is not one of role {role_name!r}'s",
                f"use one of: {', '.join(role.service_tokens) or '(none: add one to the role)'}",
            )
        if task_role.oidc_client is not None and task_role.oidc_client not in role.oidc_clients:
            raise StackRuleError(
                (*where, "oidc_client"),
                f"OAuth2 client {task_role.oidc_client!r} is not one of role {role_name!r}'s",
                f"use one of: {', '.join(role.oidc_clients) or '(none: add one to the role)'}",
            )
        gateways = reachable_gateways(stack, role_name)
        if not gateways:
            raise StackRuleError(
                where,
                f"role {role_name!r} is granted no route or DAG on any gateway, so its connections "
                "could call nothing",
                "grant the role a route, or remove it from task_roles",
            )
        for gateway_name in gateways:
            gateway = stack.gateways[gateway_name]
            if needs_service_token(stack, gateway) and task_role_service_token(stack, role_name) is None:
                raise StackRuleError(
                    (*where, "service_token"),
                    f"gateway {gateway_name!r} sits behind Access, but role {role_name!r} has "
                    f"{'several service tokens' if role.service_tokens else 'no service token'}",
                    "add one service token to the role, or name the one to use here",
                )
            if needs_oauth2_client(stack, gateway):
                if task_role_oidc_client(stack, role_name) is None:
                    raise StackRuleError(
                        (*where, "oidc_client"),
                        f"gateway {gateway_name!r} is in oidc mode, but role {role_name!r} has "
                        f"{'several OAuth2 clients' if role.oidc_clients else 'no OAuth2 client'}",
                        "add one oidc_clients entry to the role, or name the one to use here",
                    )
                if task_role.oidc_client_secret is None and stack.environment != "local":
                    raise StackRuleError(
                        (*where, "oidc_client_secret"),
                        f"gateway {gateway_name!r} is in oidc mode, but the client secret of role "
                        f"{role_name!r} is not given",
                        "write oidc_client_secret: {secret: <key>} and set it with "
                        "`pulumi config set --secret airgate:<key>`",
                    )


def _check_hostnames(stack: StackConfig, settings: AirflowSettings) -> None:
    taken = {gateway.hostname: name for name, gateway in stack.gateways.items()}
    for key in ("ui_hostname", "api_hostname"):
        host = getattr(settings, key)
        assert isinstance(host, str)
        if not (host == stack.zone or host.endswith("." + stack.zone)):
            raise StackRuleError(
                ("airflow", key),
                f"{host!r} is outside the stack's zone {stack.zone!r}",
                f"use a name ending in .{stack.zone}",
            )
        if host in taken:
            raise StackRuleError(
                ("airflow", key),
                f"{host!r} is already gateway {taken[host]!r}'s hostname",
                "give Airflow its own hostname",
            )
    for name in sorted(stack.gateways):
        gateway = stack.gateways[name]
        expected = f"https://{settings.api_hostname}"
        if gateway.kind == "dag_trigger" and gateway.upstream.url != expected:
            raise StackRuleError(
                ("gateways", name, "upstream", "url"),
                f"the DAG-trigger gateway points at {gateway.upstream.url!r}, not at Airflow's private "
                f"API {expected!r}",
                f"set upstream.url to {expected} (the tunnel hostname), or change airflow.api_hostname",
            )


def _check_prod(stack: StackConfig, settings: AirflowSettings) -> None:
    if stack.environment != "prod":
        return
    database = settings.database
    assert database is not None
    if database.bundled_postgres or database.url is None:
        raise StackRuleError(
            ("airflow", "database", "url"),
            "a prod stack needs an external metadata database; the bundled single-pod Postgres is for "
            "trying things out",
            "write url: {secret: airflowDbUrl} and run `pulumi config set --secret airgate:airflowDbUrl "
            "postgresql://...` (remove bundled_postgres)",
        )
    image = settings.image
    assert image is not None
    if image.pip_additional_requirements:
        raise StackRuleError(
            ("airflow", "image", "pip_additional_requirements"),
            "installing packages at pod start is for development only",
            "build the derived image (airflow_gateway_auth/Dockerfile) and remove this key",
        )


def _check_sign_in_roles(stack: StackConfig, settings: AirflowSettings) -> None:
    if not settings.ui_roles:
        raise StackRuleError(
            ("airflow", "ui_roles"),
            "no Airflow role is mapped from the identity provider's groups, so nobody could sign in",
            "map Airflow roles to people roles, e.g. ui_roles: {Admin: [platform-admin], User: "
            "[data-engineer]}",
        )
    for airflow_role, names in sorted(settings.ui_roles.items()):
        for role_name in names:
            role = stack.roles.get(role_name)
            where = ("airflow", "ui_roles", airflow_role)
            if role is None or not role.groups:
                raise StackRuleError(
                    where,
                    f"{role_name!r} is not a declared role with IdP groups",
                    "map roles whose members come with groups; Airflow reads the groups claim at sign-in",
                )
            if role_name not in settings.ui_access_roles:
                raise StackRuleError(
                    where,
                    f"{role_name!r} is mapped to {airflow_role} but may not pass Access to the UI",
                    f"add {role_name} to airflow.ui_access_roles, or remove it here",
                )


def _check_ui_roles(stack: StackConfig, settings: AirflowSettings) -> None:
    if not settings.ui_access_roles:
        raise StackRuleError(
            ("airflow", "ui_access_roles"),
            "nobody may open the Airflow UI",
            "list the people roles (IdP groups or emails) that may, e.g. [platform-admin, data-engineer]",
        )
    for role_name in settings.ui_access_roles:
        role = stack.roles.get(role_name)
        if role is None or not (role.groups or role.emails):
            raise StackRuleError(
                ("airflow", "ui_access_roles"),
                f"{role_name!r} is not a declared role with people (groups or emails)",
                "list roles whose members are people; machines reach Airflow only through the "
                "trigger gateway",
            )
