// The DAG trigger gateway (local stack, `trigger`) against a stand-in for Airflow 3's REST API:
// DAG grants, conf schemas (422 before Airflow sees anything), idempotency (20 concurrent triggers
// → one DAG run), the Worker-held Airflow credential, Durable Object failure, and the note that
// names the caller in Airflow's own record of every run.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem, streamWithoutEnding, airflowRuns,
} from "./helpers.mjs";
import { identify } from "../../worker_templates/lib/identity.js";
import { runNote } from "../../worker_templates/lib/dag_trigger.js";

const AUDIENCE = "http://airgate.localhost";
const PASSWORD = "airflow-trigger-password-for-tests";
const ACCOUNT = "airgate-trigger";
let issuer, airflow, gateway, artifacts;
const airflowState = { logins: 0, runs: [], tokens: new Set(), failNext: null, loginHeaders: null };
const notes = new Map(); // dag_run_id → the note Airflow was given

function b64(value) {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

// Airflow sees the gateway's run requests exactly as its API defines them.
const dagRuns = airflowRuns(airflowState.runs, {
  onPost(body) {
    assert.deepEqual(Object.keys(body).sort(), ["conf", "dag_run_id", "logical_date", "note"]);
    assert.equal(body.logical_date, null);
    if (!notes.has(body.dag_run_id)) notes.set(body.dag_run_id, body.note);
  },
});

async function airflowHandler(req, res, record) {
  const json = (status, body) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (req.method === "POST" && record.path === "/auth/token") {
    const body = JSON.parse(record.body || "{}");
    airflowState.loginHeaders = record.headers;
    if (body.username !== ACCOUNT || body.password !== PASSWORD) return json(401, { detail: "bad login" });
    airflowState.logins++;
    const token = `${b64({ alg: "HS256" })}.${b64({ sub: ACCOUNT, exp: Math.floor(Date.now() / 1000) + 3600 })}.sig${airflowState.logins}`;
    airflowState.tokens.add(token);
    return json(201, { access_token: token });
  }
  const bearer = (record.headers.authorization || "").replace(/^Bearer /, "");
  if (!airflowState.tokens.has(bearer)) return json(401, { detail: "not authenticated" });
  if (airflowState.failNext) {
    const status = airflowState.failNext;
    airflowState.failNext = null;
    if (status === 401) airflowState.tokens.delete(bearer);
    return json(status, { detail: `failing with ${status}` });
  }
  return dagRuns(req, res, record);
}

before(async () => {
  artifacts = readArtifacts(buildStack("local"), "trigger");
  issuer = await startIssuer();
  airflow = await startUpstream("airflow");
  airflow.state.handler = airflowHandler;
  gateway = await startGateway(artifacts, {
    vars: { ...pointAt(artifacts.wrangler, { issuer, upstream: airflow, audience: AUDIENCE }), AIRFLOW_USERNAME: ACCOUNT },
    secrets: { AIRFLOW_PASSWORD: PASSWORD },
  });
});

after(async () => {
  await gateway?.dispose();
  await issuer?.close();
  await airflow?.close();
});

const as = async (claims) => ({ authorization: `Bearer ${await issuer.token(claims, { audience: AUDIENCE })}` });
const trigger = (headers, dag, body) =>
  gateway.send("POST", `/dags/${dag}/runs`, { headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });

test("the AI agent triggers its granted DAG with allowed conf; Airflow gets the Worker's credential", async () => {
  const headers = await as({ sub: "ai-agent", client_id: "ai-agent" });
  const before = airflowState.runs.length;
  const answer = await trigger(headers, "refresh_dashboards", { conf: { dashboard: "revenue", full_refresh: true } });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.dag_id, "refresh_dashboards");
  assert.deepEqual(answer.json.conf, { dashboard: "revenue", full_refresh: true });
  assert.equal(airflowState.runs.length, before + 1);
  const seen = airflowState.runs.at(-1).headers;
  assert.notEqual(seen.authorization, headers.authorization, "the caller's token never reaches Airflow");
  assert.ok(airflowState.tokens.has(seen.authorization.replace("Bearer ", "")));
  assert.equal(seen["x-airgate-subject"], "ai-agent");
  assert.equal(seen["x-request-id"], answer.headers["x-request-id"]);
  assert.equal(answer.log.decision, "allow");
  assert.equal(answer.log.route, "trigger-run");
  assert.equal(answer.log.upstream_status, 200);
  assert.ok(!gateway.rawOutput.join("").includes(PASSWORD), "the Airflow password is never logged");
});

const CONF_VIOLATIONS = [
  ["conf without the required dashboard", { conf: { full_refresh: true } }],
  ["a dashboard outside the enum", { conf: { dashboard: "payroll" } }],
  ["a parameter that was not granted", { conf: { dashboard: "revenue", sql: "drop table x" } }],
  ["a parameter of the wrong type", { conf: { dashboard: "revenue", full_refresh: "yes" } }],
  ["no conf at all (the schema requires dashboard)", {}],
];

for (const [name, body] of CONF_VIOLATIONS) {
  test(`422 before Airflow sees it: ${name}`, async () => {
    const before = airflowState.runs.length;
    const answer = await trigger(await as({ sub: "ai-agent", client_id: "ai-agent", jti: name }), "refresh_dashboards", body);
    expectProblem(assert, answer, 422, "conf_schema_violation");
    assert.equal(airflowState.runs.length, before);
  });
}

const BAD_BODIES = [
  ["a field other than conf", { conf: { dashboard: "revenue" }, logical_date: "2020-01-01" }],
  ["not JSON", "{conf:"],
  ["conf not an object", { conf: ["revenue"] }],
  ["a JSON array", [1, 2]],
];
for (const [name, body] of BAD_BODIES) {
  test(`422 invalid_body: ${name}`, async () => {
    const before = airflowState.runs.length;
    const answer = await trigger(await as({ sub: "de-bodies", groups: ["data-engineering"] }), "ingest_events", body);
    expectProblem(assert, answer, 422, "invalid_body");
    assert.equal(airflowState.runs.length, before);
  });
}

test("a role may trigger only the DAGs it is granted", async () => {
  const before = airflowState.runs.length;
  expectProblem(assert, await trigger(await as({ sub: "ai-agent", client_id: "ai-agent" }), "rebuild_warehouse", { conf: {} }), 403, "dag_not_granted");
  expectProblem(assert, await trigger(await as({ sub: "ci", client_id: "ci" }), "refresh_dashboards", { conf: {} }), 403, "dag_not_granted");
  expectProblem(assert, await trigger(await as({ sub: "ci", client_id: "ci" }), "no_such_dag", { conf: {} }), 403, "dag_not_granted");
  expectProblem(assert, await trigger(await as({ sub: "u", groups: ["analytics"] }), "refresh_dashboards", {}), 403, "role_not_allowed");
  assert.equal(airflowState.runs.length, before);
  // A grant without a schema passes any object conf.
  const free = await trigger(await as({ sub: "ci", client_id: "ci" }), "gateway_smoke_test", { conf: { anything: [1, { x: 2 }] } });
  assert.equal(free.status, 200, free.text);
});

test("20 concurrent triggers with one Idempotency-Key → exactly one DAG run, the same answer for all", async () => {
  const headers = { ...(await as({ sub: "de-idem", groups: ["data-engineering"] })), "idempotency-key": "once-2026-11-29" };
  const before = airflowState.runs.length;
  const answers = await Promise.all(
    Array.from({ length: 20 }, () => trigger(headers, "refresh_dashboards", { conf: { dashboard: "funnel" } })),
  );
  assert.equal(airflowState.runs.length, before + 1, "one upstream call");
  const first = answers[0];
  for (const answer of answers) {
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json, first.json);
  }
  const reasons = answers.map((a) => a.log.reason).sort();
  assert.equal(reasons.filter((r) => r === "allowed").length, 1);
  assert.equal(reasons.filter((r) => r === "idempotent_replay").length, 19);
  assert.equal(answers.filter((a) => a.headers["idempotent-replayed"] === "true").length, 19);
});

test("an Idempotency-Key reused with another conf → 422; other subjects have their own keys", async () => {
  const key = { "idempotency-key": "shared-key" };
  const one = { ...(await as({ sub: "de-one", groups: ["data-engineering"] })), ...key };
  const two = { ...(await as({ sub: "de-two", groups: ["data-engineering"] })), ...key };
  const before = airflowState.runs.length;
  const first = await trigger(one, "ingest_events", { conf: { day: "2026-11-28" } });
  assert.equal(first.status, 200);
  expectProblem(assert, await trigger(one, "ingest_events", { conf: { day: "2026-11-29" } }), 422, "idempotency_key_reused");
  const replay = await trigger(one, "ingest_events", { conf: { day: "2026-11-28" } });
  assert.deepEqual(replay.json, first.json);
  assert.equal(replay.log.reason, "idempotent_replay");
  const other = await trigger(two, "ingest_events", { conf: { day: "2026-11-28" } });
  assert.notEqual(other.json.dag_run_id, first.json.dag_run_id);
  assert.equal(airflowState.runs.length, before + 2);
});

test("an Airflow failure is not stored: a retry with the same key starts the run", async () => {
  const headers = { ...(await as({ sub: "de-retry", groups: ["data-engineering"] })), "idempotency-key": "retry-me" };
  const before = airflowState.runs.length;
  airflowState.failNext = 503;
  const failed = await trigger(headers, "ingest_events", { conf: {} });
  assert.equal(failed.status, 503);
  assert.equal(failed.log.upstream_status, 503);
  const retried = await trigger(headers, "ingest_events", { conf: {} });
  assert.equal(retried.status, 200, retried.text);
  assert.equal(airflowState.runs.length, before + 1);
});

test("the Airflow login is cached, and renewed once when Airflow refuses it", async () => {
  const logins = airflowState.logins;
  assert.equal(logins, 1, "one login served every call so far");
  airflowState.failNext = 401;
  const answer = await trigger(await as({ sub: "de-relogin", groups: ["data-engineering"] }), "ingest_events", { conf: {} });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(airflowState.logins, logins + 1);
});

test("a caller reads the state of its own runs; another caller's run needs a read_others_runs grant", async () => {
  const agent = await as({ sub: "ai-agent", client_id: "ai-agent" });
  const started = await trigger(agent, "refresh_dashboards", { conf: { dashboard: "revenue" } });
  assert.equal(started.status, 200, started.text);
  const runId = started.json.dag_run_id;
  assert.match(runId, /^airgate__[0-9a-f]{16}__[0-9a-f]{32}$/);
  const path = `/dags/refresh_dashboards/runs/${encodeURIComponent(runId)}`;
  const answer = await gateway.send("GET", path, { headers: agent });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.state, "success");
  assert.deepEqual(answer.json.conf, { dashboard: "revenue" });
  assert.equal(answer.log.route, "run-status");
  // A data engineer holds a grant for the DAG, but not for the agent's run (its conf included).
  const engineer = await as({ sub: "de-reader", groups: ["data-engineering"] });
  const before = airflow.state.requests.length;
  expectProblem(assert, await gateway.send("GET", path, { headers: engineer }), 403, "run_not_owned");
  // Runs started outside the gateway belong to nobody's prefix: also refused.
  expectProblem(assert, await gateway.send("GET", "/dags/refresh_dashboards/runs/manual__1", { headers: agent }), 403, "run_not_owned");
  assert.equal(airflow.state.requests.length, before, "refused before Airflow is asked");
  const denied = await gateway.send("GET", `/dags/rebuild_warehouse/runs/${runId}`, { headers: agent });
  expectProblem(assert, denied, 403, "dag_not_granted");
});

test("a configured static token is used instead of a login; an idempotency store failure fails closed", async () => {
  const faulty = {
    name: "faulty",
    modules: true,
    script: "export class Broken { fetch() { throw new Error('boom'); } }\nexport default { fetch() { return new Response('x'); } };",
    compatibilityDate: "2026-07-01",
  };
  const other = await startGateway(artifacts, {
    vars: pointAt(artifacts.wrangler, { issuer, upstream: airflow, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "static-airflow-token" },
    durableObjects: { RATE_LIMITER: "RateLimiter", IDEMPOTENCY: { className: "Broken", scriptName: "faulty" } },
    workers: [faulty],
  });
  airflowState.tokens.add("static-airflow-token");
  try {
    const logins = airflowState.logins;
    const headers = await as({ sub: "de-static", groups: ["data-engineering"] });
    const plain = await other.send("POST", "/dags/ingest_events/runs", { headers, body: "{}" });
    assert.equal(plain.status, 200, plain.text);
    assert.equal(airflowState.runs.at(-1).headers.authorization, "Bearer static-airflow-token");
    assert.equal(airflowState.logins, logins);
    const before = airflowState.runs.length;
    const keyed = await other.send("POST", "/dags/ingest_events/runs", { headers: { ...headers, "idempotency-key": "k" }, body: "{}" });
    expectProblem(assert, keyed, 503, "durable_object_unavailable");
    assert.equal(airflowState.runs.length, before);
  } finally {
    await other.dispose();
  }
});

test("behind the tunnel's Access app, every Airflow call carries the Worker's own service token", async () => {
  const tunneled = await startGateway(artifacts, {
    vars: {
      ...pointAt(artifacts.wrangler, { issuer, upstream: airflow, audience: AUDIENCE }),
      AIRFLOW_USERNAME: ACCOUNT,
      UPSTREAM_ACCESS_CLIENT_ID: "trigger-worker.access",
    },
    secrets: { AIRFLOW_PASSWORD: PASSWORD, UPSTREAM_ACCESS_CLIENT_SECRET: "tunnel-secret" },
  });
  try {
    const caller = await as({ sub: "de-tunnel", groups: ["data-engineering"] });
    const answer = await tunneled.send("POST", "/dags/ingest_events/runs", {
      headers: { ...caller, "cf-access-client-id": "caller-forged", "cf-access-client-secret": "forged" },
      body: "{}",
    });
    assert.equal(answer.status, 200, answer.text);
    for (const headers of [airflowState.loginHeaders, airflowState.runs.at(-1).headers]) {
      assert.equal(headers["cf-access-client-id"], "trigger-worker.access");
      assert.equal(headers["cf-access-client-secret"], "tunnel-secret");
    }
    assert.ok(!JSON.stringify(answer.log).includes("tunnel-secret"));
  } finally {
    await tunneled.dispose();
  }
});

test("the trigger body is refused with 413 once it passes max_body_bytes, while it is still streaming", async () => {
  const max = JSON.parse(artifacts.policyText).limits.max_body_bytes;
  const before = airflow.state.requests.length;
  const answer = await streamWithoutEnding(gateway.url, "POST", "/dags/ingest_events/runs", await as({ sub: "de-big", groups: ["data-engineering"] }), max + 1);
  assert.equal(answer.status, 413);
  assert.equal(answer.json.type, "urn:airgate:problem:body_too_large");
  assert.equal(airflow.state.requests.length, before);
});

test("conf numbers: non-finite or beyond ±(2^53 − 1) → 422 before Airflow; exact ones pass unchanged", async () => {
  const ci = await as({ sub: "ci", client_id: "ci" });
  const before = airflowState.runs.length;
  for (const number of ["1e400", "-1e400", "9007199254740993", "-9007199254740993", "1e20"]) {
    const answer = await trigger(ci, "gateway_smoke_test", `{"conf": {"n": ${number}}}`);
    expectProblem(assert, answer, 422, "conf_number_unsafe");
  }
  assert.equal(airflowState.runs.length, before);
  const exact = await trigger(ci, "gateway_smoke_test", '{"conf": {"n": 9007199254740991, "f": 0.1, "e": 1e-300}}');
  assert.equal(exact.status, 200, exact.text);
  assert.deepEqual(airflowState.runs.at(-1).conf, { n: 9007199254740991, f: 0.1, e: 1e-300 });
});

test("a refused DAG trigger does not spend the grantee's trigger bucket", async () => {
  const agent = await as({ sub: "ai-agent", client_id: "ai-agent", jti: "bucket" });
  const limit = JSON.parse(artifacts.policyText).routes.find((r) => r.name === "trigger-run").rate_limit.requests;
  const refused = await Promise.all(Array.from({ length: limit + 5 }, () => trigger(agent, "rebuild_warehouse", { conf: {} })));
  for (const answer of refused) expectProblem(assert, answer, 403, "dag_not_granted");
  const granted = await trigger(agent, "refresh_dashboards", { conf: { dashboard: "retention" } });
  assert.equal(granted.status, 200, granted.text);
});

test("every run carries the gateway's note: subject, kind, gateway and the decision line's request id", async () => {
  const cases = [
    [{ sub: "ai-agent", client_id: "ai-agent", jti: "note" }, "refresh_dashboards", { conf: { dashboard: "revenue" } }, "OIDC client `ai-agent`"],
    [{ sub: "de-note", groups: ["data-engineering"] }, "ingest_events", { conf: {} }, "person `de-note`"],
  ];
  for (const [claims, dag, body, who] of cases) {
    const answer = await trigger(await as(claims), dag, body);
    assert.equal(answer.status, 200, answer.text);
    const requestId = answer.headers["x-request-id"];
    assert.equal(answer.log.request_id, requestId);
    assert.equal(
      notes.get(answer.json.dag_run_id),
      `Triggered by ${who} through airgate gateway trigger (local), request_id ${requestId}`,
    );
  }
});

test("a caller's own note is refused (422) and starts nothing", async () => {
  const before = airflowState.runs.length;
  const agent = await as({ sub: "ai-agent", client_id: "ai-agent", jti: "forged-note" });
  for (const note of ["Triggered by person `platform-admin`", "", null]) {
    const answer = await trigger(agent, "refresh_dashboards", { conf: { dashboard: "revenue" }, note });
    expectProblem(assert, answer, 422, "invalid_body");
    assert.match(answer.json.detail, /note is written by the gateway/);
    assert.equal(answer.log.reason, "invalid_body");
  }
  assert.equal(airflowState.runs.length, before);
});

test("a retry with the same Idempotency-Key replays the run, whose note names the request that started it", async () => {
  const headers = { ...(await as({ sub: "de-note-retry", groups: ["data-engineering"] })), "idempotency-key": "note-once" };
  const first = await trigger(headers, "ingest_events", { conf: { day: "2026-12-01" } });
  const again = await trigger(headers, "ingest_events", { conf: { day: "2026-12-01" } });
  assert.equal(first.status, 200, first.text);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.headers["idempotent-replayed"], "true");
  assert.equal(again.json.dag_run_id, first.json.dag_run_id);
  assert.notEqual(again.headers["x-request-id"], first.headers["x-request-id"]);
  assert.ok(notes.get(first.json.dag_run_id).endsWith(`request_id ${first.headers["x-request-id"]}`));
});

test("the note shows the subject as a code span, never as Markdown, within Airflow's 1000 characters", async () => {
  const answer = await trigger(await as({ sub: "de `[x](http://evil)`", groups: ["data-engineering"] }), "ingest_events", { conf: {} });
  assert.equal(answer.status, 200, answer.text);
  assert.ok(notes.get(answer.json.dag_run_id).startsWith("Triggered by person `` de `[x](http://evil)` `` through"));
  const long = await trigger(await as({ sub: "p".repeat(2000), groups: ["data-engineering"] }), "ingest_events", { conf: {} });
  assert.equal(long.status, 200, long.text);
  assert.ok(notes.get(long.json.dag_run_id).length < 1000);
  assert.ok(notes.get(long.json.dag_run_id).includes(`\`${"p".repeat(256)}…\``));
  assert.equal(long.log.subject, "p".repeat(2000), "the decision line keeps the whole subject");
});

test("the note stays one line, read as written, whatever the subject holds", () => {
  const note = runNote({
    identity: { subject: "a\nb\r\u2028c\u202eevil", kind: "person" },
    env: { ENVIRONMENT: "local" },
    policy: { gateway: "trigger" },
    requestId: "r-0",
  });
  assert.equal(note, "Triggered by person `a\\u000ab\\u000d\\u2028c\\u202eevil` through airgate gateway trigger (local), request_id r-0");
});

test("the kind the note names comes from the verified claims: person, OIDC client, service token", () => {
  const policy = JSON.parse(artifacts.policyText);
  const kind = (claims, mode, clients = {}) => identify(claims, mode, policy, {}, clients).kind;
  assert.equal(kind({ sub: "ai-agent", client_id: "ai-agent" }, "oidc"), "oidc_client");
  assert.equal(kind({ sub: "someone", azp: "ai-agent" }, "oidc"), "person");
  assert.equal(kind({ sub: "", common_name: "abc.access" }, "access", { "abc.access": "ai-agent" }), "service_token");
  assert.equal(kind({ sub: "", common_name: "unnamed.access" }, "access"), "service_token");
  assert.equal(kind({ sub: "p-1", email: "p@acme-data.com" }, "access"), "person");
  const note = runNote({
    identity: { subject: "ai-agent", kind: "service_token" },
    env: { ENVIRONMENT: "prod" },
    policy: { gateway: "trigger" },
    requestId: "r-1",
  });
  assert.equal(note, "Triggered by service token `ai-agent` through airgate gateway trigger (prod), request_id r-1");
});
