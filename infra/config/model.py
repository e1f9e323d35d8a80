"""The stack model: one environment's gateways, identities, routes and grants, as a strict frozen value.

It decides what a valid stack is. Every cross-section rule lives here, so a stack that loads is one the
planners can trust; `infra.config.loader` turns a failure into a message naming file, key path and fix.
The sections themselves are declared in `infra.config.sections` and re-exported here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from infra.config.airflow_model import AirflowSettings, check_airflow
from infra.config.errors import StackRuleError
from infra.config.migration_history import check_history
from infra.config.sections import (
    HTTP_METHODS,
    NAME,
    AccessSettings,
    AuthMode,
    DagGrant,
    EnvironmentKind,
    Gateway,
    Identity,
    JwtAlgorithm,
    Limits,
    Logpush,
    Method,
    MigrationStep,
    Name,
    OidcSettings,
    RateLimit,
    ReviewSettings,
    Role,
    Rotation,
    Route,
    SecretRef,
    ServiceToken,
    Strict,
    Upstream,
    UpstreamCredential,
)

__all__ = [
    "HTTP_METHODS",
    "NAME",
    "AccessSettings",
    "AuthMode",
    "DagGrant",
    "EnvironmentKind",
    "Gateway",
    "Identity",
    "JwtAlgorithm",
    "Limits",
    "Logpush",
    "Method",
    "MigrationStep",
    "Name",
    "OidcSettings",
    "RateLimit",
    "ReviewSettings",
    "Role",
    "Rotation",
    "Route",
    "SecretRef",
    "ServiceToken",
    "StackConfig",
    "Strict",
    "Upstream",
    "UpstreamCredential",
]


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
    review: ReviewSettings = ReviewSettings()

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
            _check_logpush,
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
    for index, step in enumerate(stack.durable_object_migrations):
        if step.deleted_classes and not step.allow_deleting_classes:
            raise StackRuleError(
                ("durable_object_migrations", str(index), "deleted_classes"),
                "deleting a Durable Object class destroys its stored state",
                "set allow_deleting_classes: true on this step if that is really intended",
            )
    check_history(stack.durable_object_migrations)


# Destinations where Cloudflare asks for proof of ownership before it writes logs there (S3 and
# S3-compatible stores such as R2 through the S3 API, Google Cloud Storage, Azure Blob Storage).
# Without it the job is refused: "incorrect ownership challenge (1002)",
# cloudflare/terraform-provider-cloudflare#1019.
STORAGE_SCHEMES = ("s3://", "gs://", "azure://")
LOGPUSH_CHALLENGE_KEY = "logpushOwnershipChallenge"


def _check_logpush(stack: StackConfig) -> None:
    logpush = stack.logpush
    if logpush is None or logpush.ownership_challenge is not None:
        return
    if logpush.destination_conf.startswith(STORAGE_SCHEMES):
        raise StackRuleError(
            ("logpush", "ownership_challenge"),
            f"{logpush.destination_conf.split('?')[0]!r} is a storage destination, and Cloudflare "
            "refuses a Logpush job there without proof of ownership "
            "(incorrect ownership challenge (1002))",
            "ask Cloudflare for a challenge for this destination_conf (dashboard: Logpush, add "
            "destination, 'prove ownership'; or POST /accounts/<account_id>/logpush/ownership with "
            "{destination_conf}); Cloudflare writes the token into a file in the bucket. Copy the "
            f"token from that file, run `pulumi config set --secret airgate:{LOGPUSH_CHALLENGE_KEY} "
            f"-s <stack>` and add ownership_challenge: {{secret: {LOGPUSH_CHALLENGE_KEY}}} under logpush",
        )


def _known(names: dict[str, Any]) -> str:
    return ", ".join(sorted(names)) or "(none)"
