"""The CrossGuard side of the rules: adapts the engine's view of a stack to the plan-document
shape `infra.rules` reads, and wraps each rule as a mandatory stack policy.

What differs from `airgate lint`:
- Inputs come from the engine (camelCase, like the plan). During a preview some are unknown; they
  become "[unknown]" and the rules skip what they cannot know.
- The engine hands secrets over unwrapped; the adapter masks secret_text bindings again, and no
  rule ever puts a value in a message.
- Compiled policies are read back from the KV entries the program writes (`WorkersKv.value`).
- A policy blocks or advises as a whole (its enforcement level is fixed; the SDK's ReportViolation
  takes no level), while a rule's finding is an error or a warning (`no-bypass-in-prod` warns outside
  prod). So each rule is two policies: `<rule>` (mandatory) reports its errors, `<rule>-advisory`
  its warnings; `review-exceptions` (advisory) names exceptions for rules that do not exist. Each
  runs `evaluate` for its own rule, so the pack's findings are `airgate lint`'s.
- The stack's own config supplies what the engine's resources do not carry: the environment, the
  zone, the `review:` thresholds and exceptions, DAG grants and the Durable Object migration history
  (so `allow_deleting_classes` counts here as in lint). The stack name comes from the resources'
  URNs (`urn:pulumi:<stack>::...`, https://www.pulumi.com/docs/iac/concepts/resources/names/#urns).
- The environment is never unknown: the stack file, else the pack config `environment`, else the
  Workers' ENVIRONMENT binding; if none says, the prod rules apply (fail closed).
- Values the engine does not know yet during a preview never make a mandatory violation: the rules
  skip what is unknown.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import _is_unknown

from infra.config.errors import ConfigError
from infra.config.loader import STACKS_DIR, LoadedStack, load_stack
from infra.plan.format import PLAN_FORMAT, PlanDocument, ResourceEntry
from infra.plan.stack_facts import stack_sections
from infra.rules import RULES, Finding, RuleConfig, evaluate, rule_ids
from infra.rules.model import INT_KEYS, SET_KEYS
from infra.rules.view import SECRET_MASK, UNKNOWN, PlanView, kind_of

PACK_NAME = "airgate"
EDGE_GATEWAY = "airgate:edge:EdgeGateway"
SKIPPED_TYPES = ("pulumi:pulumi:Stack",)

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "environment": {"type": "string", "enum": ["local", "dev", "staging", "prod"]},
        **{key: {"type": "integer", "minimum": 1} for key in INT_KEYS},
        **{key: {"type": "array", "items": {"type": "string"}} for key in SET_KEYS},
        "exceptions": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    }
)


def plain(value: Any) -> Any:
    """Engine values (proxies, unknown sentinels) -> plain JSON-like values."""
    if isinstance(value, str):
        return UNKNOWN if _is_unknown(value) else value
    if isinstance(value, Mapping):
        target = _target(value)
        return {str(key): plain(target[key]) for key in target}
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        target = _target(value)
        return [plain(item) for item in target]
    if value is None or isinstance(value, int | float | bool):
        return value
    return UNKNOWN


def _target(proxy: Any) -> Any:
    """The raw container behind pulumi_policy's unknown-checking proxies (reading through the proxy
    would raise on unknowns instead of letting us mark them)."""
    try:
        return proxy["__target"]
    except (KeyError, TypeError, IndexError):
        return proxy


def _gateway(resource: PolicyResource) -> str | None:
    current: PolicyResource | None = resource
    while current is not None:
        if current.resource_type == EDGE_GATEWAY:
            return current.name
        current = current.parent
    return None


def _mask_secret_bindings(inputs: dict[str, Any]) -> None:
    bindings = inputs.get("bindings")
    if isinstance(bindings, list):
        for binding in bindings:
            if isinstance(binding, dict) and binding.get("type") == "secret_text":
                binding["text"] = SECRET_MASK


def stack_name_of(resources: Sequence[PolicyResource], stack_tags: Mapping[str, str]) -> str | None:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` names the stack on every resource."""
    for resource in resources:
        parts = str(resource.urn).split(":", 3)
        if len(parts) == 4 and parts[:2] == ["urn", "pulumi"]:
            return parts[2].split("::", 1)[0].rsplit("/", 1)[-1]
    return stack_tags.get("pulumi:stack") or None


@functools.lru_cache(maxsize=8)
def _load(name: str | None, stacks_dir: Path) -> LoadedStack | None:
    """Every policy of one run asks for the same stack: read and validate its file once."""
    if not name:
        return None
    try:
        return load_stack(name, stacks_dir)
    except (ConfigError, OSError):
        return None


def plan_from_engine(
    resources: Sequence[PolicyResource],
    config: Mapping[str, Any],
    stack_tags: Mapping[str, str],
    stacks_dir: Path = STACKS_DIR,
) -> PlanDocument:
    converted: list[ResourceEntry] = []
    policies: dict[str, Any] = {}
    environments = set()
    for resource in resources:
        if resource.resource_type in SKIPPED_TYPES or resource.resource_type.startswith("pulumi:providers:"):
            continue
        inputs = plain(resource.props)
        assert isinstance(inputs, dict)
        custom = not resource.resource_type.startswith("airgate:")
        gateway = _gateway(resource)
        kind = kind_of(resource.resource_type)
        if kind == "WorkersScript":
            _mask_secret_bindings(inputs)
            for binding in inputs.get("bindings") or []:
                if isinstance(binding, dict) and binding.get("name") == "ENVIRONMENT":
                    environments.add(binding.get("text"))
        if kind == "WorkersKv" and gateway and isinstance(inputs.get("value"), str):
            with contextlib.suppress(ValueError):
                policies[gateway] = {
                    "version": inputs.get("keyName"),
                    "document": json.loads(inputs["value"]),
                }
        converted.append(
            {
                "type": resource.resource_type,
                "name": resource.name,
                "parent": resource.parent.name if resource.parent is not None else None,
                "custom": custom,
                "protect": bool(resource.opts.protect) if resource.opts is not None else False,
                "gateway": gateway,
                "inputs": inputs if custom else {},
            }
        )
    name = stack_name_of(resources, stack_tags)
    loaded = _load(name, stacks_dir)
    known_envs = sorted(str(e) for e in environments if isinstance(e, str) and e != UNKNOWN)
    environment = (
        (loaded.config.environment if loaded else None)
        or config.get("environment")
        or stack_tags.get("airgate:environment")
        or (known_envs[0] if len(known_envs) == 1 else None)
        or "prod"  # undetermined: the strictest rules apply
    )
    document: PlanDocument = {
        "format": PLAN_FORMAT,
        "stack": name or "engine",
        "environment": str(environment),
        "protected": (loaded.config.protected if loaded else environment == "prod")
        or any(r["protect"] for r in converted),
        "resources": converted,
        "policies": policies,
    }
    if loaded is not None:
        document.update(stack_sections(loaded.config))
    return document


def _urn_of(resources: Sequence[PolicyResource], finding: Finding) -> str | None:
    name = finding.resource or finding.gateway
    return next((r.urn for r in resources if r.name == name), None)


ADVISORY_SUFFIX = "-advisory"
EXCEPTIONS_RULE = "review-exceptions"
"""`evaluate`'s own check of the named exceptions: a warning, never tied to one rule."""


def make_validate(rule_id: str, severity: str) -> Any:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = dict(args.get_config() or {})
        document = plan_from_engine(args.resources, config, args.stack_tags)
        view = PlanView(document)
        run = RuleConfig.from_mapping(config)
        only = {rule_id} & set(rule_ids())  # none for review-exceptions, which evaluate always adds
        for finding in evaluate(view, run, only):
            if finding.rule == rule_id and finding.severity == severity:
                report_violation(f"{finding.message}. Fix: {finding.fix}", _urn_of(args.resources, finding))

    return validate


def rule_of(policy_name: str) -> str:
    """The rule a policy of this pack reports for (its advisory companion included)."""
    return policy_name.removesuffix(ADVISORY_SUFFIX)


def _policy(name: str, description: str, rule_id: str, level: EnforcementLevel) -> Policy:
    severity = "error" if level is EnforcementLevel.MANDATORY else "warning"
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=make_validate(rule_id, severity),
        enforcement_level=level,
        config_schema=CONFIG_SCHEMA,
    )


def policies() -> list[Policy]:
    made = []
    for rule in RULES:
        made.append(_policy(rule.id, rule.title, rule.id, EnforcementLevel.MANDATORY))
        made.append(
            _policy(
                f"{rule.id}{ADVISORY_SUFFIX}", f"{rule.title} (warnings)", rule.id, EnforcementLevel.ADVISORY
            )
        )
    made.append(
        _policy(
            EXCEPTIONS_RULE,
            "Named exceptions name rules that exist",
            EXCEPTIONS_RULE,
            EnforcementLevel.ADVISORY,
        )
    )
    return made
