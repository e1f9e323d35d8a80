"""The stack model: one environment's gateways, identities, routes and grants, as a strict frozen value.

It decides what a valid stack is. Every cross-field rule lives here, so a stack that loads is one the
planners can trust; `infra.config.loader` turns a failure into a message naming file, key path and fix.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    field_validator,
    model_validator,
)

from infra.config.airflow_model import AirflowSettings, check_airflow
from infra.config.errors import StackRuleError
from infra.policy.patterns import RoutePattern, parse_pattern

NAME = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
Name = Annotated[str, Field(pattern=NAME)]
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
EnvironmentKind = Literal["local", "dev", "staging", "prod"]
AuthMode = Literal["access", "oidc"]
JwtAlgorithm = Literal["RS256", "ES256"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class SecretRef(Strict):
    """Names a Pulumi secret config key (`airgate:<secret>`) that must be stored encrypted."""

    secret: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")]


class AccessSettings(Strict):
    team_domain: Annotated[str, Field(pattern=r"^[a-z0-9-]+\.cloudflareaccess\.com$")]


class OidcSettings(Strict):
    issuer: str
    client_id: str
    client_secret: SecretRef
    audience: str
    roles_claim: str = "groups"
    identity_provider_name: str = "okta"

    @field_validator("issuer")
    @classmethod
    def _issuer_is_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("issuer must be an absolute URL such as https://acme.okta.com/oauth2/default")
        return value.rstrip("/")


class Identity(Strict):
    mode: AuthMode = "access"
    access: AccessSettings | None = None
    oidc: OidcSettings
    algorithms: tuple[JwtAlgorithm, ...] = ("RS256", "ES256")
    leeway_seconds: Annotated[int, Field(ge=0, le=60)] = 30
    jwks_refresh_cooldown_seconds: Annotated[int, Field(ge=1, le=3600)] = 30

    @model_validator(mode="after")
    def _access_settings_present(self) -> Identity:
        if self.mode == "access" and self.access is None:
            raise ValueError(
                "identity.mode is 'access' but identity.access.team_domain is missing; "
                "add it (for example acme.cloudflareaccess.com)"
            )
        return self


class Role(Strict):
    description: str = ""
    groups: tuple[str, ...] = ()
    emails: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...] = ()
    service_tokens: tuple[Name, ...] = ()
    oidc_clients: tuple[str, ...] = ()

    @property
    def has_members(self) -> bool:
        return bool(self.groups or self.emails or self.service_tokens or self.oidc_clients)


class Rotation(Strict):
    """Bump `version` to issue a new client secret; the previous one keeps working until
    `previous_secret_expires_at` (UTC, RFC 3339), so callers can move over without an outage."""

    version: PositiveInt = 1
    previous_secret_expires_at: dt.datetime | None = None

    @field_validator("previous_secret_expires_at")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.utcoffset() != dt.timedelta(0):
            raise ValueError("write the time in UTC with a Z suffix, e.g. 2026-12-15T00:00:00Z")
        return value


class ServiceToken(Strict):
    description: str = ""
    duration: Annotated[str, Field(pattern=r"^[1-9][0-9]*h$")] = "8760h"
    rotation: Rotation = Rotation()

    @field_validator("duration")
    @classmethod
    def _bounded(cls, value: str) -> str:
        if int(value[:-1]) > 2 * 8760:
            raise ValueError("a service token may live at most two years (17520h); rotate instead")
        return value


class RateLimit(Strict):
    requests: int
    per_seconds: int

    @field_validator("requests", "per_seconds")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be greater than 0 (use a large number rather than turning limits off)")
        return value


class Route(Strict):
    path: str
    methods: tuple[Method, ...]
    roles: tuple[Name, ...]
    rate_limit: RateLimit | None = None

    @field_validator("path")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        parse_pattern(value)
        return value

    @field_validator("methods")
    @classmethod
    def _methods_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one HTTP method")
        if len(set(value)) != len(value):
            raise ValueError("a method is listed twice")
        return value

    @field_validator("roles")
    @classmethod
    def _roles_present(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("grant at least one role; a route nobody may call is dead config")
        return value

    @property
    def pattern(self) -> RoutePattern:
        return parse_pattern(self.path)


class UpstreamCredential(Strict):
    secret: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")]
    header: str = "Authorization"
    scheme: str = "Bearer"


class Upstream(Strict):
    url: str
    credential: UpstreamCredential | None = None
    timeout_ms: Annotated[int, Field(ge=100, le=120_000)] = 10_000

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("upstream.url must be an absolute http(s) URL")
        return value.rstrip("/")


class Limits(Strict):
    max_body_bytes: Annotated[int, Field(ge=1, le=100 * 1024 * 1024)] = 1024 * 1024
    max_header_bytes: Annotated[int, Field(ge=1024, le=128 * 1024)] = 16 * 1024
    max_token_bytes: Annotated[int, Field(ge=512, le=64 * 1024)] = 8 * 1024


class Gateway(Strict):
    kind: Literal["proxy", "dag_trigger"] = "proxy"
    description: str = ""
    hostname: str
    expose: Literal["custom_domain", "route"] = "custom_domain"
    auth: AuthMode | None = None
    behind_access: bool = True
    upstream: Upstream
    limits: Limits = Limits()
    durable_objects_fail_open: bool = False
    default_rate_limit: RateLimit = RateLimit(requests=600, per_seconds=60)
    routes: dict[Name, Route] = Field(default_factory=dict)
    vars: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], str] = Field(default_factory=dict)
    deployed_migration_tag: str | None = None
    """The Durable Object migration tag the live script has (None before its first deploy)."""


class DagGrant(Strict):
    gateway: Name
    role: Name
    dags: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,250}$")], ...]
    conf_schema: dict[str, Any] | None = None


class Logpush(Strict):
    destination_conf: str
    name: str = "airgate-decisions"


class MigrationStep(Strict):
    tag: Annotated[str, Field(pattern=r"^v[0-9]+$")]
    new_sqlite_classes: tuple[str, ...] = ()
    deleted_classes: tuple[str, ...] = ()
    allow_deleting_classes: bool = False


class StackConfig(Strict):
    """One environment. Field names are the keys under `airgate:` in `stacks/Pulumi.<env>.yaml`."""

    environment: EnvironmentKind
    organisation: str
    account_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    zone: str
    zone_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    compatibility_date: str
    protect: bool | None = None
    identity: Identity
    roles: dict[Name, Role]
    service_tokens: dict[Name, ServiceToken] = Field(default_factory=dict)
    gateways: dict[Name, Gateway]
    dag_grants: tuple[DagGrant, ...] = ()
    durable_object_migrations: tuple[MigrationStep, ...] = ()
    logpush: Logpush | None = None
    airflow: AirflowSettings | None = None

    @field_validator("compatibility_date")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date; write it as YYYY-MM-DD, for example 2026-11-01"
            ) from None
        if parsed.isoformat() != value:
            raise ValueError(f"write the date as YYYY-MM-DD ({parsed.isoformat()}), not {value!r}")
        return value

    @field_validator("zone")
    @classmethod
    def _zone_name(cls, value: str) -> str:
        if not re.match(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$", value):
            raise ValueError("zone must be a DNS name such as acme-data.com")
        return value

    @property
    def protected(self) -> bool:
        return self.protect if self.protect is not None else self.environment == "prod"

    def gateway_auth(self, gateway: Gateway) -> AuthMode:
        return gateway.auth or self.identity.mode

    @model_validator(mode="after")
    def _cross_references(self) -> StackConfig:
        for rule in (
            _check_roles,
            _check_hostnames,
            _check_routes,
            _check_prod_access,
            _check_upstreams,
            _check_dag_grants,
            _check_migrations,
            check_airflow,
        ):
            rule(self)
        return self


def _check_roles(stack: StackConfig) -> None:
    for name, role in stack.roles.items():
        if not role.has_members:
            raise StackRuleError(
                ("roles", name),
                "role has no members",
                "add groups, emails, service_tokens or oidc_clients, or delete the role",
            )
        for token in role.service_tokens:
            if token not in stack.service_tokens:
                raise StackRuleError(
                    ("roles", name, "service_tokens"),
                    f"service token {token!r} is not declared",
                    f"declare it under service_tokens (known: {_known(stack.service_tokens)})",
                )


def _check_hostnames(stack: StackConfig) -> None:
    seen: dict[str, str] = {}
    for name, gateway in stack.gateways.items():
        host = gateway.hostname
        if not (host == stack.zone or host.endswith("." + stack.zone)):
            raise StackRuleError(
                ("gateways", name, "hostname"),
                f"{host!r} is outside the stack's zone {stack.zone!r}",
                f"use a name ending in .{stack.zone}, or change `zone`",
            )
        if host in seen:
            raise StackRuleError(
                ("gateways", name, "hostname"),
                f"{host!r} is already used by gateway {seen[host]!r}",
                "give every gateway its own hostname",
            )
        seen[host] = name


def _check_routes(stack: StackConfig) -> None:
    for gw_name, gateway in stack.gateways.items():
        if gateway.kind == "proxy" and not gateway.routes:
            raise StackRuleError(
                ("gateways", gw_name, "routes"),
                "a proxy gateway without routes denies everything",
                "declare at least one route",
            )
        claimed: dict[tuple[str, str], str] = {}
        for route_name, route in gateway.routes.items():
            for role in route.roles:
                if role not in stack.roles:
                    raise StackRuleError(
                        ("gateways", gw_name, "routes", route_name, "roles"),
                        f"role {role!r} is not declared",
                        f"declare it under roles or use one of: {_known(stack.roles)}",
                    )
            shape = route.pattern.shape
            for method in route.methods:
                other = claimed.get((shape, method))
                if other is not None:
                    raise StackRuleError(
                        ("gateways", gw_name, "routes", route_name, "path"),
                        f"{route.path!r} {method} shadows route {other!r}: both match the same "
                        "requests with the same precedence",
                        "merge the two routes, or make one path more specific",
                    )
                claimed[(shape, method)] = route_name


def _check_prod_access(stack: StackConfig) -> None:
    for name, gateway in stack.gateways.items():
        if stack.gateway_auth(gateway) == "access" and not gateway.behind_access:
            raise StackRuleError(
                ("gateways", name, "behind_access"),
                "auth 'access' validates the Access JWT, so the gateway needs an Access app",
                "set behind_access: true, or auth: oidc",
            )
    if stack.environment != "prod":
        return
    for name, gateway in stack.gateways.items():
        if not gateway.behind_access or stack.gateway_auth(gateway) != "access":
            raise StackRuleError(
                ("gateways", name, "behind_access"),
                "a prod gateway must sit behind Cloudflare Access",
                "set behind_access: true and auth: access (machines use Access service tokens)",
            )


def _check_upstreams(stack: StackConfig) -> None:
    if stack.environment == "local":
        return
    for name, gateway in stack.gateways.items():
        if not gateway.upstream.url.startswith("https://"):
            raise StackRuleError(
                ("gateways", name, "upstream", "url"),
                f"{gateway.upstream.url!r} is not https; only the local stack may use plain http",
                "use an https:// URL (a Cloudflare Tunnel hostname for private services)",
            )


def _check_dag_grants(stack: StackConfig) -> None:
    granted: set[tuple[str, str, str]] = set()
    for index, grant in enumerate(stack.dag_grants):
        where = ("dag_grants", str(index))
        gateway = stack.gateways.get(grant.gateway)
        if gateway is None:
            raise StackRuleError(
                (*where, "gateway"),
                f"gateway {grant.gateway!r} is not declared",
                f"use one of: {_known(stack.gateways)}",
            )
        if gateway.kind != "dag_trigger":
            raise StackRuleError(
                (*where, "gateway"),
                f"gateway {grant.gateway!r} is a {gateway.kind} gateway, not a dag_trigger one",
                "grant DAGs on the gateway whose kind is dag_trigger",
            )
        if grant.role not in stack.roles:
            raise StackRuleError(
                (*where, "role"),
                f"role {grant.role!r} is not declared",
                f"use one of: {_known(stack.roles)}",
            )
        if not grant.dags:
            raise StackRuleError((*where, "dags"), "no dag ids listed", "list the dag ids granted")
        for dag in grant.dags:
            key = (grant.gateway, grant.role, dag)
            if key in granted:
                raise StackRuleError(
                    (*where, "dags"),
                    f"dag {dag!r} is already granted to role {grant.role!r} on {grant.gateway!r}",
                    "keep one grant per (gateway, role, dag)",
                )
            granted.add(key)


def _check_migrations(stack: StackConfig) -> None:
    tags = [step.tag for step in stack.durable_object_migrations]
    for name, gateway in stack.gateways.items():
        if gateway.deployed_migration_tag is not None and gateway.deployed_migration_tag not in tags:
            raise StackRuleError(
                ("gateways", name, "deployed_migration_tag"),
                f"tag {gateway.deployed_migration_tag!r} is not in durable_object_migrations",
                f"use one of: {', '.join(tags) or '(none)'}",
            )
    if len(set(tags)) != len(tags):
        raise StackRuleError(
            ("durable_object_migrations",),
            "a migration tag appears twice",
            "give every migration step a new tag (v1, v2, ...)",
        )
    for index, step in enumerate(stack.durable_object_migrations):
        if step.deleted_classes and not step.allow_deleting_classes:
            raise StackRuleError(
                ("durable_object_migrations", str(index), "deleted_classes"),
                "deleting a Durable Object class destroys its stored state",
                "set allow_deleting_classes: true on this step if that is really intended",
            )


def _known(names: dict[str, Any]) -> str:
    return ", ".join(sorted(names)) or "(none)"
