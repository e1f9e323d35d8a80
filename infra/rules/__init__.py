"""Policy rules written once: pure functions over an `airgate-plan/1` document returning findings.

`airgate lint` runs them over the offline plan; the CrossGuard pack in `policy_pack/` adapts the engine's
resources to the same document shape and runs the very same functions.
"""

from infra.rules.model import Finding, Rule, RuleConfig, Thresholds, parse_threshold
from infra.rules.registry import RULES, evaluate, rule_ids

__all__ = ["RULES", "Finding", "Rule", "RuleConfig", "Thresholds", "evaluate", "parse_threshold", "rule_ids"]
