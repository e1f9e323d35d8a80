// What the gateway asks of its Durable Objects (local stack): a 429 from an empty bucket needs no
// Durable Object call until the bucket refills, and an idempotency lease covers the worst-case path
// (login, call, 401, login again, call). Both objects are the bundle's own classes, wrapped in a
// second worker that only counts and records what reaches them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem, besideGateway,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream;
const running = [];

const WRAPPERS = `
import { RateLimiter, IdempotencyStore } from "./gateway.js";
const seen = { takes: 0, leases: [] };
export class CountingLimiter extends RateLimiter {
  fetch(request) {
    seen.takes++;
    return super.fetch(request);
  }
}
export class RecordingStore extends IdempotencyStore {
  async fetch(request) {
    if (new URL(request.url).pathname === "/begin") seen.leases.push((await request.clone().json()).lease_ms);
    return super.fetch(request);
  }
}
export default { fetch: () => Response.json(seen) };`;

const wrapped = (artifacts) => besideGateway(artifacts, "wrappers", WRAPPERS, { A: "CountingLimiter", B: "RecordingStore" });

async function gatewayFor(name, options = {}) {
  const artifacts = readArtifacts(buildStack("local"), name);
  const gateway = await startGateway(artifacts, {
    vars: pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE, upstreamConfig: options.upstreamConfig }),
    secrets: { UPSTREAM_CREDENTIAL: "t" },
    durableObjects: {
      RATE_LIMITER: { className: "CountingLimiter", scriptName: "wrappers" },
      ...(name === "trigger" ? { IDEMPOTENCY: { className: "RecordingStore", scriptName: "wrappers" } } : {}),
    },
    workers: [wrapped(artifacts)],
  });
  running.push(gateway);
  const seen = async () => (await (await gateway.mf.getWorker("wrappers")).fetch("http://x/")).json();
  return { gateway, artifacts, seen };
}

before(async () => {
  issuer = await startIssuer();
  upstream = await startUpstream("upstream");
  upstream.state.handler = async (req, res, record) => {
    if (!record.path.startsWith("/api/v2/dags/")) return false;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ dag_run_id: JSON.parse(record.body).dag_run_id, state: "queued" }));
  };
});

after(async () => {
  await Promise.allSettled(running.map((g) => g.dispose()));
  await issuer?.close();
  await upstream?.close();
});

test("an empty bucket is remembered: more 429s cost no Durable Object call until it refills", async () => {
  const { gateway, artifacts, seen } = await gatewayFor("warehouse");
  const limit = JSON.parse(artifacts.policyText).routes.find((r) => r.name === "query").rate_limit.requests;
  const headers = { authorization: `Bearer ${await issuer.token({ sub: "u-flood", groups: ["analytics"] }, { audience: AUDIENCE })}` };
  const query = () => gateway.send("POST", "/v1/query", { headers, body: "{}" });
  for (let i = 0; i < limit; i++) assert.equal((await query()).status, 200);
  expectProblem(assert, await query(), 429, "rate_limited");
  const takes = (await seen()).takes;
  for (let i = 0; i < 50; i++) expectProblem(assert, await query(), 429, "rate_limited");
  assert.equal((await seen()).takes, takes, "no Durable Object call for the next 50 refusals");
});

test("the idempotency lease covers login, call, 401, login again and call, each up to the timeout", async () => {
  const timeoutMs = 1500;
  const { gateway, seen } = await gatewayFor("trigger", { upstreamConfig: { timeout_ms: timeoutMs } });
  const headers = {
    authorization: `Bearer ${await issuer.token({ sub: "de-lease", groups: ["data-engineering"] }, { audience: AUDIENCE })}`,
    "idempotency-key": "lease-1",
  };
  const answer = await gateway.send("POST", "/dags/ingest_events/runs", { headers, body: "{}" });
  assert.equal(answer.status, 200, answer.text);
  const [lease] = (await seen()).leases;
  // Two logins (each waited for at most timeout + 1 s) and two calls (each at most the timeout).
  assert.ok(lease >= 2 * (timeoutMs + 1000) + 2 * timeoutMs, `lease ${lease} ms`);
});
