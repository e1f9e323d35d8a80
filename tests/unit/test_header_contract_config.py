"""Stack settings of the gateway's header contract, run ownership and auth-failure limits: validated
strictly, and carried into the compiled policy document the Worker reads (not new bindings)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from infra.config.loader import load_stack
from infra.config.model import StackConfig
from infra.config.sections import RESERVED_HEADER_PREFIXES, RESERVED_HEADERS, Route
from infra.policy.compiler import compile_gateway

BASE = load_stack("dev").config.model_dump(mode="json")


def stack_with(edit: Any) -> StackConfig:
    document = json.loads(json.dumps(BASE))
    edit(document)
    return StackConfig.model_validate(document)


def test_defaults_compile_to_the_documented_contract() -> None:
    document = compile_gateway(stack_with(lambda d: None), "warehouse").document
    assert document["headers"] == {
        "forward": [],
        "client_address": False,
        "set_cookie": "drop",
        "absolute_location": "rewrite",
    }
    assert all(route["forward_headers"] == [] for route in document["routes"])
    assert document["limits"]["auth_failures"] == {"requests": 300, "per_seconds": 60}
    trigger = compile_gateway(stack_with(lambda d: None), "trigger").document
    grants = [grant for dag in trigger["dags"].values() for grant in dag.values()]
    assert grants and all(grant["read_others_runs"] is False for grant in grants)


def test_stack_settings_reach_the_policy_document() -> None:
    def edit(document: dict[str, Any]) -> None:
        gateway = document["gateways"]["warehouse"]
        gateway["forward_headers"] = ["X-Tenant", "if-none-match"]
        gateway["forward_client_address"] = True
        gateway["response"] = {"set_cookie": "forward", "absolute_location": "drop"}
        gateway["auth_failure_rate_limit"] = {"requests": 10, "per_seconds": 60}
        gateway["routes"]["query"]["forward_headers"] = ["X-Query-Tag"]
        document["dag_grants"][0]["read_others_runs"] = True

    stack = stack_with(edit)
    document = compile_gateway(stack, "warehouse").document
    assert document["headers"] == {
        "forward": ["if-none-match", "x-tenant"],
        "client_address": True,
        "set_cookie": "forward",
        "absolute_location": "drop",
    }
    assert next(r for r in document["routes"] if r["name"] == "query")["forward_headers"] == ["x-query-tag"]
    assert document["limits"]["auth_failures"] == {"requests": 10, "per_seconds": 60}
    before = compile_gateway(stack_with(lambda d: None), "warehouse").version
    assert compile_gateway(stack, "warehouse").version != before, (
        "what is enforced changed, so does the version"
    )
    grant = stack.dag_grants[0]
    trigger = compile_gateway(stack, grant.gateway).document
    assert trigger["dags"][grant.dags[0]][grant.role]["read_others_runs"] is True


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["X_Tenant"], "no '_'"),
        (["x tenant"], "no '_'"),
        (["Authorization"], "set or refused by the gateway"),
        (["X-Airgate-Subject"], "set or refused by the gateway"),
        (["X-Forwarded-User"], "set or refused by the gateway"),
        (["CF-Connecting-IP"], "set or refused by the gateway"),
        (["X-HTTP-Method-Override"], "set or refused by the gateway"),
        (["x-tenant", "X-Tenant"], "listed twice"),
    ],
)
def test_forward_headers_refuse_what_the_gateway_owns(names: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Route(path="/v1/x", methods=("GET",), roles=("analyst",), forward_headers=tuple(names))


@pytest.mark.parametrize("path", ["/.airgate", "/.airgate/decision", "/.airgate/**"])
def test_routes_under_the_reserved_prefix_are_refused(path: str) -> None:
    with pytest.raises(ValidationError, match=r"/\.airgate/ are the gateway's own"):
        Route(path=path, methods=("GET",), roles=("analyst",))


reserved = st.sampled_from(sorted(RESERVED_HEADERS)) | st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(RESERVED_HEADER_PREFIXES),
    st.from_regex(r"[a-z0-9-]{1,10}", fullmatch=True),
)


@given(reserved, st.randoms())
def test_no_spelling_of_a_reserved_header_is_accepted(name: str, rnd: Any) -> None:
    spelled = "".join(c.upper() if rnd.random() < 0.5 else c for c in name)
    with pytest.raises(ValidationError):
        Route(path="/v1/x", methods=("GET",), roles=("analyst",), forward_headers=(spelled,))


@given(
    st.from_regex(r"x-[a-z0-9]{1,8}(-[a-z0-9]{1,8})?", fullmatch=True).filter(
        lambda n: not n.startswith(("x-airgate-", "x-forwarded-"))
    )
)
def test_other_names_are_kept_lower_case(name: str) -> None:
    if name in RESERVED_HEADERS:
        return
    route = Route(path="/v1/x", methods=("GET",), roles=("analyst",), forward_headers=(name.upper(),))
    assert route.forward_headers == (name,)
