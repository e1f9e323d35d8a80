"""The policy compiler: deterministic documents, and grants exactly as declared (Hypothesis)."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.config.loader import load_stack
from infra.config.model import StackConfig
from infra.config.patterns import parse_pattern
from infra.policy.compiler import access_matrix, compile_gateway, compile_stack
from infra.policy.evaluate import evaluate

BASE = load_stack("dev").config.model_dump(mode="json")
ROLES = sorted(BASE["roles"])
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
LITERALS = ["v1", "a", "b", "items"]

segment = st.sampled_from([*LITERALS, "*", "{id}"])
pattern = st.builds(
    lambda parts, rest: "/" + "/".join(parts + (["**"] if rest else [])) if parts or rest else "/",
    st.lists(segment, min_size=0, max_size=4),
    st.booleans(),
)
route = st.fixed_dictionaries(
    {
        "path": pattern,
        "methods": st.lists(st.sampled_from(METHODS), min_size=1, max_size=3, unique=True),
        "roles": st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True),
    }
)


def without_shadowing(routes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kept: dict[str, dict[str, Any]] = {}
    claimed: set[tuple[str, str]] = set()
    for index, candidate in enumerate(routes):
        shape = parse_pattern(candidate["path"]).shape
        keys = {(shape, method) for method in candidate["methods"]}
        if keys & claimed:
            continue
        claimed |= keys
        kept[f"r{index}"] = candidate
    return kept


def stack_with(routes: dict[str, dict[str, Any]]) -> StackConfig:
    document = json.loads(json.dumps(BASE))
    document["gateways"]["ingest"]["routes"] = routes
    return StackConfig.model_validate(document)


routes_strategy = st.lists(route, min_size=1, max_size=8).map(without_shadowing)


def shuffled(document: dict[str, Any], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)

    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            items = list(node.items())
            rng.shuffle(items)
            return {k: walk(v, k) for k, v in items}
        if isinstance(node, list) and key in {
            "methods",
            "roles",
            "groups",
            "emails",
            "dags",
            "service_tokens",
            "oidc_clients",
            "dag_grants",
        }:
            items = [walk(v) for v in node]
            rng.shuffle(items)
            return items
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(document)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(routes=routes_strategy, seed=st.integers(0, 2**32))
def test_output_does_not_depend_on_declaration_order(routes: dict[str, Any], seed: int) -> None:
    stack = stack_with(routes)
    reordered = StackConfig.model_validate(shuffled(stack.model_dump(mode="json"), seed))
    assert compile_stack(stack) == compile_stack(reordered)
    assert access_matrix(stack) == access_matrix(reordered)


request_path = st.lists(st.sampled_from([*LITERALS, "zz", "other"]), min_size=0, max_size=5)


def most_specific(stack: StackConfig, method: str, path: tuple[str, ...]) -> str | None:
    """An independent reading of the config: the winning route by pattern precedence."""
    candidates = [
        (route.pattern.precedence, name)
        for name, route in stack.gateways["ingest"].routes.items()
        if method in route.methods and route.pattern.matches(path)
    ]
    return min(candidates)[1] if candidates else None


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    routes=routes_strategy,
    method=st.sampled_from(METHODS),
    path=request_path,
    caller_roles=st.frozensets(st.sampled_from(ROLES), max_size=3),
)
def test_no_role_reaches_a_route_it_was_not_granted(
    routes: dict[str, Any], method: str, path: list[str], caller_roles: frozenset[str]
) -> None:
    stack = stack_with(routes)
    policy = compile_gateway(stack, "ingest").document
    verdict = evaluate(policy, method, tuple(path), caller_roles)
    winner = most_specific(stack, method, tuple(path))
    assert verdict.route == winner
    if verdict.decision == "allow":
        granted = stack.gateways["ingest"].routes[winner or ""]
        assert caller_roles & set(granted.roles)
        assert method in granted.methods
    elif winner is not None:
        assert not caller_roles & set(stack.gateways["ingest"].routes[winner].roles)


def path_hitting(pattern: str) -> tuple[str, ...]:
    parts = parse_pattern(pattern).segments
    concrete = []
    for part in parts:
        if part == "**":
            concrete.append("deeper-unmatched-tail")
        elif part == "*" or part.startswith("{"):
            concrete.append("value-nobody-declares")
        else:
            concrete.append(part)
    return tuple(concrete)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(routes=routes_strategy)
def test_every_route_is_reachable_by_exactly_its_roles(routes: dict[str, Any]) -> None:
    stack = stack_with(routes)
    policy = compile_gateway(stack, "ingest").document
    for name, declared in stack.gateways["ingest"].routes.items():
        path = path_hitting(declared.path)
        for method in declared.methods:
            if most_specific(stack, method, path) != name:
                continue  # another route is more specific for this very path; checked above
            allowed = {
                role
                for role in ROLES
                if evaluate(policy, method, path, frozenset({role})).decision == "allow"
            }
            assert allowed == set(declared.roles)


def test_example_routes_are_reachable_by_exactly_their_roles() -> None:
    stack = load_stack("prod").config
    for gateway_name, gateway in stack.gateways.items():
        policy = compile_gateway(stack, gateway_name).document
        for name, declared in gateway.routes.items():
            path = path_hitting(declared.path)
            for method in declared.methods:
                allowed = {
                    role
                    for role in stack.roles
                    if evaluate(policy, method, path, frozenset({role})).decision == "allow"
                }
                assert allowed == set(declared.roles), (gateway_name, name, method)


def test_policy_document_is_minimal_and_versioned() -> None:
    stack = load_stack("prod").config
    compiled = compile_stack(stack)
    warehouse = compiled["warehouse"].document
    assert set(warehouse["roles"]) == {
        "ai-agent",
        "airflow-worker",
        "analyst",
        "data-engineer",
        "platform-admin",
    }
    assert "ci" not in warehouse["roles"]
    assert [r["name"] for r in warehouse["routes"]] == ["query", "admin", "tables"]
    assert len({p.version for p in compiled.values()}) == 3
    assert compiled["trigger"].document["dags"]["refresh_dashboards"]["ai-agent"]["conf_schema"][
        "required"
    ] == ["dashboard"]


def test_version_changes_when_a_grant_changes() -> None:
    stack = load_stack("prod").config
    document = stack.model_dump(mode="json")
    document["gateways"]["warehouse"]["routes"]["tables"]["roles"].remove("ai-agent")
    changed = StackConfig.model_validate(document)
    assert compile_gateway(stack, "warehouse").version != compile_gateway(changed, "warehouse").version
    assert compile_gateway(stack, "ingest").version == compile_gateway(changed, "ingest").version


def test_unmatched_path_and_method_decisions() -> None:
    stack = load_stack("prod").config
    policy = compile_gateway(stack, "ingest").document
    engineer = frozenset({"data-engineer"})
    assert evaluate(policy, "GET", ("v1", "nothing"), engineer).decision == "no_route"
    assert evaluate(policy, "DELETE", ("v1", "events"), engineer).decision == "method_not_allowed"
    assert evaluate(policy, "POST", ("v1", "batches", "7", "rows"), engineer).decision == ("role_not_allowed")
    assert evaluate(policy, "GET", ("v1", "health"), frozenset({"analyst"})).decision == ("role_not_allowed")
