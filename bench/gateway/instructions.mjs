// Instructions per request (valgrind's callgrind), where wrk's req/s varies by ±10 % from run to
// run: the pass-through Worker and the full gateway in workerd, each warmed up, then N requests over
// 4 keep-alive connections counted. Callgrind counts the whole workerd process (its C++ runtime,
// V8, the gateway's JavaScript; not the kernel). Not a test; needs `apt-get install valgrind`.
//   bench/gateway/instructions [N]            pass-through and gateway
//   BASE_BUNDLE=old/gateway.js ...            also an earlier build of the gateway, for a change's effect
// Under callgrind V8 leaves most of the gateway's JavaScript in its baseline tier, so JavaScript
// weighs more here than in a real run; calls into the runtime (Headers, fetch, Response) weigh the same.
import { execFileSync } from "node:child_process";
import { writeFileSync, readFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Agent, request as httpRequest, createServer } from "node:http";
import { buildStack, readArtifacts, startIssuer, pointAt, compatibilityDate, withPolicy, jwksKey } from "../../tests/worker/helpers.mjs";
import { startWorkerd } from "./workerd.mjs";

const N = Number(process.argv[2] || 800);
const WARM_UP = 800;
const AUDIENCE = "http://airgate.localhost";
const PASS_SCRIPT =
  "export default { fetch(request, env) { const url = new URL(request.url);" +
  " return fetch(env.UPSTREAM + url.pathname + url.search, { method: request.method, headers: request.headers, body: request.body }); } };";

const artifacts = readArtifacts(buildStack("local"), "warehouse");
const issuer = await startIssuer();
const body = JSON.stringify({ upstream: "bench", rows: [1, 2, 3] });
const upstreamServer = createServer((req, res) => {
  req.resume();
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
await new Promise((resolve) => upstreamServer.listen(0, "127.0.0.1", resolve));
const upstream = { url: `http://127.0.0.1:${upstreamServer.address().port}` };
const bench = withPolicy(artifacts, (policy) => {
  for (const route of policy.routes) route.rate_limit = { requests: 1e9, per_seconds: 1 };
});
const token = await issuer.token({ sub: "ai-agent", client_id: "ai-agent", exp: Math.floor(Date.now() / 1000) + 3600 }, { audience: AUDIENCE });
const agents = Array.from({ length: 4 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
const get = (url, agent) =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end();
  });
const load = async (url, n) =>
  (await Promise.all(agents.map(async (agent) => {
    const codes = [];
    for (let i = 0; i < n / agents.length; i++) codes.push(await get(url, agent));
    return codes;
  }))).flat();

async function count(name, options) {
  const out = mkdtempSync(join(tmpdir(), "airgate-callgrind-"));
  const wrap = ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", `--callgrind-out-file=${out}/cg.%p`, "--dump-instr=no"];
  const worker = await startWorkerd({ ...options, wrap });
  try {
    const url = worker.url + "/v1/tables/revenue";
    await load(url, WARM_UP);
    execFileSync("callgrind_control", ["-z", String(worker.pid)], { stdio: "ignore" });
    const codes = await load(url, N);
    execFileSync("callgrind_control", ["-d", String(worker.pid)], { stdio: "ignore" });
    const dump = readdirSync(out).find((f) => /^cg\.\d+\.\d+$/.test(f));
    const total = Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(join(out, dump), "utf8"))[1]);
    const refused = codes.filter((code) => code !== 200).length;
    console.log(`${name.padEnd(28)} ${(total / N / 1000).toFixed(1).padStart(7)} k instructions/request${refused ? ` (${refused} not 200!)` : ""}`);
    return total / N;
  } finally {
    await worker.stop();
    rmSync(out, { recursive: true, force: true });
  }
}

const gatewayOptions = (bundle) => ({
  bundle,
  wrangler: bench.wrangler,
  vars: { ...pointAt(bench.wrangler, { issuer, upstream, audience: AUDIENCE }), UPSTREAM_CREDENTIAL: "bench" },
  compatibilityDate: compatibilityDate(bench.wrangler.compatibility_date),
});
try {
  const kv = { [bench.manifest.policy_kv_key]: bench.policyText, [jwksKey(issuer.url)]: JSON.stringify({ fetched_at: Math.floor(Date.now() / 1000), keys: await issuer.jwks() }) };
  const pass = await count("pass-through Worker", { script: PASS_SCRIPT, vars: { UPSTREAM: upstream.url }, compatibilityDate: "2026-08-01" });
  if (process.env.BASE_BUNDLE) {
    const dir = mkdtempSync(join(tmpdir(), "airgate-base-"));
    writeFileSync(join(dir, "gateway.js"), readFileSync(process.env.BASE_BUNDLE));
    await count("gateway (BASE_BUNDLE)", { ...gatewayOptions(join(dir, "gateway.js")), kv });
  }
  const full = await count("full gateway", { ...gatewayOptions(join(bench.dir, "gateway.js")), kv });
  console.log(`pass-through / full gateway = ${(pass / full).toFixed(2)} (the req/s ratio a CPU-bound runtime would show)`);
} finally {
  issuer.close();
  upstreamServer.close();
}
process.exit(0);
