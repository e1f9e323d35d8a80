"""`airgate can-i` answers from the compiled policy with the reference decision, and that decision
cannot drift from the Worker's own code: generated requests and token claims go through both the
Python (infra/policy/decision.py, identity.py) and the Worker's JavaScript (worker_templates/lib)."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from infra.config.loader import PROJECT_ROOT, load_stack
from infra.config.sections import HTTP_METHODS
from infra.policy.can_i import Asker, AskError, ask, grants
from infra.policy.compiler import compile_stack
from infra.policy.control import Control
from infra.policy.decision import STATUS, decide, normalise_path, run_owner_prefix, url_pathname
from infra.policy.evaluate import evaluate
from infra.policy.identity import SubjectMissing, apply_control, identify

NODE = PROJECT_ROOT / "node_modules" / ".bin" / "node"
LOCAL = load_stack("local").config
PROD = load_stack("prod").config
POLICIES = compile_stack(LOCAL)

# The Worker v2's own functions on the same inputs, in the order gateway.js `handle` runs them: the
# method, the path as the runtime's URL parser hands it over (`normalisePath`), the route
# (`evaluate`), and at a DAG-trigger gateway dag_trigger.js `check` (grant, run ownership) then the
# operation its handler serves. `handle`/`decide` are not exported, so those few steps are spelled out
# here (the method list is held to gateway.js's by a test below); each step is the Worker's export.
JS = """
import { pathToFileURL } from "node:url";
const lib = (name) => import(pathToFileURL(process.argv[1] + "/worker_templates/lib/" + name).href);
const { normalisePath, evaluate, params } = await lib("path.js");
const { identify } = await lib("identity.js");
const { check } = await lib("dag_trigger.js");
const { GatewayError } = await lib("problem.js");
const METHODS = JSON.parse(process.argv[2]);
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { policies, requests, claims } = JSON.parse(input);
async function decide(policy, method, raw, identity) {
  if (!METHODS.includes(method)) return { decision: "invalid_method", route: null, path: null };
  let path;
  try {
    path = normalisePath(new URL("http://gateway.test" + raw).pathname);
  } catch (error) {
    if (error.reason !== "invalid_path") throw error;
    return { decision: "invalid_path", route: null, path: null };
  }
  const verdict = evaluate(policy, method, path, identity.roles);
  const route = verdict.route?.name ?? null;
  const found = { path, route, verdict: [verdict.decision, route] };
  if (verdict.decision !== "allow" || policy.kind !== "dag_trigger") {
    return { ...found, decision: verdict.decision };
  }
  const ctx = { policy, identity, params: params(verdict.route.segments, path) };
  try {
    await check(ctx);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    return { ...found, decision: error.reason };
  }
  const { dag_id: dagId, run_id: runId } = ctx.params;
  const served = dagId && (runId === undefined ? method === "POST" : method === "GET" || method === "HEAD");
  return { ...found, decision: served ? "allow" : "no_route" };
}
const routes = [];
for (const [gateway, method, raw, roles, subject] of requests) {
  const found = await decide(policies[gateway], method, raw, { subject, roles });
  // The status the Worker's own refusal carries (problem.js), 200 for an allowed request.
  const status = found.decision === "allow" ? 200 : new GatewayError(found.decision).status;
  routes.push({ ...found, status });
}
const identities = claims.map(([gateway, mode, c, clients]) => {
  try {
    return identify(c, mode, policies[gateway], { roles_claim: "groups" }, clients);
  } catch (error) {
    if (error.reason !== "token_subject_missing") throw error;
    return { refused: error.reason, status: error.status };
  }
});
console.log(JSON.stringify({ routes, identities }));
"""


def run_worker_code(requests: list[Any], claims: list[Any]) -> dict[str, Any]:
    documents = {name: policy.document for name, policy in POLICIES.items()}
    answer = subprocess.run(
        [str(NODE), "--input-type=module", "-e", JS, str(PROJECT_ROOT), json.dumps(HTTP_METHODS)],
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
DAGS = sorted({d for p in POLICIES.values() for d in p.document["dags"]})
MEMBERS = sorted(
    {m for r in LOCAL.roles.values() for m in (*r.groups, *r.emails, *r.service_tokens, *r.oidc_clients)}
)
name = st.sampled_from(MEMBERS) | st.sampled_from(["someone", "ONCALL@ACME-DATA.COM", "token-x"])
# Subjects the x-airgate-subject header cannot carry as they are: both sides refuse them.
UNCARRIED_SUBJECTS = [" lead", "trail ", "tab\t", "a\nb", "del\x7f", "end\n", "nul\x00"]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, str, list[str], str]:
    """(gateway, method, raw path, roles held, subject); run reads name the subject's own runs,
    another's, or any id, so run ownership is decided both ways."""
    subject = draw(name)
    gateway, path = draw(st.sampled_from(sorted(POLICIES))), draw(raw_paths)
    method = draw(st.sampled_from([*HTTP_METHODS, *HTTP_METHODS, "BREW", "get", "TRACE"]))
    if draw(st.booleans()):
        owner = draw(st.sampled_from([subject, "someone-else"]))
        run = draw(st.sampled_from([run_owner_prefix(owner), "manual__"]) | segment) + draw(segment)
        dag = draw(st.sampled_from([*DAGS, *DAGS, draw(segment)]))
        path = f"/dags/{dag}/runs" + draw(st.sampled_from(["", f"/{run}"]))
        gateway, method = "trigger", draw(st.sampled_from(["GET", "GET", "HEAD", "POST", "POST", method]))
    roles = draw(st.lists(st.sampled_from(ROLES), max_size=3, unique=True))
    return gateway, method, path, roles, subject


@st.composite
def claim_sets(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    """Claims as an IdP might sign them: a person (sub, email verified or not), a client-credentials
    token (client_id == sub), a token naming a client only in `azp`, one with no sub or email."""
    claims = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "sub": name | st.sampled_from(["", 7]) | st.sampled_from(UNCARRIED_SUBJECTS),
                "client_id": name,
                "azp": name,
                "email": name,
                "email_verified": st.sampled_from([True, False, "true", 1]),
                "common_name": name | st.just(""),
                "groups": name | st.lists(name | st.integers(), max_size=3),
            },
        )
    )
    if "sub" in claims and draw(st.booleans()):
        claims["client_id"] = claims["sub"]  # a client-credentials token (RFC 9068 §2.2)
    clients = draw(st.dictionaries(name, name, max_size=2))
    return draw(st.sampled_from(sorted(POLICIES))), draw(st.sampled_from(["oidc", "access"])), claims, clients


# No shrinking: each example is one Node run (shrinking took minutes), and every assertion names
# the exact request or claims that differ.
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
@given(st.lists(requests(), min_size=60, max_size=60), st.lists(claim_sets(), min_size=30, max_size=30))
def test_can_i_decides_exactly_as_the_worker_code_on_generated_requests(
    batch: list[Any], claims: list[Any]
) -> None:
    worker = run_worker_code(batch, claims)
    for (gateway, method, raw, roles, subject), theirs in zip(batch, worker["routes"], strict=True):
        policy = POLICIES[gateway].document
        ours = decide(policy, method, raw, frozenset(roles), subject)
        case = (gateway, method, raw, roles, subject)
        assert (ours.decision, ours.route["name"] if ours.route else None) == (
            theirs["decision"],
            theirs["route"],
        ), case
        assert ours.status == STATUS[theirs["decision"]], case
        assert ours.status == theirs["status"], case
        if theirs["path"] is None:
            continue
        assert list(normalise_path(raw)) == theirs["path"], raw
        # Route level: what the Worker's evaluate() says is what the reference evaluator says.
        verdict = evaluate(policy, method, tuple(theirs["path"]), frozenset(roles))
        assert [verdict.decision, verdict.route] == theirs["verdict"], case
    for (gateway, mode, token, clients), theirs in zip(claims, worker["identities"], strict=True):
        document = POLICIES[gateway].document
        if "refused" in theirs:
            assert theirs["status"] == 401
            with pytest.raises(SubjectMissing):
                identify(token, mode, document, "groups", clients)
            continue
        mine = identify(token, mode, document, "groups", clients)
        assert mine.subject == theirs["subject"], token
        assert list(mine.roles) == theirs["roles"], token
        assert set(mine.ids) == set(theirs["ids"]), token


def test_the_harness_method_list_is_the_workers() -> None:
    source = (PROJECT_ROOT / "worker_templates" / "lib" / "gateway.js").read_text()
    found = re.search(r"^const METHODS = (\[.*\]);$", source, re.MULTILINE)
    assert found is not None, "gateway.js no longer names its METHODS list"
    assert json.loads(found.group(1)) == list(HTTP_METHODS)


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
        (Asker("client", "ci"), "GET", T + "/dags/gateway_smoke_test/runs/r1", "run_not_owned", "run-status"),
        (
            Asker("client", "ci"),
            "GET",
            T + f"/dags/gateway_smoke_test/runs/{run_owner_prefix('ci')}2026",
            "allow",
            "run-status",
        ),
        (Asker("role", "ci"), "BREW", W + "/v1/tables/a%2Fb", "invalid_method", None),
        (Asker("user", "OnCall@Acme-Data.com"), "DELETE", W + "/v1/admin/x", "allow", "admin"),
        (Asker("user", "someone@acme-data.com"), "GET", IN + "/v1/health", "role_not_allowed", "health"),
        (
            Asker("claims", "t.json", {"sub": "u1", "groups": ["analytics"]}),
            "POST",
            W + "/v1/query",
            "allow",
            "query",
        ),
        # No usable subject: the Worker refuses the token (401) whatever the groups say.
        (
            Asker("claims", "t.json", {"groups": ["analytics"]}),
            "POST",
            W + "/v1/query",
            "token_subject_missing",
            None,
        ),
        (Asker("claims", "t.json", {}), "GET", W + "/v1/tables/a%2Fb", "invalid_path", None),
    ],
)
def test_can_i_names_decision_and_route(
    asker: Asker, method: str, url: str, decision: str, route: str | None
) -> None:
    answer = ask(PROD, asker, method, url)
    assert (answer["decision"], answer["route"]) == (decision, route)
    assert answer["allowed"] == (decision == "allow")
    assert answer["policy_version"] == compile_stack(PROD)[answer["gateway"]].version


LW, LI = "https://warehouse.airgate.localhost", "https://ingest.airgate.localhost"
ADMIN = ("DELETE", "/v1/admin/x")
HEALTH = ("GET", "/v1/health")


@pytest.mark.parametrize(
    ("stack", "claims", "url", "decision"),
    [
        # local: oidc gateways. An email counts only when the IdP vouches for it (email_verified: true).
        (LOCAL, {"sub": "p1", "email": "oncall@acme-data.com"}, (LW, *ADMIN), "role_not_allowed"),
        (
            LOCAL,
            {"sub": "p1", "email": "oncall@acme-data.com", "email_verified": "true"},
            (LW, *ADMIN),
            "role_not_allowed",
        ),
        (
            LOCAL,
            {"sub": "p1", "email": "oncall@acme-data.com", "email_verified": False},
            (LW, *ADMIN),
            "role_not_allowed",
        ),
        (
            LOCAL,
            {"sub": "p1", "email": "ONCALL@acme-data.com", "email_verified": True},
            (LW, *ADMIN),
            "allow",
        ),
        # A client id counts only on a client-credentials token (client_id == sub), never from azp.
        (LOCAL, {"sub": "ci", "client_id": "ci"}, (LI, *HEALTH), "allow"),
        (LOCAL, {"sub": "p1", "azp": "ci"}, (LI, *HEALTH), "role_not_allowed"),
        (LOCAL, {"sub": "ci"}, (LI, *HEALTH), "role_not_allowed"),
        (LOCAL, {"sub": "p1", "client_id": "ci"}, (LI, *HEALTH), "role_not_allowed"),
        # No usable subject: 401, whatever else the token says; a bad path is refused before that.
        (
            LOCAL,
            {"client_id": "ci", "azp": "ci", "groups": ["platform"]},
            (LI, *HEALTH),
            "token_subject_missing",
        ),
        (
            LOCAL,
            {"email": "oncall@acme-data.com", "email_verified": True},
            (LW, *ADMIN),
            "token_subject_missing",
        ),
        (LOCAL, {}, (LW, "GET", "/v1/tables/a%2Fb"), "invalid_path"),
        # prod: Access gateways. Access vouches for the email; a service token by its common_name.
        (PROD, {"sub": "p1", "email": "OnCall@acme-data.com"}, (W, *ADMIN), "allow"),
        (PROD, {"common_name": "ci"}, (IN, *HEALTH), "allow"),
        (PROD, {"sub": "p1", "client_id": "p1", "azp": "ci"}, (IN, *HEALTH), "role_not_allowed"),
    ],
)
def test_can_i_maps_token_claims_as_the_worker_does(
    stack: Any, claims: dict[str, Any], url: tuple[str, str, str], decision: str
) -> None:
    host, method, path = url
    answer = ask(stack, Asker("claims", "t.json", claims), method, host + path)
    assert answer["decision"] == decision, answer["reason"]
    assert answer["status"] == {"allow": 200, "role_not_allowed": 403, "token_subject_missing": 401}.get(
        decision, 400
    )
    if decision == "token_subject_missing":
        assert answer["roles"] == [] and "401" in answer["reason"]


def test_a_user_is_a_person_whose_email_the_idp_vouches_for() -> None:
    answer = ask(LOCAL, Asker("user", "OnCall@Acme-Data.com"), "DELETE", LW + "/v1/admin/x")
    assert (answer["decision"], answer["roles"]) == ("allow", ["platform-admin"])
    nobody = grants(LOCAL, Asker("claims", "t.json", {"groups": ["platform"]}))
    assert all(g["roles"] == [] and g["routes"] == [] for g in nobody["gateways"])


def test_revocation_and_kill_switch_as_the_worker_applies_them() -> None:
    document = POLICIES["warehouse"].document
    person = identify(
        {"sub": "p1", "email": "OnCall@acme-data.com", "email_verified": True}, "oidc", document
    )
    assert person.roles == ("platform-admin",)
    # A revoked email matches whatever its case (gateway.js lower-cases names with `@`), and a
    # revoked caller holds no role at all.
    assert apply_control(person, Control(frozenset({"ONCALL@ACME-DATA.COM"}))) == (True, ())
    assert apply_control(person, Control(frozenset({"p1"}))) == (True, ())
    assert apply_control(person, Control(frozenset({"P1"}))) == (False, ("platform-admin",))
    assert apply_control(person, Control(disabled_roles=frozenset({"platform-admin"}))) == (False, ())


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
        (Asker("role", "ci"), "v1/health", "names no host"),
    ],
)
def test_questions_it_cannot_answer_say_why(asker: Asker, url: str, message: str) -> None:
    with pytest.raises(AskError, match=message):
        ask(PROD, asker, "GET", url)


# ada-url (the URL parser of workerd and Node) resolves dot segments only when the first `/.` of a
# dots-only path is a dot segment itself: these are the cases where it differs from the WHATWG spec.
PARSER_CORNERS = [
    "/a/x;y/..",
    "/a/.x/..",
    "/a/.;/..",
    "/a/..;y/..",
    "/a/.y/..",
    "/a/.%3By/..",
    "/a/.;y/%2e%2e",
    "/.;y/..",
    "/a/b/.;y/../c/..",
    "/admin/.;y/..",
    "/a/b/..",
    "/a\\.x/..",
]


def test_the_path_twin_sees_what_the_runtime_url_parser_hands_the_worker() -> None:
    script = (
        "const paths = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(paths.map((p) => new URL('http://gateway.test' + p).pathname)));"
    )
    result = subprocess.run(
        [str(NODE), "-e", script, json.dumps(PARSER_CORNERS)], capture_output=True, text=True, check=True
    )
    runtime = json.loads(result.stdout)
    assert [url_pathname(p) for p in PARSER_CORNERS] == runtime
