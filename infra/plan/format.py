"""The published formats, declared once: the plan document (`airgate plan --json`) and the diff
report (`airgate diff --format json`), with their version strings.

Everything that reads a plan (the rules, the diff, the Markdown comment, the CrossGuard pack, the
ephemeral stacks) reads it through these types. Version policy: adding an optional key keeps the
version (readers must tolerate its absence: a base ref planned by older code lacks it); renaming or
removing a key, or changing a value's meaning, bumps it. `airgate-plan/1` documents from before the
optional keys (`zone`, `review`) are read as they are.

A change in the diff report is risky exactly when it has reasons: `make_change` derives `risky` and
`severity` from the reasons, so no change can be risky without saying why.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, Required, TypedDict, cast

PLAN_FORMAT = "airgate-plan/1"
PLAN_FORMATS_READ = frozenset({PLAN_FORMAT})
DIFF_FORMAT = "airgate-diff/2"
"""2: changes carry `severity` and `stacks`; stacks that fail to plan are `failures`, not removals."""


# --- the plan document --------------------------------------------------------------------------


class ResourceEntry(TypedDict):
    type: str
    name: str
    parent: str | None
    custom: bool
    protect: bool
    gateway: str | None
    inputs: dict[str, Any]


class PolicyEntry(TypedDict):
    version: str | None
    document: dict[str, Any]


class MatrixEntry(TypedDict):
    role: str
    gateway: str
    route: str
    path: str
    methods: list[str]


class DagGrantEntry(TypedDict):
    gateway: str
    role: str
    dag: str
    conf_schema: dict[str, Any] | None


class RoleMembers(TypedDict):
    groups: list[str]
    emails: list[str]
    service_tokens: list[str]
    oidc_clients: list[str]


class TokenEntry(TypedDict):
    duration: str
    version: int
    previous_secret_expires_at: NotRequired[str | None]


class Identities(TypedDict):
    roles: dict[str, RoleMembers]
    service_tokens: dict[str, TokenEntry]


class MigrationEntry(TypedDict):
    tag: str
    new_sqlite_classes: list[str]
    deleted_classes: list[str]
    allow_deleting_classes: bool


class ReviewEntry(TypedDict, total=False):
    """The stack's `review:` section: rule thresholds and named exceptions (see RuleConfig)."""

    max_service_token_hours: int
    max_compatibility_age_days: int
    max_prod_body_bytes: int
    allowed_upstream_domains: list[str]
    admin_path_segments: list[str]
    exceptions: dict[str, list[str]]


class PlanDocument(TypedDict, total=False):
    format: Required[str]
    stack: Required[str]
    environment: Required[str]
    protected: bool
    project: str
    zone: str
    review: ReviewEntry
    resources: Required[list[ResourceEntry]]
    outputs: dict[str, Any]
    policies: dict[str, PolicyEntry]
    access_matrix: list[MatrixEntry]
    dag_grants: list[DagGrantEntry]
    identities: Identities
    durable_object_migrations: list[MigrationEntry]
    warnings: list[str]


def as_plan(raw: Any) -> PlanDocument:
    """A parsed JSON value as a plan document, after checking the keys every reader relies on."""
    if not isinstance(raw, dict):
        raise ValueError("a plan document is a JSON object")
    if raw.get("format") not in PLAN_FORMATS_READ:
        raise ValueError(f"format {raw.get('format')!r} is not one of {sorted(PLAN_FORMATS_READ)}")
    for key, kind in (("stack", str), ("environment", str), ("resources", list)):
        if not isinstance(raw.get(key), kind):
            raise ValueError(f"plan document without a valid {key!r}")
    return cast(PlanDocument, raw)


# --- the diff report ----------------------------------------------------------------------------

Section = Literal["grants", "routes", "gateways", "dag_grants", "identities", "resources", "findings"]
SECTIONS: tuple[Section, ...] = (
    "grants",
    "routes",
    "gateways",
    "dag_grants",
    "identities",
    "resources",
    "findings",
)

# Severity of a reason: higher sorts first in the risky list.
CRITICAL, HIGH, MEDIUM, LOW = 4, 3, 2, 1


class Reason(TypedDict):
    text: str
    severity: int


class Change(TypedDict, total=False):
    """One reviewed change. `fields` hold what names it (role, gateway, route, token, ...)."""

    section: Required[Section]
    change: Required[str]
    subject: Required[str]
    """What changed, in one stable string (used to merge the same change across stacks)."""
    risky: Required[bool]
    severity: Required[int]
    reasons: Required[list[str]]
    stacks: list[str]
    role: str
    gateway: str | None
    route: str
    path: str
    methods: list[str]
    dag: str
    kind: str
    """A member's kind (groups, emails, ...), a resource's kind, or a new finding's severity."""
    member: str
    token: str
    name: str
    type: str
    before: Any
    after: Any
    keys: list[str]
    details: dict[str, Any]
    rule: str
    message: str
    resource: str | None
    fix: str


def reason(text: str, severity: int) -> Reason:
    return {"text": text, "severity": severity}


def make_change(
    section: Section, change: str, subject: str, reasons: list[Reason] | None = None, **fields: Any
) -> Change:
    """The only way a change is built: risky iff it has reasons, severity the highest of them."""
    given = reasons or []
    item: dict[str, Any] = {
        **fields,
        "section": section,
        "change": change,
        "subject": subject,
        "reasons": [r["text"] for r in given],
        "risky": bool(given),
        "severity": max((r["severity"] for r in given), default=0),
    }
    return cast(Change, item)


class PolicyVersionChange(TypedDict):
    before: str | None
    after: str | None


class MatrixPair(TypedDict):
    base: list[MatrixEntry]
    head: list[MatrixEntry]


class StackDiff(TypedDict):
    stack: str
    environment: str
    protected: bool
    status: Literal["added", "removed", "changed", "unchanged"]
    changed: bool
    risky: list[Change]
    policy_versions: dict[str, PolicyVersionChange]
    grants: list[Change]
    routes: list[Change]
    gateways: list[Change]
    dag_grants: list[Change]
    identities: list[Change]
    resources: list[Change]
    findings: list[Change]
    findings_resolved: list[dict[str, Any]]
    changed_gateways: list[str]
    matrix: MatrixPair


class Failure(TypedDict):
    stack: str
    side: str
    error: str


class DiffReport(TypedDict):
    format: str
    changed: bool
    risky: int
    stacks_compared: int
    errors: dict[str, str]
    failures: list[Failure]
    risky_changes: list[Change]
    """Every risky change once, most severe first, with the stacks it touches."""
    stacks: list[StackDiff]
