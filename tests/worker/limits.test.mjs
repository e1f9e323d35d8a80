// Limits at the `warehouse` gateway (local stack): the per-(subject, route) token bucket in a
// Durable Object, and body size limits (declared and streamed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem, streamWithoutEnding,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream, gateway, artifacts, policy;

before(async () => {
  artifacts = readArtifacts(buildStack("local"), "warehouse");
  policy = JSON.parse(artifacts.policyText);
  issuer = await startIssuer();
  upstream = await startUpstream("warehouse");
  gateway = await startGateway(artifacts, {
    vars: pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "t" },
  });
});

after(async () => {
  await gateway?.dispose();
  await issuer?.close();
  await upstream?.close();
});

const as = async (claims) => ({ authorization: `Bearer ${await issuer.token(claims, { audience: AUDIENCE })}` });

test("the request past the bucket gets 429 with Retry-After; subjects and routes do not share buckets", async () => {
  const route = policy.routes.find((r) => r.name === "query");
  const { requests, per_seconds: per } = route.rate_limit;
  assert.ok(requests <= 100, "a bucket small enough to drain in a test");
  const agent = await as({ sub: "ai-agent", client_id: "ai-agent" });
  const query = (headers) => gateway.send("POST", "/v1/query", { headers, body: "{}" });
  const answers = await Promise.all(Array.from({ length: requests }, () => query(agent)));
  assert.deepEqual(answers.map((a) => a.status), Array(requests).fill(200));
  const before = upstream.state.requests.length;
  const limited = await query(agent);
  const body = expectProblem(assert, limited, 429, "rate_limited");
  assert.equal(body.retryable, true);
  const retryAfter = Number(limited.headers["retry-after"]);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= per, `Retry-After ${retryAfter}`);
  assert.equal(limited.log.route, "query");
  assert.equal(limited.log.subject, "ai-agent");
  assert.equal(upstream.state.requests.length, before, "the limited request is not forwarded");
  // Another subject with the same role has its own bucket; the same subject on another route too.
  const analyst = await as({ sub: "u-1", groups: ["analytics"] });
  assert.equal((await query(analyst)).status, 200);
  assert.equal((await gateway.send("GET", "/v1/tables/t", { headers: agent })).status, 200);
  expectProblem(assert, await query(agent), 429, "rate_limited");
});

test("a declared body over max_body_bytes → 413 before anything is forwarded", async () => {
  const max = policy.limits.max_body_bytes;
  const headers = { ...(await as({ sub: "u-2", groups: ["analytics"] })), "content-type": "application/json" };
  const before = upstream.state.requests.length;
  const big = await gateway.send("POST", "/v1/query", {
    headers: { ...headers, "content-length": String(max + 1) },
    body: Buffer.alloc(max + 1, 97),
  });
  expectProblem(assert, big, 413, "body_too_large");
  assert.equal(upstream.state.requests.length, before);
  const ok = await gateway.send("POST", "/v1/query", {
    headers: { ...headers, "content-length": String(max) },
    body: Buffer.alloc(max, 97),
  });
  assert.equal(ok.status, 200);
  assert.equal(upstream.state.requests.at(-1).body.length, max);
});

test("a streamed (chunked) body over the limit → 413 and the upstream never sees it", async () => {
  const max = policy.limits.max_body_bytes;
  const headers = await as({ sub: "u-3", groups: ["analytics"] });
  const before = upstream.state.requests.length;
  const big = await gateway.send("POST", "/v1/query", { headers, body: Buffer.alloc(max + 10, 98) });
  expectProblem(assert, big, 413, "body_too_large");
  assert.equal(upstream.state.requests.length, before);
  const small = await gateway.send("POST", "/v1/query", { headers, body: '{"sql":"select 1"}' });
  assert.equal(small.status, 200);
  assert.equal(upstream.state.requests.at(-1).body, '{"sql":"select 1"}');
});

test("a quiet caller leases one token at a time, so an expired lease never eats its bucket", async () => {
  const route = policy.routes.find((r) => r.name === "query");
  const { requests } = route.rate_limit;
  const headers = await as({ sub: "quiet-caller", groups: ["analytics"] });
  const query = () => gateway.send("POST", "/v1/query", { headers, body: "{}" });
  assert.equal((await query()).status, 200);
  // Let any lease the isolate took expire (1 s, a documented property of the Worker).
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const answers = await Promise.all(Array.from({ length: requests - 1 }, query));
  assert.deepEqual(answers.map((a) => a.status), Array(requests - 1).fill(200));
});

test("Content-Length together with Transfer-Encoding → 400, and none of the body is forwarded", async () => {
  const max = policy.limits.max_body_bytes;
  const headers = { ...(await as({ sub: "u-4", groups: ["analytics"] })), "content-length": "5", "transfer-encoding": "chunked" };
  const before = upstream.state.requests.length;
  const answer = await streamWithoutEnding(gateway.url, "POST", "/v1/query", headers, 2 * max);
  assert.equal(answer.status, 400);
  assert.equal(answer.json.type, "urn:airgate:problem:ambiguous_body_length");
  assert.equal(upstream.state.requests.length, before);
});

test("a chunked body is counted as it streams: 413 as soon as it passes the limit, before it ends", async () => {
  const max = policy.limits.max_body_bytes;
  const headers = await as({ sub: "u-5", groups: ["analytics"] });
  const before = upstream.state.requests.length;
  const answer = await streamWithoutEnding(gateway.url, "POST", "/v1/query", headers, max + 1);
  assert.equal(answer.status, 413);
  assert.equal(answer.json.type, "urn:airgate:problem:body_too_large");
  assert.equal(upstream.state.requests.length, before, "nothing forwarded");
});
