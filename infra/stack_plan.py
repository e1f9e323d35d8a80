"""The stack plan's values: what the edge of one stack is, decided once by
`infra.plan_stack.planner.plan_stack`, before any resource exists.

Every component receives only its own part (a `GatewayPlan`, the `AccessPlan`, the `LogpushPlan`)
and turns it into resources; no component plans. The few decisions that need what only a deploy
can know (the migration tag a live script carries) are pure methods here, so they are tested
without Pulumi and live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

BindingType = Literal["plain_text", "json", "secret_text", "kv_namespace", "durable_object_namespace"]


@dataclass(frozen=True)
class Binding:
    name: str
    type: BindingType
    text: str | None = None
    """plain_text: the text; json: canonical JSON; secret_text: the Pulumi secret key it comes from."""
    class_name: str | None = None
    late: bool = False
    """The value is another resource's output (e.g. a service token's id), supplied when wiring."""
    fill: Literal["access_audience", "service_token_ids", "random_secret"] | None = None
    """The planned value is completed when wiring: the Access app's `aud` written into the JSON
    document's `audience`, the JSON map of Access client id → service-token name, or (a
    secret_text) random bytes the deploy makes for this Worker alone, kept as a Pulumi secret."""


@dataclass(frozen=True)
class Protection:
    """Pulumi's `protect` (refuse to replace or delete) and `retain_on_delete` (leave the cloud
    object behind when Pulumi lets go of it), with the reason the README's table gives."""

    protect: bool = False
    retain_on_delete: bool = False
    why: str = ""


UNPROTECTED = Protection()


class MigrationHistoryError(ValueError):
    """The live script carries a tag the repository's history does not have."""


@dataclass(frozen=True)
class MigrationEntry:
    tag: str
    new_sqlite_classes: tuple[str, ...] = ()
    deleted_classes: tuple[str, ...] = ()

    def step(self) -> dict[str, Any]:
        step: dict[str, Any] = {}
        if self.new_sqlite_classes:
            step["new_sqlite_classes"] = list(self.new_sqlite_classes)
        if self.deleted_classes:
            step["deleted_classes"] = list(self.deleted_classes)
        return step


@dataclass(frozen=True)
class PreviousUpload:
    """What the stack's last outputs say about one script: the `migrations` input it was given and
    a fingerprint of every other input it was given."""

    sent: dict[str, Any] | None
    fingerprint: str

    @classmethod
    def from_output(cls, value: Any) -> PreviousUpload | None:
        if not isinstance(value, dict) or not isinstance(value.get("fingerprint"), str):
            return None
        sent = value.get("sent")
        return cls(sent if isinstance(sent, dict) else None, value["fingerprint"])


@dataclass(frozen=True)
class MigrationHistory:
    """The append-only Durable Object migration history (wrangler's `[[migrations]]` list)."""

    entries: tuple[MigrationEntry, ...] = ()

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(entry.tag for entry in self.entries)

    def alive_classes(self) -> frozenset[str]:
        alive: set[str] = set()
        for entry in self.entries:
            alive |= set(entry.new_sqlite_classes)
            alive -= set(entry.deleted_classes)
        return frozenset(alive)

    def pending(self, live_tag: str | None) -> tuple[MigrationEntry, ...]:
        """The steps a script carrying `live_tag` has not run (all of them for a script without a
        tag), as wrangler does: cloudflare/wrangler-legacy#1992."""
        if live_tag is None:
            return self.entries
        if live_tag not in self.tags:
            raise MigrationHistoryError(
                f"the live script carries Durable Object migration tag {live_tag!r}, which "
                f"durable_object_migrations does not have ({', '.join(self.tags) or 'none'}); "
                "restore the entries that were removed (the history is append-only)"
            )
        return self.entries[self.tags.index(live_tag) + 1 :]

    def upload(self, live_tag: str | None) -> dict[str, Any] | None:
        """The `migrations` input that brings a script from `live_tag` to the newest tag, or None
        when it is there already. `old_tag` is set exactly when the script has a tag: the API
        refuses an upload whose `old_tag` differs from the script's tag, and lets it be omitted only
        while the script has none (code 10079; pulumi/pulumi-cloudflare#1215,
        cloudflare/terraform-provider-cloudflare#5701)."""
        pending = self.pending(live_tag)
        if not pending:
            return None
        document: dict[str, Any] = {"new_tag": pending[-1].tag, "steps": [e.step() for e in pending]}
        if live_tag is not None:
            document["old_tag"] = live_tag
        return document

    def to_send(
        self, live_tag: str | None, previous: PreviousUpload | None, fingerprint: str
    ) -> dict[str, Any] | None:
        """The script's `migrations` input for this deploy.

        With steps pending: exactly those, from the live tag. Up to date: the provider uploads the
        `migrations` input again on every update (terraform-provider-cloudflare's workers_script
        Update sends the configured value), so a value that already ran must not stay in the inputs
        when the script changes; it is dropped (an upload without migrations keeps the live tag).
        When nothing else about the script changed since the last deploy, the last value is kept,
        so the inputs equal the state and Pulumi uploads nothing at all."""
        upload = self.upload(live_tag)
        if upload is not None:
            return upload
        if previous is None or previous.fingerprint != fingerprint:
            return None
        if previous.sent is not None and previous.sent.get("new_tag") != live_tag:
            return None
        return previous.sent


@dataclass(frozen=True)
class AccessAppPlan:
    """The gateway's Access application, named after its script and guarding its hostname."""

    policy_keys: tuple[str, ...]
    """Reusable Access policies guarding the app, in precedence order (1, 2, ...)."""


@dataclass(frozen=True)
class GatewayPlan:
    account_id: str
    zone_id: str
    script_name: str
    hostname: str
    auth: Literal["access", "oidc"]
    """How callers authenticate at the gateway (its own `auth`, else the stack's identity mode)."""
    expose: Literal["custom_domain", "route"]
    compatibility_date: str
    main_module: str
    content: str
    kv_title: str
    policy_kv_key: str
    policy_value: str
    policy_version: str
    bindings: tuple[Binding, ...]
    migrations: MigrationHistory
    access_app: AccessAppPlan | None
    logpush: bool
    namespace_protection: Protection = UNPROTECTED
    script_protection: Protection = UNPROTECTED


@dataclass(frozen=True)
class IdentityProviderPlan:
    name: str
    client_id: str
    client_secret_key: str
    issuer: str


@dataclass(frozen=True)
class ServiceTokenPlan:
    key: str
    name: str
    duration: str
    client_secret_version: int | None
    previous_client_secret_expires_at: str | None
    """Both set exactly when the token was rotated (`Rotation.secret_version`): the provider takes a
    secret version only together with the previous secret's expiry; a token never rotated keeps
    the provider's default version 1."""


@dataclass(frozen=True)
class AccessPolicyPlan:
    key: str
    role: str
    decision: Literal["allow", "non_identity"]
    groups: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    service_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessPlan:
    account_id: str
    name_prefix: str
    roles_claim: str
    identity_provider: IdentityProviderPlan | None
    tokens: tuple[ServiceTokenPlan, ...] = ()
    policies: tuple[AccessPolicyPlan, ...] = ()
    token_protection: Protection = UNPROTECTED


LOGPUSH_FIELDS = ("EventTimestampMs", "Outcome", "ScriptName", "Logs", "Exceptions")


@dataclass(frozen=True)
class LogpushPlan:
    account_id: str
    job_name: str
    destination_conf: str
    filter: str
    ownership_challenge_key: str | None
