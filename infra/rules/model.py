"""The vocabulary of the rules: a finding, a rule and the few knobs a team may turn."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from infra.rules.view import PlanView

Severity = Literal["error", "warning"]


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
class RuleConfig:
    """What a team may tune. `today` is explicit so a rule never reads the clock itself."""

    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    max_compatibility_age_days: int = 365
    max_service_token_hours: int = 8760
    allow_deleting_classes: frozenset[str] = frozenset()
    """Durable Object classes whose deletion is intended ("*" allows any)."""

    @classmethod
    def from_mapping(cls, values: dict[str, Any], today: dt.date | None = None) -> RuleConfig:
        """From policy-pack config or CLI options; unknown keys are ignored by design (CrossGuard adds
        `enforcementLevel` to every policy's config)."""
        base = cls() if today is None else cls(today=today)
        allowed = values.get("allow_deleting_classes", sorted(base.allow_deleting_classes))
        return cls(
            today=base.today,
            max_compatibility_age_days=int(
                values.get("max_compatibility_age_days", base.max_compatibility_age_days)
            ),
            max_service_token_hours=int(values.get("max_service_token_hours", base.max_service_token_hours)),
            allow_deleting_classes=frozenset(str(name) for name in allowed),
        )


Check = Callable[["PlanView", RuleConfig], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    check: Check
