// What the gateway benchmarks share: the request they send, the lean upstream, the pass-through
// Worker, and the gateway in workerd alone with its policy and the issuer's key set already in KV
// (as after a deploy and one earlier isolate: the copy authenticated under the Worker's MAC secret).
import { createServer } from "node:http";
import { join } from "node:path";
import { compatibilityDate, jwksKey, keySetCopy, MAC_KEY, pointAt, withPolicy } from "../../tests/worker/helpers.mjs";
import { startWorkerd } from "./workerd.mjs";

export const AUDIENCE = "http://airgate.localhost";
export const PATH = "/v1/tables/revenue";
export const PASS_SCRIPT =
  "export default { fetch(request, env) { const url = new URL(request.url);" +
  " return fetch(env.UPSTREAM + url.pathname + url.search, { method: request.method, headers: request.headers, body: request.body }); } };";
export const PASS_DATE = compatibilityDate("2026-11-01");

// The runtime calls the gateway makes for one allowed GET from wrk (worker_templates/lib/gateway.js
// and proxy.js), in its order, with none of its own logic: two random ids, the URL and header reads,
// the upstream request's headers built from an object (the 7 the gateway sends here), the timeout
// signal, the response copy that carries X-Request-Id and drops hop-by-hop fields, and the decision
// line. What these cost is what the runtime charges for the gateway's features; the full gateway's
// CPU beyond this Worker's is its own code.
export const RUNTIME_CALLS_SCRIPT = `export default { async fetch(request, env) {
  const started = Date.now();
  const method = request.method, incoming = request.headers;
  const requestId = crypto.randomUUID();
  const span = crypto.randomUUID().replace(/-/g, "").slice(0, 16);
  incoming.get("traceparent");
  const traceparent = "00-" + requestId.replace(/-/g, "") + "-" + span + "-01";
  const record = { time: new Date(started).toISOString(), request_id: requestId, traceparent, environment: "local",
    gateway: "warehouse", route: null, method, path: null, subject: null, roles: [], decision: "deny", reason: null,
    status: 0, upstream_status: null, latency_ms: 0, policy_version: "0123456789abcdef" };
  const { pathname, search } = new URL(request.url);
  const fields = new Map();
  for (const [name, value] of incoming) fields.set(name, value);
  Object.assign(record, { path: pathname, subject: "ai-agent", roles: ["ai-agent"], route: "tables" });
  const headers = { "x-request-id": requestId, traceparent, "x-airgate-subject": "ai-agent", "x-airgate-roles": "ai-agent",
    "x-airgate-policy-version": "0123456789abcdef", "x-airgate-route": "tables", authorization: "Bearer bench" };
  const answer = await fetch(env.UPSTREAM + pathname + search,
    { method, headers, signal: AbortSignal.timeout(10000), redirect: "manual" });
  const response = new Response(answer.body, answer);
  const kept = response.headers;
  const connection = kept.get("connection");
  if (connection !== null) {
    for (const name of connection.split(",")) kept.delete(name.trim());
    kept.delete("connection");
  }
  for (const name of ["proxy-authenticate", "proxy-authorization", "proxy-connection", "set-cookie"]) kept.delete(name);
  kept.get("location");
  kept.set("x-request-id", requestId);
  Object.assign(record, { decision: "allow", reason: "allowed", upstream_status: answer.status, status: response.status,
    latency_ms: Date.now() - started });
  console.log(JSON.stringify(record));
  return response;
} };`;

/** A caller's client-credentials token (sub = client_id), valid for an hour. */
export const callerToken = (issuer, client) =>
  issuer.token({ sub: client, client_id: client, exp: Math.floor(Date.now() / 1000) + 3600 }, { audience: AUDIENCE });

/** The same small JSON answer to every request, on 127.0.0.1. Resolves {url, port, close}. */
export async function leanUpstream() {
  const body = JSON.stringify({ upstream: "bench", rows: [1, 2, 3] });
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  const close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });
  return { url: `http://127.0.0.1:${port}`, port, close };
}

/** The gateway with every route's bucket at `limit` (its policy re-hashed, as the compiler would). */
export const benchArtifacts = (artifacts, limit = { requests: 1e9, per_seconds: 1 }) =>
  withPolicy(artifacts, (policy) => {
    for (const route of policy.routes) route.rate_limit = limit;
  });

/** The pass-through Worker in workerd alone; `wrap` as startWorkerd's. */
export const workerdPassThrough = (upstream, { wrap } = {}) =>
  startWorkerd({ script: PASS_SCRIPT, vars: { UPSTREAM: upstream.url }, compatibilityDate: PASS_DATE, wrap });

/** RUNTIME_CALLS_SCRIPT in workerd alone. */
export const workerdRuntimeCalls = (upstream) =>
  startWorkerd({ script: RUNTIME_CALLS_SCRIPT, vars: { UPSTREAM: upstream.url }, compatibilityDate: PASS_DATE });

/** The gateway (`benchArtifacts` at `limit`) in workerd alone; `wrap` as startWorkerd's. */
export async function workerdGateway(artifacts, issuer, upstream, { limit, wrap } = {}) {
  const bench = benchArtifacts(artifacts, limit);
  return startWorkerd({
    bundle: join(bench.dir, "gateway.js"),
    wrangler: bench.wrangler,
    vars: {
      ...pointAt(bench.wrangler, { issuer, upstream, audience: AUDIENCE }),
      UPSTREAM_CREDENTIAL: "bench",
      JWKS_KV_MAC_KEY: MAC_KEY,
    },
    kv: {
      [bench.manifest.policy_kv_key]: bench.policyText,
      [jwksKey(issuer.url)]: keySetCopy(issuer.url, await issuer.jwks(), Math.floor(Date.now() / 1000)),
    },
    compatibilityDate: compatibilityDate(bench.wrangler.compatibility_date),
    wrap,
  });
}
