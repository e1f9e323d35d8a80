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
