"""The vocabulary of the rules: a finding, a rule and the knobs a team may turn.

Thresholds come from three places, the later winning: the defaults (`ReviewSettings`, what a stack's
`review:` section holds when it sets nothing), the stack's `review:` section (carried in the plan
document), and the run (`airgate lint --threshold`, the CrossGuard pack's config). `RuleConfig` is
what a run sets; `Thresholds` is what a rule reads for one stack.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from infra.config.sections import ReviewSettings

if TYPE_CHECKING:
    from infra.rules.view import PlanView

Severity = Literal["error", "warning"]
_DEFAULTS = ReviewSettings()
"""The stack's `review:` section when it sets nothing: the one place the defaults are written."""


@dataclass(frozen=True, order=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    fix: str
    resource: str | None = None
    gateway: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "resource": self.resource,
            "gateway": self.gateway,
            "message": self.message,
            "fix": self.fix,
        }

    @property
    def key(self) -> tuple[str, str | None, str | None, str]:
        """Identity across two plans: the same problem on the same thing."""
        return (self.rule, self.gateway, self.resource, self.message)


@dataclass(frozen=True)
class Thresholds:
    """The resolved knobs for one stack."""

    today: dt.date
    max_compatibility_age_days: int = _DEFAULTS.max_compatibility_age_days
    max_service_token_hours: int = _DEFAULTS.max_service_token_hours
    max_prod_body_bytes: int = _DEFAULTS.max_prod_body_bytes
    allowed_upstream_domains: frozenset[str] = frozenset(_DEFAULTS.allowed_upstream_domains)
    admin_path_segments: frozenset[str] = frozenset(_DEFAULTS.admin_path_segments)
    exceptions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    allow_deleting_classes: frozenset[str] = frozenset()

    def excepted(self, rule: str, subject: str) -> bool:
        return subject in self.exceptions.get(rule, frozenset())


INT_KEYS = ("max_compatibility_age_days", "max_service_token_hours", "max_prod_body_bytes")
SET_KEYS = ("allowed_upstream_domains", "admin_path_segments", "allow_deleting_classes")
THRESHOLD_KEYS = (*INT_KEYS, *SET_KEYS)


@dataclass(frozen=True)
class RuleConfig:
    """What one run sets. None means "the stack's `review:` section, else the default"."""

    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    max_compatibility_age_days: int | None = None
    max_service_token_hours: int | None = None
    max_prod_body_bytes: int | None = None
    allowed_upstream_domains: frozenset[str] | None = None
    admin_path_segments: frozenset[str] | None = None
    exceptions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Added to the stack's own named exceptions."""
    allow_deleting_classes: frozenset[str] = frozenset()
    """Durable Object classes whose deletion is intended ("*" allows any)."""

    def resolve(self, review: Mapping[str, Any]) -> Thresholds:
        """The thresholds for a stack whose `review:` section (from its plan) is `review`."""
        values: dict[str, Any] = {"today": self.today}
        for item in fields(Thresholds):
            if item.name in ("today", "exceptions"):
                continue
            mine = getattr(self, item.name)
            stacks = review.get(item.name)
            if item.name == "allow_deleting_classes":
                values[item.name] = frozenset(mine) | frozenset(map(str, stacks or ()))
            elif mine is not None:
                values[item.name] = mine
            elif stacks is not None:
                values[item.name] = frozenset(map(str, stacks)) if item.name in SET_KEYS else int(stacks)
        merged: dict[str, frozenset[str]] = {}
        for source in (review.get("exceptions") or {}, self.exceptions):
            for rule, subjects in source.items():
                merged[str(rule)] = merged.get(str(rule), frozenset()) | frozenset(map(str, subjects))
        values["exceptions"] = merged
        return Thresholds(**values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], today: dt.date | None = None) -> RuleConfig:
        """From policy-pack config or CLI options; unknown keys are ignored by design (CrossGuard adds
        `enforcementLevel` to every policy's config)."""
        chosen: dict[str, Any] = {"today": today or dt.datetime.now(dt.UTC).date()}
        for key in INT_KEYS:
            if values.get(key) is not None:
                chosen[key] = int(values[key])
        for key in SET_KEYS:
            if values.get(key) is not None:
                chosen[key] = frozenset(str(v) for v in values[key])
        exceptions = values.get("exceptions")
        if isinstance(exceptions, Mapping):
            chosen["exceptions"] = {str(k): frozenset(map(str, v)) for k, v in exceptions.items()}
        return cls(**chosen)


def parse_threshold(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` from the command line; sets are comma-separated. Raises ValueError with the fix."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or key not in THRESHOLD_KEYS:
        raise ValueError(f"--threshold {text!r}: write KEY=VALUE with KEY one of {', '.join(THRESHOLD_KEYS)}")
    if key in INT_KEYS:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"--threshold {key}: {value!r} is not a whole number") from None
        if number < 1:
            raise ValueError(f"--threshold {key}: must be at least 1")
        return key, number
    return key, frozenset(v.strip() for v in value.split(",") if v.strip())


Check = Callable[["PlanView", Thresholds], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    check: Check
