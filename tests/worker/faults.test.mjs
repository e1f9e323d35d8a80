// Faults at the `warehouse` gateway (local stack): key material, policy store, Durable Object and
// upstream failures. Each fails closed (or as configured) with the documented status and reason.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:net";
import {
  startGatewaySetting, stopAll, startIssuer, startGateway, pointAt, expectProblem, withPolicy, jwksKey,
  keySetCopy, MAC_KEY,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream, artifacts;
const running = [];

before(async () => ({ artifacts, issuer, upstream } = await startGatewaySetting()));
after(() => stopAll(running, issuer, upstream));

async function gatewayWith(options = {}, target = {}) {
  const gateway = await startGateway(artifacts, {
    ...options,
    vars: { ...pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE, ...target }), ...(options.vars || {}) },
    secrets: { UPSTREAM_CREDENTIAL: "t", JWKS_KV_MAC_KEY: MAC_KEY },
  });
  running.push(gateway);
  return gateway;
}

const token = async () => ({ authorization: `Bearer ${await issuer.token({ sub: "ai-agent", client_id: "ai-agent" }, { audience: AUDIENCE })}` });
const tables = async (gateway) => gateway.send("GET", "/v1/tables/revenue", { headers: await token() });

test("key set unreachable with nothing cached → 503 keys_unavailable; served from cache once fetched", async () => {
  const gateway = await gatewayWith();
  issuer.state.down = true;
  try {
    const before = upstream.state.requests.length;
    const answer = await tables(gateway);
    expectProblem(assert, answer, 503, "keys_unavailable");
    assert.equal(answer.log.decision, "error");
    assert.equal(upstream.state.requests.length, before);
    expectProblem(assert, await tables(gateway), 503, "keys_unavailable");
  } finally {
    issuer.state.down = false;
  }
  // Fresh isolate state (new gateway), keys fetched once, then the issuer goes down: still served.
  const warm = await gatewayWith();
  assert.equal((await tables(warm)).status, 200);
  issuer.state.down = true;
  try {
    const answer = await tables(warm);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.log.reason, "allowed");
  } finally {
    issuer.state.down = false;
  }
});

test("policy version missing from KV → 503 policy_unavailable, nothing forwarded", async () => {
  const gateway = await gatewayWith({ seedPolicy: false });
  const before = upstream.state.requests.length;
  const answer = await tables(gateway);
  expectProblem(assert, answer, 503, "policy_unavailable");
  assert.equal(answer.log.policy_version, artifacts.manifest.policy_version);
  // Another version in the store is not a substitute for the bound one.
  const other = JSON.parse(artifacts.policyText);
  other.routes[0].roles = ["nobody"];
  await gateway.kv.put("policy:0000000000000000", JSON.stringify(other));
  expectProblem(assert, await tables(gateway), 503, "policy_unavailable");
  // A document under the bound key that does not hash to the bound version is refused too.
  await gateway.kv.put(artifacts.manifest.policy_kv_key, JSON.stringify(other));
  expectProblem(assert, await tables(gateway), 503, "policy_unavailable");
  assert.equal(upstream.state.requests.length, before);
  // Once the right document is there, the gateway serves.
  await gateway.kv.put(artifacts.manifest.policy_kv_key, artifacts.policyText);
  assert.equal((await tables(gateway)).status, 200);
});

// A Durable Object namespace whose objects throw on every call, from a second Worker.
const FAULTY = {
  name: "faulty",
  modules: true,
  script: "export class Broken { fetch() { throw new Error('storage exploded'); } }\nexport default { fetch() { return new Response('x'); } };",
  compatibilityDate: "2026-07-01",
};

test("rate-limiter Durable Object throwing → 503 durable_object_unavailable (fail closed)", async () => {
  const gateway = await gatewayWith({
    durableObjects: { RATE_LIMITER: { className: "Broken", scriptName: "faulty" } },
    workers: [FAULTY],
  });
  const before = upstream.state.requests.length;
  const answer = await tables(gateway);
  expectProblem(assert, answer, 503, "durable_object_unavailable");
  assert.equal(upstream.state.requests.length, before);
});

test("…and passes when the gateway's policy says durable_objects_fail_open", async () => {
  const policy = JSON.parse(artifacts.policyText);
  policy.limits.durable_objects_fail_open = true;
  const text = JSON.stringify(policy);
  const version = createHash("sha256").update(text).digest("hex").slice(0, 16);
  const gateway = await gatewayWith({
    durableObjects: { RATE_LIMITER: { className: "Broken", scriptName: "faulty" } },
    workers: [FAULTY],
    vars: { POLICY_VERSION: version },
  });
  await gateway.kv.put(`policy:${version}`, text);
  const answer = await tables(gateway);
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.log.durable_objects, "fail_open");
  assert.equal(answer.log.policy_version, version);
});

async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("upstream down → 502 upstream_unreachable", async () => {
  const port = await closedPort();
  const gateway = await gatewayWith({}, { upstream: { url: `http://127.0.0.1:${port}` } });
  const answer = await tables(gateway);
  expectProblem(assert, answer, 502, "upstream_unreachable");
  assert.equal(answer.log.route, "tables");
});

// The answer comes once the timeout passes, never before it and never by waiting for the upstream
// (which never answers). How close to the timeout it comes depends on the machine's load (a run at
// load 18 answered 1688 ms after a 1500 ms timeout), so the bound here is 2× and the precision is
// bench/gateway's to report, not a test's.
test("upstream slower than the timeout → 504 once the timeout has passed", async () => {
  const timeoutMs = 1500;
  const gateway = await gatewayWith({}, { upstreamConfig: { timeout_ms: timeoutMs } });
  const held = [];
  upstream.state.handler = (req, res) => {
    held.push(res); // never answers in time
  };
  try {
    const headers = await token();
    const started = performance.now();
    const answer = await gateway.send("GET", "/v1/tables/slow", { headers });
    const elapsed = performance.now() - started;
    expectProblem(assert, answer, 504, "upstream_timeout");
    assert.ok(elapsed >= timeoutMs * 0.95, `answered after ${elapsed.toFixed(0)} ms`);
    assert.ok(elapsed <= timeoutMs * 2, `answered after ${elapsed.toFixed(0)} ms, limit ${timeoutMs * 2}`);
    assert.ok(answer.log.latency_ms >= timeoutMs * 0.95 && answer.log.latency_ms <= timeoutMs * 2, `logged ${answer.log.latency_ms} ms`);
  } finally {
    upstream.state.handler = null;
    for (const res of held) res.destroy();
  }
});

test("an upstream error status is passed through (not a gateway failure)", async () => {
  const gateway = await gatewayWith();
  upstream.state.handler = (req, res) => {
    res.writeHead(500, { "content-type": "text/plain" }).end("boom");
  };
  try {
    const answer = await tables(gateway);
    assert.equal(answer.status, 500);
    assert.equal(answer.text, "boom");
    assert.equal(answer.log.decision, "allow");
    assert.equal(answer.log.upstream_status, 500);
  } finally {
    upstream.state.handler = null;
  }
});

test("a cold gateway under concurrent load fetches discovery and the key set once (single flight)", async () => {
  const gateway = await gatewayWith();
  const jwks = issuer.state.jwksFetches;
  const discovery = issuer.state.discoveryFetches;
  const headers = await token();
  const answers = await Promise.all(Array.from({ length: 30 }, () => gateway.send("GET", "/v1/tables/t", { headers })));
  assert.deepEqual(answers.map((a) => a.status), Array(30).fill(200));
  assert.equal(issuer.state.jwksFetches - jwks, 1);
  assert.equal(issuer.state.discoveryFetches - discovery, 1);
});

test("after the cooldown an unknown kid refreshes the key set once, however many arrive; rotation is picked up", async () => {
  const cooldownMs = 1000;
  const gateway = await gatewayWith({}, { identity: { jwks_refresh_cooldown_seconds: cooldownMs / 1000 } });
  assert.equal((await tables(gateway)).status, 200);
  const started = Date.now();
  const { generateKeyPair } = await import("jose");
  const { privateKey } = await generateKeyPair("RS256");
  const forged = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      issuer.token({ sub: "ai-agent", client_id: "ai-agent" }, { audience: AUDIENCE, kid: `random-${i}`, key: privateKey, alg: "RS256" }),
    ),
  );
  // Waiting out the configured cooldown is the behaviour under test, not synchronisation.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, cooldownMs + 50 - (Date.now() - started))));
  let fetches = issuer.state.jwksFetches;
  const flood = await Promise.all(forged.map((t) => gateway.send("GET", "/v1/tables/t", { headers: { authorization: `Bearer ${t}` } })));
  for (const answer of flood) expectProblem(assert, answer, 401, "token_key_unknown");
  assert.equal(issuer.state.jwksFetches - fetches, 1, "one refresh for the whole flood");
  // The IdP rotates: a token under the new kid is accepted once the cooldown has passed.
  await issuer.addKey("rotated");
  issuer.state.published.push("rotated");
  const rotated = { authorization: `Bearer ${await issuer.token({ sub: "ai-agent", client_id: "ai-agent" }, { audience: AUDIENCE, kid: "rotated" })}` };
  fetches = issuer.state.jwksFetches;
  expectProblem(assert, await gateway.send("GET", "/v1/tables/t", { headers: rotated }), 401, "token_key_unknown");
  assert.equal(issuer.state.jwksFetches, fetches, "no fetch inside the cooldown");
  await new Promise((resolve) => setTimeout(resolve, cooldownMs + 50));
  const answer = await gateway.send("GET", "/v1/tables/t", { headers: rotated });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(issuer.state.jwksFetches, fetches + 1);
});

test("the key set is cached in KV: a cold gateway serves without calling the IdP; stale keys stop being trusted", async () => {
  const now = Math.floor(Date.now() / 1000);
  const fresh = await gatewayWith();
  await fresh.kv.put(jwksKey(issuer.url), keySetCopy(issuer.url, await issuer.jwks(), now - 60));
  const fetches = issuer.state.jwksFetches + issuer.state.discoveryFetches;
  issuer.state.down = true;
  try {
    const answer = await tables(fresh);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(issuer.state.jwksFetches + issuer.state.discoveryFetches, fetches, "the IdP was not called");
    // A copy older than the maximum staleness (1 h) is not trusted, and the IdP is down: 503.
    const stale = await gatewayWith();
    await stale.kv.put(jwksKey(issuer.url), keySetCopy(issuer.url, await issuer.jwks(), now - 3601));
    expectProblem(assert, await tables(stale), 503, "keys_unavailable");
  } finally {
    issuer.state.down = false;
  }
  // A gateway that fetched from the IdP leaves the copy in KV for the next cold isolate.
  const writer = await gatewayWith();
  assert.equal((await tables(writer)).status, 200);
  const stored = await writer.kv.get(jwksKey(issuer.url), "json");
  assert.deepEqual(JSON.parse(stored.jwks), await issuer.jwks());
  assert.ok(Math.abs(stored.fetched_at - Date.now() / 1000) < 30);
  assert.equal(JSON.stringify(stored), keySetCopy(issuer.url, stored.jwks, stored.fetched_at), "authenticated under the MAC key");
});

test("a key set response over 64 KiB is refused (fail closed), not parsed", async () => {
  const big = await startIssuer();
  big.state.jwksPadding = 70 * 1024;
  const gateway = await gatewayWith({}, { issuer: big });
  try {
    const answer = await gateway.send("GET", "/v1/tables/revenue", {
      headers: { authorization: `Bearer ${await big.token({ sub: "ai-agent", client_id: "ai-agent" }, { audience: AUDIENCE })}` },
    });
    expectProblem(assert, answer, 503, "keys_unavailable");
    assert.ok(big.state.jwksFetches >= 1);
  } finally {
    await big.close();
  }
});

test("failed authentications are rate-limited per client address; valid callers there still pass", async () => {
  const edited = withPolicy(artifacts, (policy) => {
    policy.limits.auth_failures = { requests: 3, per_seconds: 60 };
  });
  const gateway = await startGateway(edited, {
    vars: pointAt(edited.wrangler, { issuer, upstream, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "t" },
  });
  running.push(gateway);
  const from = (ip, headers = {}) => gateway.send("GET", "/v1/tables/revenue", { headers: { "cf-connecting-ip": ip, ...headers } });
  const bad = { authorization: "Bearer not.a.token" };
  for (let i = 0; i < 3; i++) expectProblem(assert, await from("198.51.100.1", bad), 401, "invalid_token");
  const limited = await from("198.51.100.1", bad);
  expectProblem(assert, limited, 429, "rate_limited");
  assert.ok(Number(limited.headers["retry-after"]) >= 1);
  expectProblem(assert, await from("198.51.100.1", {}), 429, "rate_limited");
  expectProblem(assert, await from("198.51.100.2", bad), 401, "invalid_token");
  assert.equal((await from("198.51.100.1", await token())).status, 200, "a valid credential is never locked out");
});
