"""`airgate can-i` answers from the compiled policy with the reference decision, and that decision
cannot drift from the Worker's own code: generated requests and token claims go through both the
Python (infra/policy/decision.py, identity.py) and the Worker's JavaScript (worker_templates/lib)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.config.loader import PROJECT_ROOT, load_stack
from infra.policy.can_i import Asker, AskError, ask, grants
from infra.policy.compiler import compile_stack
from infra.policy.decision import decide, normalise_path
from infra.policy.evaluate import evaluate
from infra.policy.identity import identify

NODE = PROJECT_ROOT / "node_modules" / ".bin" / "node"
LOCAL = load_stack("local").config
PROD = load_stack("prod").config
POLICIES = compile_stack(LOCAL)

# The Worker's functions, on the same inputs: the path as the runtime's URL parser hands it over.
JS = """
import { pathToFileURL } from "node:url";
const lib = (name) => import(pathToFileURL(process.argv[1] + "/worker_templates/lib/" + name).href);
const { normalisePath, evaluate } = await lib("path.js");
const { identify } = await lib("identity.js");
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { policies, requests, claims } = JSON.parse(input);
const routes = requests.map(([gateway, method, raw, roles]) => {
  try {
    const path = normalisePath(new URL("http://gateway.test" + raw).pathname);
    const verdict = evaluate(policies[gateway], method, path, roles);
    return [verdict.decision, verdict.route?.name ?? null, path];
  } catch (error) {
    if (error.reason !== "invalid_path") throw error;
    return ["invalid_path", null, null];
  }
});
const identities = claims.map(([gateway, mode, c, clients]) =>
  identify(c, mode, policies[gateway], { roles_claim: "groups" }, clients));
console.log(JSON.stringify({ routes, identities }));
"""


def run_worker_code(requests: list[Any], claims: list[Any]) -> dict[str, Any]:
    documents = {name: policy.document for name, policy in POLICIES.items()}
    answer = subprocess.run(
        [str(NODE), "--input-type=module", "-e", JS, str(PROJECT_ROOT)],
        input=json.dumps({"policies": documents, "requests": requests, "claims": claims}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(answer.stdout))


LITERALS = sorted(
    {s for p in POLICIES.values() for r in p.document["routes"] for s in r["segments"] if s[0] not in "{*"}
    | {d for p in POLICIES.values() for d in p.document["dags"]}
)
TRICKY = [".", "..", "%2e", "%2E%2e", ".%2e", "%2f", "a%2Fb", "%5c", "%", "%zz", "%41", "%C3%A9", "%ff",
          "..;x", ".;y", "a\\b", "x y", "\x01", "é", "\t", "%252e", "runs", "a?b", "#f", " "]  # fmt: skip
segment = st.sampled_from(LITERALS + TRICKY) | st.text(alphabet="az09%.;-_~", min_size=1, max_size=4)
raw_paths = st.lists(segment, max_size=6).map(lambda parts: "/" + "/".join(parts)) | st.builds(
    lambda parts, tail: "/" + "/".join(parts) + tail,
    st.lists(segment, max_size=5),
    st.sampled_from(["/", "//"]),
)
W, T, IN = (f"https://{n}.acme-data.com" for n in ("warehouse", "trigger", "ingest"))
ROLES = sorted(LOCAL.roles)
requests = st.tuples(
    st.sampled_from(sorted(POLICIES)),
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    raw_paths,
    st.lists(st.sampled_from(ROLES), max_size=3, unique=True),
)
MEMBERS = sorted(
    {m for r in LOCAL.roles.values() for m in (*r.groups, *r.emails, *r.service_tokens, *r.oidc_clients)}
)
name = st.sampled_from(MEMBERS) | st.sampled_from(["someone", "ONCALL@ACME-DATA.COM", "token-x"])
claim_sets = st.tuples(
    st.sampled_from(sorted(POLICIES)),
    st.sampled_from(["oidc", "access"]),
    st.fixed_dictionaries(
        {},
        optional={
            "sub": name,
            "client_id": name,
            "azp": name,
            "email": name,
            "common_name": name,
            "groups": name | st.lists(name | st.integers(), max_size=3),
        },
    ),
    st.dictionaries(name, name, max_size=2),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests, min_size=60, max_size=60), st.lists(claim_sets, min_size=30, max_size=30))
def test_can_i_decides_exactly_as_the_worker_code_on_generated_requests(
    batch: list[Any], claims: list[Any]
) -> None:
    worker = run_worker_code(batch, claims)
    for (gateway, method, raw, roles), (decision, route, js_path) in zip(
        batch, worker["routes"], strict=True
    ):
        policy = POLICIES[gateway].document
        ours = decide(policy, method, raw, frozenset(roles))
        if decision == "invalid_path":
            assert ours.decision == "invalid_path", (gateway, method, raw)
            continue
        assert list(normalise_path(raw)) == js_path, raw
        # Route level: what the Worker's evaluate() says is what the reference evaluator says.
        verdict = evaluate(policy, method, tuple(js_path), frozenset(roles))
        assert (verdict.decision, verdict.route) == (decision, route), (gateway, method, raw, roles)
        if policy["kind"] != "dag_trigger" or decision != "allow":
            assert (ours.decision, ours.route["name"] if ours.route else None) == (decision, route)
    for (gateway, mode, token, clients), theirs in zip(claims, worker["identities"], strict=True):
        mine = identify(token, mode, POLICIES[gateway].document, "groups", clients)
        assert mine.subject == theirs["subject"], token
        assert list(mine.roles) == theirs["roles"], token
        assert set(mine.ids) == {i for i in theirs["ids"] if isinstance(i, str)}, token


def test_can_i_uses_the_policy_the_build_writes_for_the_worker(tmp_path: Any) -> None:
    from infra.build.artifacts import write_build

    for item in write_build(tmp_path, "local", LOCAL):
        answer = ask(LOCAL, Asker("role", "ai-agent"), "GET", "/", item.gateway)
        assert answer["policy_version"] == item.policy.version
        assert (tmp_path / item.gateway / "policy.json").read_text().strip() == POLICIES[
            item.gateway
        ].canonical


@pytest.mark.parametrize(
    ("asker", "method", "url", "decision", "route"),
    [
        (Asker("role", "ai-agent"), "GET", W + "/v1/tables/revenue?x=1", "allow", "tables"),
        (
            Asker("role", "ai-agent"),
            "get",
            "https://WAREHOUSE.acme-data.com/v1/tables/../admin/u",
            "role_not_allowed",
            "admin",
        ),
        (Asker("role", "ai-agent"), "DELETE", W + "/v1/tables/x", "method_not_allowed", None),
        (Asker("role", "ai-agent"), "GET", W + "/nothing", "no_route", None),
        (Asker("role", "ai-agent"), "GET", W + "/v1/tables/a%2Fb", "invalid_path", None),
        (Asker("role", "ai-agent"), "BREW", W + "/v1/tables", "invalid_method", None),
        (
            Asker("client", "ai-agent"),
            "POST",
            T + "/dags/rebuild_warehouse/runs",
            "dag_not_granted",
            "trigger-run",
        ),
        (Asker("client", "ci"), "GET", T + "/dags/gateway_smoke_test/runs/r1", "allow", "run-status"),
        (Asker("user", "OnCall@Acme-Data.com"), "DELETE", W + "/v1/admin/x", "allow", "admin"),
        (Asker("user", "someone@acme-data.com"), "GET", IN + "/v1/health", "role_not_allowed", "health"),
        (Asker("claims", "t.json", {"groups": ["analytics"]}), "POST", W + "/v1/query", "allow", "query"),
    ],
)
def test_can_i_names_decision_and_route(
    asker: Asker, method: str, url: str, decision: str, route: str | None
) -> None:
    answer = ask(PROD, asker, method, url)
    assert (answer["decision"], answer["route"]) == (decision, route)
    assert answer["allowed"] == (decision == "allow")
    assert answer["policy_version"] == compile_stack(PROD)[answer["gateway"]].version


def test_can_i_reports_rate_limit_dag_grant_and_conf_schema() -> None:
    answer = ask(
        PROD,
        Asker("client", "ai-agent"),
        "POST",
        "https://trigger.acme-data.com/dags/refresh_dashboards/runs",
    )
    assert answer["rate_limit"] == {"requests": 20, "per_seconds": 60}
    assert answer["dag_id"] == "refresh_dashboards"
    assert answer["conf_schemas"][0]["required"] == ["dashboard"]
    assert "conf matches the grant's schema" in answer["reason"]
    denied = ask(PROD, Asker("role", "analyst"), "POST", "https://warehouse.acme-data.com/v1/admin/x")
    assert denied["reason"] == "route admin grants platform-admin; the identity holds analyst"
    assert denied["rate_limit"] is None


def test_list_prints_what_a_role_can_do_and_nothing_else() -> None:
    listing = grants(PROD, Asker("role", "ci"))
    reachable = {(g["gateway"], r["route"]) for g in listing["gateways"] for r in g["routes"]}
    assert reachable == {("ingest", "health"), ("trigger", "trigger-run"), ("trigger", "run-status")}
    dags = [d["dag_id"] for g in listing["gateways"] for d in g["dags"]]
    assert dags == ["gateway_smoke_test"]


@pytest.mark.parametrize(
    ("asker", "url", "message"),
    [
        (Asker("role", "nobody"), "https://warehouse.acme-data.com/", "no role 'nobody'"),
        (Asker("client", "stranger"), "https://warehouse.acme-data.com/", "no client 'stranger'"),
        (Asker("role", "ci"), "https://elsewhere.example/", "no gateway serves 'elsewhere.example'"),
        (Asker("role", "ci"), "/v1/health", "names no host"),
    ],
)
def test_questions_it_cannot_answer_say_why(asker: Asker, url: str, message: str) -> None:
    with pytest.raises(AskError, match=message):
        ask(PROD, asker, "GET", url)
