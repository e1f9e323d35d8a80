"""The sections a stack is made of: identities, roles, service tokens, routes, upstreams, gateways, grants.

It decides what each section may hold on its own; rules across sections live with `StackConfig` in
`infra.config.model`, which imports these (never the other way round).
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

from infra.config.patterns import RoutePattern, parse_pattern

NAME = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
Name = Annotated[str, Field(pattern=NAME)]
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
EnvironmentKind = Literal["local", "dev", "staging", "prod"]
AuthMode = Literal["access", "oidc"]
JwtAlgorithm = Literal["RS256", "ES256"]
# What a token's `typ` header says it is (RFC 7515 §4.1.9, compared without "application/"):
# "at+jwt" (RFC 9068 access tokens), "jwt" (`typ: JWT`), "untyped" (no `typ`). README: "Token purpose".
TokenType = Literal["at+jwt", "jwt", "untyped"]


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
    accepted_token_types: tuple[TokenType, ...] = ("at+jwt",)
    """The `typ` values this IdP's access tokens carry; anything else is refused (README: Token purpose)."""

    @field_validator("accepted_token_types")
    @classmethod
    def _token_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(
                "list at least one token type (at+jwt, jwt or untyped); see the README's Token purpose"
            )
        if len(set(value)) != len(value):
            raise ValueError("a token type is listed twice")
        return value

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

    @model_validator(mode="after")
    def _rotation_names_its_end(self) -> Rotation:
        # Cloudflare takes a secret version only together with the previous secret's expiry
        # (the provider's schema: client_secret_version AlsoRequires
        # previous_client_secret_expires_at, cloudflare/terraform-provider-cloudflare
        # zero_trust_access_service_token).
        if self.version > 1 and self.previous_secret_expires_at is None:
            raise ValueError(
                "a rotated token (version > 1) needs previous_secret_expires_at: the time the "
                "previous secret stops working (a time in the past ends it at once)"
            )
        return self

    @property
    def secret_version(self) -> int | None:
        """The `client_secret_version` to send: the version only when the previous secret's expiry
        is set (the provider takes both or neither); None keeps the provider's default version 1."""
        return self.version if self.previous_secret_expires_at is not None else None

    @property
    def previous_expiry_text(self) -> str | None:
        """`previous_secret_expires_at` as the provider takes it: RFC 3339 in UTC with a Z suffix."""
        moment = self.previous_secret_expires_at
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


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


# Request headers the gateway owns or never forwards (README: "The gateway's header contract"):
# hop-by-hop fields, the caller's credentials, client-address and identity claims, trace context,
# method/path overrides. `forward_headers:` may not name them.
RESERVED_HEADERS = frozenset(
    {
        *("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection"),
        *("te", "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect"),
        *("authorization", "cookie", "forwarded", "via", "x-real-ip", "true-client-ip"),
        *("traceparent", "tracestate", "x-request-id"),
        *("x-http-method-override", "x-http-method", "x-method-override"),
        *("x-original-url", "x-rewrite-url", "x-original-method"),
    }
)
RESERVED_HEADER_PREFIXES = ("x-airgate-", "x-forwarded-", "cf-")
AIRGATE_PREFIX = "/.airgate"


def _header_names(values: tuple[str, ...]) -> tuple[str, ...]:
    names = []
    for value in values:
        name = value.lower()
        if not re.fullmatch(r"[a-z0-9!#$%&'*+.^`|~-]+", name):
            raise ValueError(f"{value!r} is not a header name; use letters, digits and '-' (no '_')")
        if name in RESERVED_HEADERS or name.startswith(RESERVED_HEADER_PREFIXES):
            raise ValueError(f"{value!r} is set or refused by the gateway; drop it from forward_headers")
        names.append(name)
    if len(set(names)) != len(names):
        raise ValueError("a header is listed twice")
    return tuple(names)


# Query parameters the gateway refuses with 400 unless a route names them in `forward_query:`
# (README: "Query strings"): method overrides, and RFC 6750 §2.3's credential in the query.
# Names compare lower-cased, with `-` read as `_` (the Worker's twin: worker_templates/lib/query.js).
METHOD_OVERRIDE_PARAMETERS = frozenset(
    {
        *("_method", "__method", "_httpmethod", "_http_method", "x_http_method_override", "x_http_method"),
        *("x_method_override", "x_original_method", "x_original_url", "x_rewrite_url"),
    }
)
CREDENTIAL_PARAMETERS = frozenset({"access_token"})
REFUSED_QUERY_PARAMETERS = METHOD_OVERRIDE_PARAMETERS | CREDENTIAL_PARAMETERS


def query_parameter_key(name: str) -> str:
    return name.lower().replace("-", "_")


class Route(Strict):
    path: str
    methods: tuple[Method, ...]
    roles: tuple[Name, ...]
    rate_limit: RateLimit | None = None
    forward_headers: tuple[str, ...] = ()
    """Request headers forwarded on this route besides the default list and the gateway's own."""
    forward_query: tuple[str, ...] = ()
    """Query parameters the gateway otherwise refuses (`access_token`, `_method`, ...) that this
    route forwards to its upstream as they came."""

    @field_validator("forward_query")
    @classmethod
    def _forward_query(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        keys = [query_parameter_key(name) for name in value]
        for name, key in zip(value, keys, strict=True):
            if key not in REFUSED_QUERY_PARAMETERS:
                allowed = ", ".join(sorted(REFUSED_QUERY_PARAMETERS))
                raise ValueError(
                    f"{name!r} is forwarded anyway; forward_query names only parameters the gateway "
                    f"refuses ({allowed}): drop it"
                )
        if len(set(keys)) != len(keys):
            raise ValueError("a query parameter is listed twice")
        return tuple(keys)

    @field_validator("path")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        parse_pattern(value)
        if value == AIRGATE_PREFIX or value.startswith(AIRGATE_PREFIX + "/"):
            raise ValueError(f"paths under {AIRGATE_PREFIX}/ are the gateway's own; pick another path")
        return value

    @field_validator("forward_headers")
    @classmethod
    def _forward_headers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _header_names(value)

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


class ResponseHeaders(Strict):
    """What happens to upstream response headers that reach past the API: cookies and redirects."""

    set_cookie: Literal["drop", "forward"] = "drop"
    absolute_location: Literal["rewrite", "drop", "forward"] = "rewrite"
    """rewrite: a Location under the upstream URL becomes the same path on the gateway, any other
    absolute one is dropped; drop: every absolute Location is dropped; forward: kept as sent."""


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
    forward_headers: tuple[str, ...] = ()
    """Request headers forwarded on every route besides the default list and the gateway's own."""
    forward_client_address: bool = False
    """Set X-Forwarded-For to the client address (CF-Connecting-IP) for the upstream."""
    response: ResponseHeaders = ResponseHeaders()
    auth_failure_rate_limit: RateLimit = RateLimit(requests=300, per_seconds=60)
    """Requests that fail authentication, per client address."""
    vars: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], str] = Field(default_factory=dict)

    @field_validator("forward_headers")
    @classmethod
    def _forward_headers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _header_names(value)


class DagGrant(Strict):
    gateway: Name
    role: Name
    dags: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,250}$")], ...]
    conf_schema: dict[str, Any] | None = None
    read_others_runs: bool = False
    """Holders may read every run of these DAGs, not only the runs they started themselves."""


class Logpush(Strict):
    destination_conf: str
    name: str = "airgate-decisions"
    ownership_challenge: SecretRef | None = None
    """The token Cloudflare wrote into a storage destination to prove it is ours (a Pulumi secret)."""


class MigrationStep(Strict):
    """One entry of the append-only Durable Object migration history (wrangler's `[[migrations]]`).

    `digest` seals the entry and every entry before it (see `infra.config.migration_history`): once
    written, a tag may already be applied to a live script, so its steps can never change."""

    tag: Annotated[str, Field(pattern=r"^v[0-9]+$")]
    new_sqlite_classes: tuple[str, ...] = ()
    deleted_classes: tuple[str, ...] = ()
    allow_deleting_classes: bool = False
    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None


class ReviewSettings(Strict):
    """Thresholds and named exceptions for the review rules (`airgate lint`, the CrossGuard pack,
    `airgate diff`). CLI options and the pack's config override them for one run."""

    max_service_token_hours: Annotated[int, Field(ge=1, le=2 * 8760)] = 8760
    max_compatibility_age_days: Annotated[int, Field(ge=1)] = 365
    max_prod_body_bytes: Annotated[int, Field(ge=1)] = 10 * 1024 * 1024
    allowed_upstream_domains: tuple[str, ...] = ()
    """Domains (and their subdomains) upstreams may live in besides the stack's zone."""
    admin_path_segments: tuple[str, ...] = ("admin",)
    """A route whose path has one of these literal segments is an admin route."""
    exceptions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Rule id -> subjects the rule lets pass, each named (e.g. `trigger/ci/gateway_smoke_test`)."""
