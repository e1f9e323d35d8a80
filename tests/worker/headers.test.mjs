// The header contract (README: "The gateway's header contract") at the `warehouse` gateway (local
// stack): the upstream receives only the default end-to-end list, the stack's forward_headers and
// the gateway's own; method/path overrides are refused; responses lose hop-by-hop headers and
// follow the stack's Set-Cookie / Location settings. A table of named headers, then a property test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem, withPolicy,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream, gateway, custom, artifacts, bearer;

// What the runtime itself adds to every upstream request (workerd's fetch), and what the gateway sets.
const RUNTIME = ["host", "accept-encoding", "cf-worker", "content-length", "transfer-encoding", "connection"];
const GATEWAY = [
  "authorization", "x-request-id", "traceparent", "x-airgate-subject", "x-airgate-roles", "x-airgate-policy-version",
  "x-airgate-route",
];
const DEFAULT_FORWARD = [
  "accept", "accept-charset", "accept-language", "content-type", "content-encoding", "content-language", "if-match",
  "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range", "user-agent",
];

before(async () => {
  artifacts = readArtifacts(buildStack("local"), "warehouse");
  issuer = await startIssuer();
  upstream = await startUpstream("warehouse");
  const vars = pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE });
  gateway = await startGateway(artifacts, { vars, secrets: { UPSTREAM_CREDENTIAL: "t" } });
  // The same gateway where the stack forwards x-tenant everywhere, x-query-tag on `query`, the
  // client address, upstream cookies and absolute redirects.
  const edited = withPolicy(artifacts, (policy) => {
    policy.headers = { forward: ["x-tenant"], client_address: true, set_cookie: "forward", absolute_location: "forward" };
    policy.routes.find((r) => r.name === "query").forward_headers = ["x-query-tag"];
  });
  custom = await startGateway(edited, {
    vars: { ...pointAt(edited.wrangler, { issuer, upstream, audience: AUDIENCE }), POLICY_VERSION: edited.manifest.policy_version },
    secrets: { UPSTREAM_CREDENTIAL: "t" },
  });
  bearer = { authorization: `Bearer ${await issuer.token({ sub: "ai-agent", client_id: "ai-agent" }, { audience: AUDIENCE })}` };
});

after(async () => {
  await gateway?.dispose();
  await custom?.dispose();
  await issuer?.close();
  await upstream?.close();
});

const tables = (headers, target = gateway) => target.send("GET", "/v1/tables/revenue", { headers: { ...bearer, ...headers } });

// [header as the client spells it, what the upstream gets]: forward | drop | refuse (400).
const TABLE = [
  ...DEFAULT_FORWARD.map((name) => [name, "forward"]),
  ["Accept-Language", "forward"],
  ["User-Agent", "forward"],
  // identity claims, any spelling
  ["X-Forwarded-User", "drop"], ["X-Forwarded-Email", "drop"], ["X-Forwarded-Groups", "drop"], ["Remote-User", "drop"],
  ["X-Remote-User", "drop"], ["X-Auth-Request-Email", "drop"], ["X-Auth-Request-User", "drop"], ["X-WEBAUTH-USER", "drop"],
  ["X-Airgate-Subject", "drop"], ["X_Airgate_Subject", "drop"], ["x_airgate_roles", "drop"], ["X-Airgate-Route", "drop"],
  ["X-User", "drop"], ["X-Email", "drop"], ["X_Forwarded_User", "drop"],
  // client address and host
  ["X-Forwarded-For", "drop"], ["X-Forwarded-Host", "drop"], ["X-Forwarded-Proto", "drop"], ["X-Forwarded-Prefix", "drop"],
  ["Forwarded", "drop"], ["X-Real-IP", "drop"], ["True-Client-IP", "drop"], ["Via", "drop"], ["X-Client-IP", "drop"],
  ["X-Original-Host", "drop"], ["CF-Connecting-IP", "drop"], ["X_Forwarded_For", "drop"],
  // the caller's credentials under other names, and Access's
  ["X-Auth-Token", "drop"], ["Cookie", "drop"], ["Proxy-Authorization", "drop"], ["X-Api-Key", "drop"],
  ["Cf-Access-Jwt-Assertion", "drop"], ["Cf-Access-Client-Id", "drop"], ["Cf-Access-Client-Secret", "drop"],
  // anything else, and underscore spellings of allowed names
  ["X-Custom", "drop"], ["Origin", "drop"], ["Referer", "drop"], ["Content_Type", "drop"], ["User_Agent", "drop"],
  ["X-Request-Id", "drop"], ["Tracestate", "drop"], ["Max-Forwards", "drop"], ["Destination", "drop"],
  // method and path overrides
  ["X-HTTP-Method-Override", "refuse"], ["X_HTTP_Method_Override", "refuse"], ["X-HTTP-Method", "refuse"],
  ["X-Method-Override", "refuse"], ["X-Original-URL", "refuse"], ["X-Rewrite-URL", "refuse"], ["x_original_url", "refuse"],
  ["X-Original-Method", "refuse"],
];

test("the table names at least 40 headers, underscore spellings included", () => {
  assert.ok(TABLE.length >= 40, `${TABLE.length}`);
  assert.ok(TABLE.filter(([name]) => name.includes("_")).length >= 5);
});

TABLE.forEach(([name, expected], i) => {
  test(`${name}: ${expected}`, async () => {
    const value = `probe-${i}-value`;
    const before = upstream.state.requests.length;
    const answer = await gateway.send("GET", "/v1/tables/revenue", { rawHeaders: [...Object.entries(bearer).flat(), name, value] });
    if (expected === "refuse") {
      expectProblem(assert, answer, 400, "override_refused");
      assert.equal(upstream.state.requests.length, before, "nothing forwarded");
      return;
    }
    assert.equal(answer.status, 200, answer.text);
    const seen = upstream.state.requests.at(-1).headers;
    if (expected === "forward") {
      assert.equal(seen[name.toLowerCase()], value);
    } else {
      const leaked = Object.entries(seen).filter(([, v]) => String(v).includes(value));
      assert.deepEqual(leaked, [], `${name} reached the upstream`);
    }
  });
});

test("the issue's example: an allowed POST asking to become DELETE /v1/admin/users is refused", async () => {
  const before = upstream.state.requests.length;
  const answer = await gateway.send("POST", "/v1/query", {
    headers: { ...bearer, "x-http-method-override": "DELETE", "x-original-url": "/v1/admin/users" },
    body: "{}",
  });
  expectProblem(assert, answer, 400, "override_refused");
  const query = await gateway.send("POST", "/v1/query?_method=DELETE", { headers: bearer, body: "{}" });
  expectProblem(assert, query, 400, "override_refused");
  assert.equal(upstream.state.requests.length, before);
});

test("property: for random header sets the upstream sees exactly the allowed ones plus the gateway's own", async () => {
  const known = TABLE.filter(([, e]) => e !== "refuse").map(([name]) => name);
  const name = fc.oneof(
    fc.constantFrom(...known),
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,14}$/).filter((n) => {
      const c = n.toLowerCase().replace(/_/g, "-");
      return !["host", "content-length", "transfer-encoding", "connection", "expect", "te", "upgrade", "keep-alive", "authorization"].includes(n.toLowerCase()) &&
        !c.includes("method") && !["x-original-url", "x-rewrite-url"].includes(c);
    }),
  );
  const value = fc.stringMatching(/^[a-z0-9]{1,12}$/);
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(fc.tuple(name, value), { maxLength: 12, selector: ([n]) => n.toLowerCase() }), async (pairs) => {
      const answer = await gateway.send("GET", "/v1/tables/revenue", { rawHeaders: [...Object.entries(bearer).flat(), ...pairs.flat()] });
      if (answer.status !== 200) return false;
      const seen = upstream.state.requests.at(-1).headers;
      const allowed = pairs.filter(([n]) => DEFAULT_FORWARD.includes(n.toLowerCase()));
      for (const [n, v] of allowed) assert.equal(seen[n.toLowerCase()], v, n);
      const expected = new Set([...GATEWAY, ...allowed.map(([n]) => n.toLowerCase())]);
      const extra = Object.keys(seen).filter((n) => !expected.has(n) && !RUNTIME.includes(n));
      assert.deepEqual(extra, [], `unexpected at the upstream for ${JSON.stringify(pairs)}`);
      for (const n of GATEWAY) assert.ok(n in seen, `${n} is set by the gateway`);
      return true;
    }),
    { numRuns: 60, seed: 9 },
  );
});

test("forward_headers per gateway and per route, and X-Forwarded-For from CF-Connecting-IP when configured", async () => {
  const extra = { "x-tenant": "acme", "x-query-tag": "nightly", "cf-connecting-ip": "203.0.113.7", "x-forwarded-for": "10.0.0.1" };
  assert.equal((await tables(extra, custom)).status, 200);
  let seen = upstream.state.requests.at(-1).headers;
  assert.equal(seen["x-tenant"], "acme");
  assert.equal(seen["x-query-tag"], undefined, "only on the query route");
  assert.equal(seen["x-forwarded-for"], "203.0.113.7", "the client address, never the client's own claim");
  const posted = await custom.send("POST", "/v1/query", { headers: { ...bearer, ...extra }, body: "{}" });
  assert.equal(posted.status, 200);
  seen = upstream.state.requests.at(-1).headers;
  assert.equal(seen["x-query-tag"], "nightly");
  // The default stack forwards neither, and sets no client address.
  assert.equal((await tables(extra)).status, 200);
  seen = upstream.state.requests.at(-1).headers;
  assert.equal(seen["x-tenant"], undefined);
  assert.equal(seen["x-forwarded-for"], undefined);
});

test("tracestate travels only with a traceparent the gateway continues", async () => {
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  await tables({ traceparent, tracestate: "vendor=1" });
  assert.equal(upstream.state.requests.at(-1).headers.tracestate, "vendor=1");
  await tables({ traceparent: "garbage", tracestate: "vendor=1" });
  assert.equal(upstream.state.requests.at(-1).headers.tracestate, undefined);
});

function answerWith(headers) {
  upstream.state.handler = (req, res) => {
    res.writeHead(302, headers);
    res.end("moved");
  };
}

// The gateway drops the Proxy-* fields and those Connection names; workerd's HTTP layer owns
// Connection, Keep-Alive, Trailer and Upgrade (proxy.js), which this also holds it to.
test("responses: hop-by-hop headers stripped; Set-Cookie dropped and absolute Location rewritten by default", async () => {
  try {
    answerWith({
      "set-cookie": ["session=upstream; Path=/", "other=1"],
      location: `${upstream.url}/v1/tables/next?page=2`,
      connection: "x-hop, x-other-hop",
      "x-hop": "1",
      "x-other-hop": "2",
      "keep-alive": "timeout=5",
      "proxy-authenticate": "Basic",
      "proxy-connection": "keep-alive",
      trailer: "x-checksum",
      upgrade: "h2c",
      "x-kept": "yes",
    });
    let answer = await tables({});
    assert.equal(answer.status, 302);
    assert.equal(answer.headers["set-cookie"], undefined);
    assert.equal(answer.headers.location, "/v1/tables/next?page=2");
    for (const name of ["x-hop", "x-other-hop", "keep-alive", "proxy-authenticate", "proxy-connection", "trailer", "upgrade"]) {
      assert.equal(answer.headers[name], undefined, name);
    }
    assert.equal(answer.headers["x-kept"], "yes");
    answerWith({ location: "https://elsewhere.example/steal" });
    answer = await tables({});
    assert.equal(answer.headers.location, undefined, "an absolute Location elsewhere is dropped");
    answerWith({ location: "/v1/tables/relative" });
    assert.equal((await tables({})).headers.location, "/v1/tables/relative");
    // The stack may forward both instead.
    answerWith({ "set-cookie": "session=upstream", location: "https://elsewhere.example/ok" });
    answer = await tables({}, custom);
    assert.deepEqual(answer.headers["set-cookie"], ["session=upstream"]);
    assert.equal(answer.headers.location, "https://elsewhere.example/ok");
  } finally {
    upstream.state.handler = null;
  }
});

test("Expect: 100-continue is served (no 500) and never forwarded; another expectation → 417", async () => {
  const answer = await gateway.send("POST", "/v1/query", { headers: { ...bearer, expect: "100-continue" }, body: '{"sql":1}' });
  assert.equal(answer.status, 200, answer.text);
  const seen = upstream.state.requests.at(-1);
  assert.equal(seen.body, '{"sql":1}');
  assert.equal(seen.headers.expect, undefined);
  const before = upstream.state.requests.length;
  expectProblem(assert, await gateway.send("POST", "/v1/query", { headers: { ...bearer, expect: "teapot" }, body: "{}" }), 417, "expectation_failed");
  assert.equal(upstream.state.requests.length, before);
});
