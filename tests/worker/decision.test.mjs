// GET /.airgate/decision?method=M&path=P (issue 13, point 2): the decision the gateway would make
// for the caller's own identity, equal to the Python reference (infra/policy/evaluate.py) on every
// route × method × identity; it never forwards, never spends a rate-limit token, never triggers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem, ROOT } from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
let issuer, upstream, airflow, warehouse, trigger, artifacts, triggerArtifacts;

before(async () => {
  artifacts = readArtifacts(buildStack("local"), "warehouse");
  triggerArtifacts = readArtifacts(buildStack("local"), "trigger");
  issuer = await startIssuer();
  upstream = await startUpstream("warehouse");
  airflow = await startUpstream("airflow");
  warehouse = await startGateway(artifacts, {
    vars: { ...pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE }), CONTROL_TTL_SECONDS: "0" },
    secrets: { UPSTREAM_CREDENTIAL: "t" },
  });
  trigger = await startGateway(triggerArtifacts, {
    vars: pointAt(triggerArtifacts.wrangler, { issuer, upstream: airflow, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "airflow-token" },
  });
});

after(async () => {
  await warehouse?.dispose();
  await trigger?.dispose();
  await issuer?.close();
  await upstream?.close();
  await airflow?.close();
});

const as = async (claims) => ({ authorization: `Bearer ${await issuer.token(claims, { audience: AUDIENCE })}` });
const ask = (gateway, headers, method, path) =>
  gateway.send("GET", `/.airgate/decision?method=${encodeURIComponent(method)}&path=${encodeURIComponent(path)}`, { headers });

test("the answer names the route, the decision, the status, the rate limit and the deployed policy version", async () => {
  const agent = await as({ sub: "ai-agent", client_id: "ai-agent" });
  const answer = await ask(warehouse, agent, "POST", "//v1/./query");
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.headers["content-type"], /^application\/json/);
  assert.equal(answer.headers["cache-control"], "no-store");
  const query = JSON.parse(artifacts.policyText).routes.find((r) => r.name === "query");
  assert.deepEqual(answer.json, {
    gateway: "warehouse",
    policy_version: artifacts.manifest.policy_version,
    subject: "ai-agent",
    roles: ["ai-agent"],
    method: "POST",
    path: "/v1/query",
    decision: "allow",
    status: 200,
    route: "query",
    rate_limit: query.rate_limit,
  });
  const cases = [
    ["DELETE", "/v1/tables/x", "method_not_allowed", 405, null],
    ["GET", "/v1/admin/users", "role_not_allowed", 403, "admin"],
    ["GET", "/v2/nothing", "no_route", 404, null],
    ["GET", "/v1/tables/a%2Fb", "invalid_path", 400, null],
    ["TRACE", "/v1/tables/x", "invalid_method", 400, null],
  ];
  for (const [method, path, decision, status, route] of cases) {
    const { json } = await ask(warehouse, agent, method, path);
    assert.deepEqual([json.decision, json.status, json.route], [decision, status, route], `${method} ${path}`);
    // The real request gets exactly that status.
    const real = await warehouse.send(method, path, { headers: agent });
    assert.equal(real.status, status, `${method} ${path}: ${real.text}`);
  }
});

test("only authenticated callers get an answer; a bad query is a 400 problem", async () => {
  expectProblem(assert, await ask(warehouse, {}, "GET", "/v1/tables/x"), 401, "missing_credential");
  expectProblem(assert, await ask(warehouse, { authorization: "Bearer x.y.z" }, "GET", "/v1/tables/x"), 401, "invalid_token");
  const agent = await as({ sub: "ai-agent", client_id: "ai-agent" });
  expectProblem(assert, await warehouse.send("GET", "/.airgate/decision?path=%2Fv1", { headers: agent }), 400, "invalid_request");
  expectProblem(assert, await warehouse.send("GET", "/.airgate/decision?method=GET", { headers: agent }), 400, "invalid_request");
  expectProblem(assert, await ask(warehouse, agent, "get", "/v1/tables/x"), 400, "invalid_request");
  expectProblem(assert, await ask(warehouse, agent, "GET", "v1/tables/x"), 400, "invalid_request");
  // Any other path under /.airgate/ is no route of the stack's (the config refuses such routes).
  expectProblem(assert, await warehouse.send("GET", "/.airgate/other", { headers: agent }), 404, "no_route");
});

test("asking never reaches the upstream and never spends a rate-limit token", async () => {
  const analyst = await as({ sub: "u-decision", groups: ["analytics"] });
  const limit = JSON.parse(artifacts.policyText).routes.find((r) => r.name === "query").rate_limit.requests;
  const before = upstream.state.requests.length;
  const asked = await Promise.all(Array.from({ length: limit + 10 }, () => ask(warehouse, analyst, "POST", "/v1/query")));
  for (const answer of asked) assert.equal(answer.json.decision, "allow");
  assert.equal(upstream.state.requests.length, before, "nothing forwarded");
  const real = await Promise.all(Array.from({ length: limit }, () => warehouse.send("POST", "/v1/query", { headers: analyst, body: "{}" })));
  assert.deepEqual(real.map((a) => a.status), Array(limit).fill(200), "the whole bucket is still there");
});

test("revoked and kill-switched roles are gone from the answer", async () => {
  const agent = await as({ sub: "ai-agent", client_id: "ai-agent" });
  try {
    await warehouse.kv.put("control", JSON.stringify({ revoked_subjects: ["ai-agent"] }));
    const { json } = await ask(warehouse, agent, "GET", "/v1/tables/x");
    assert.deepEqual([json.roles, json.decision, json.revoked], [[], "role_not_allowed", true]);
    await warehouse.kv.put("control", JSON.stringify({ disabled_roles: ["ai-agent"] }));
    assert.deepEqual((await ask(warehouse, agent, "GET", "/v1/tables/x")).json.roles, []);
  } finally {
    await warehouse.kv.delete("control");
  }
});

test("the trigger gateway answers DAG grants, and asking triggers nothing", async () => {
  const agent = await as({ sub: "ai-agent", client_id: "ai-agent" });
  let { json } = await ask(trigger, agent, "POST", "/dags/refresh_dashboards/runs");
  assert.deepEqual([json.decision, json.status, json.route, json.dag_id], ["allow", 200, "trigger-run", "refresh_dashboards"]);
  ({ json } = await ask(trigger, agent, "POST", "/dags/rebuild_warehouse/runs"));
  assert.deepEqual([json.decision, json.status, json.dag_id], ["dag_not_granted", 403, "rebuild_warehouse"]);
  assert.equal(airflow.state.requests.length, 0, "Airflow never called");
});

// The Python reference, asked once for many cases.
function reference(policyText, cases) {
  const script = [
    "import json, sys",
    "from infra.policy.evaluate import evaluate",
    "data = json.load(sys.stdin)",
    "policy = json.loads(data['policy'])",
    "out = [evaluate(policy, c['method'], tuple(c['segments']), frozenset(c['roles'])) for c in data['cases']]",
    "print(json.dumps([[v.decision, v.route] for v in out]))",
  ].join("\n");
  const output = execFileSync(join(ROOT, ".venv", "bin", "python"), ["-c", script], {
    cwd: ROOT,
    input: JSON.stringify({ policy: policyText, cases }),
  });
  return JSON.parse(output);
}

test("equal to infra/policy/evaluate.py on every route × method × identity", async () => {
  const policy = JSON.parse(artifacts.policyText);
  const identities = [
    { sub: "ai-agent", client_id: "ai-agent" },
    { sub: "u-a", groups: ["analytics"] },
    { sub: "u-p", groups: ["platform"] },
    { sub: "u-d", groups: ["data-engineering"] },
    { sub: "airflow-worker", client_id: "airflow-worker" },
    { sub: "nobody" },
  ];
  const paths = new Set(["/", "/v1", "/v2/x", "/v1/tables", "/v1/admin"]);
  for (const route of policy.routes) {
    paths.add("/" + route.segments.map((s) => (s === "**" ? "a/b" : s.startsWith("{") || s === "*" ? "x1" : s)).join("/"));
  }
  const cases = [];
  const asked = [];
  for (const claims of identities) {
    const headers = await as(claims);
    for (const path of paths) {
      for (const method of METHODS) {
        asked.push(ask(warehouse, headers, method, path));
      }
    }
  }
  const answers = await Promise.all(asked);
  for (const answer of answers) {
    assert.equal(answer.status, 200, answer.text);
    cases.push({ method: answer.json.method, segments: answer.json.path.split("/").filter(Boolean), roles: answer.json.roles });
  }
  const expected = reference(artifacts.policyText, cases);
  answers.forEach((answer, i) => {
    assert.deepEqual([answer.json.decision, answer.json.route], expected[i], `${answer.json.method} ${answer.json.path} as ${answer.json.roles}`);
  });
  assert.ok(answers.length >= 300, `${answers.length} cases`);
});
