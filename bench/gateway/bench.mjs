// Gateway benchmark: the same request (GET /v1/tables/revenue with a bearer JWT) against
//   1. the upstream directly,
//   2. a pass-through Worker (fetch to the upstream, nothing else), in Miniflare and in workerd alone,
//      and in workerd a Worker that makes only the gateway's runtime calls (setup.mjs: what the
//      gateway's features cost in the runtime, without the gateway's own code),
//   3. the full gateway bundle from `airgate build --stack local` (JWT + policy + DO bucket + log),
//      in Miniflare and in workerd alone (bench/gateway/workerd.mjs: the npm `workerd` binary with a
//      config generated from the gateway's own bindings, KV and Durable Objects),
//   4. Debian's apache2 + libapache2-mod-oauth2 validating the same token against the same JWKS,
//      with its token-result cache off and on (60 s, the gateway's verified-token cache TTL), and
//      proxying to the same upstream,
// at 1 and 16 connections with wrk; plus the gateway's CPU per request, its first request after
// start (key set in KV), another client's p50 while one client floods over its limit, and the
// bundle size. Loopback only; every run is bounded (DURATION seconds per cell).
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync, rmSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { tmpdir, loadavg } from "node:os";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";
import {
  buildStack, readArtifacts, startIssuer, startGateway, pointAt, ROOT as ROOT_DIR,
} from "../../tests/worker/helpers.mjs";
import {
  AUDIENCE, PATH, PASS_SCRIPT, PASS_DATE, benchArtifacts, callerToken, leanUpstream, workerdPassThrough,
  workerdRuntimeCalls, workerdGateway as startGatewayWorkerd,
} from "./setup.mjs";

const DURATION = Math.min(Math.max(Number(process.argv[2] || 5), 1), 30);
const cleanups = [];
const results = [];
const notes = [];

function run(command, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      code === 0 ? resolve(out) : reject(new Error(`${command} exited ${code}: ${out}`));
    });
  });
}

// `pace`: milliseconds each connection waits between requests (a wrk Lua `delay`), for a fixed rate.
async function wrk(url, connections, token, pace = 0) {
  const threads = connections === 1 ? 1 : 2;
  const args = [`-t${threads}`, `-c${connections}`, `-d${DURATION}s`, "--latency", "--timeout", "5s"];
  if (token) args.push("-H", `Authorization: Bearer ${token}`);
  if (pace) {
    const script = join(mkdtempSync(join(tmpdir(), "airgate-wrk-")), "pace.lua");
    writeFileSync(script, `function delay() return ${pace} end\n`);
    args.push("-s", script);
  }
  const out = await run("wrk", [...args, url], (DURATION + 20) * 1000);
  if (!/Requests\/sec/.test(out) || !/50%/.test(out)) throw new Error(`wrk output not understood:\n${out}`);
  const unit = (value) => {
    const m = /([\d.]+)(us|ms|s)/.exec(value);
    if (!m) throw new Error(`wrk latency ${value} not understood:\n${out}`);
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]];
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
  const p50 = unit(/^\s+50%\s+(\S+)/m.exec(out)[1]);
  const p99 = unit(/^\s+99%\s+(\S+)/m.exec(out)[1]);
  const total = Number(/(\d+) requests in/.exec(out)[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] || 0);
  const errors = /Socket errors: (.*)/.exec(out)?.[1] || "";
  return { rps, p50, p99, total, non2xx, errors };
}

function childWorkerd() {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.indexOf(")"));
      const ppid = Number(stat.split(") ")[1].split(" ")[1]);
      if (comm.startsWith("workerd") && ppid === process.pid) found.push(Number(entry));
    } catch {}
  }
  return found;
}

const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

// CPU of a server: one process (workerd), or a process and its children (apache2's workers).
function serverTicks(pid) {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1].split(" ");
      if (Number(entry) === pid || Number(fields[1]) === pid) total += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return total;
}

async function measure(name, url, token, pid) {
  await wrk(url, 4, token); // warm-up: isolate, JIT, key set, DO
  for (const connections of [1, 16]) {
    const before = pid ? serverTicks(pid) : 0;
    const r = await wrk(url, connections, token);
    const cpuMs = pid ? (serverTicks(pid) - before) * TICK_MS : null;
    results.push({ name, connections, ...r, cpuPerRequestUs: cpuMs === null ? null : (cpuMs * 1000) / r.total });
    process.stderr.write(`${name} c=${connections}: ${r.rps.toFixed(0)} req/s p50 ${r.p50} ms p99 ${r.p99} ms non2xx ${r.non2xx}\n`);
  }
}

function timed(url, token) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpRequest(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve({ ms: performance.now() - started, status: res.statusCode }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function passThrough(upstream) {
  const mf = new Miniflare({
    modules: true,
    script: PASS_SCRIPT,
    compatibilityDate: PASS_DATE,
    bindings: { UPSTREAM: upstream.url },
    host: "127.0.0.1",
    port: 0,
    cf: false,
    log: new Log(LogLevel.NONE),
  });
  const url = await mf.ready;
  return { mf, url: new URL(PATH, url).href };
}

// The gateway's bundle with the local stack's policy, except a bucket that a benchmark cannot
// drain (the Durable Object is still called on every request); the version is that document's hash.
async function fullGateway(artifacts, issuer, upstream) {
  const bench = benchArtifacts(artifacts);
  const gateway = await startGateway(bench, {
    vars: pointAt(bench.wrangler, { issuer, upstream, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "bench" },
    parseLogs: false,
  });
  return { gateway, url: new URL(PATH, gateway.url).href };
}

// The gateway in workerd alone (setup.mjs), stopped at the end whatever happens.
async function workerdGateway(artifacts, issuer, upstream, limit) {
  const worker = await startGatewayWorkerd(artifacts, issuer, upstream, { limit });
  cleanups.push(worker.stop);
  return { worker, url: worker.url + PATH };
}

// Another client's latency while one client floods its bucket, as in issue 9: a 600/min route, one
// caller at ~1,800 req/s (16 connections, 9 ms apart; nearly all 429), another at 2 requests a second.
async function floodImpact(artifacts, issuer, upstream) {
  const { worker, url } = await workerdGateway(artifacts, issuer, upstream, { requests: 600, per_seconds: 60 });
  const flooder = await callerToken(issuer, "ai-agent");
  const quiet = await callerToken(issuer, "airflow-worker");
  const sample = async (n) => {
    const ms = [];
    for (let i = 0; i < n; i++) {
      ms.push((await timed(url, quiet)).ms);
      await new Promise((resolve) => setTimeout(resolve, 500)); // 2 requests a second
    }
    return ms.sort((a, b) => a - b)[Math.floor(n / 2)];
  };
  await timed(url, quiet);
  const samples = Math.max(4, DURATION * 2);
  const alone = await sample(samples);
  const flood = wrk(url, 16, flooder, 9);
  const during = await sample(samples);
  const flooded = await flood;
  await worker.stop();
  return { alone, during, flooded };
}

async function apachePeer(issuer, upstream, expiry = 0) {
  const modules = "/usr/lib/apache2/modules";
  if (!existsSync(`${modules}/mod_oauth2.so`) || !existsSync("/usr/sbin/apache2")) {
    notes.push("apache2 + libapache2-mod-oauth2 not installed (apt-get install apache2 libapache2-mod-oauth2): peer skipped");
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "airgate-apache-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const verify = [
    `jwks_uri ${issuer.jwksUrl}`,
    // exp required; iss and aud are checked by the Require lines below (verify.iss compares with a
    // configured issuer that jwks_uri mode lacks); expiry: the token-validation result cache (s).
    `verify.iss=skip&verify.exp=required&verify.iat=optional&expiry=${expiry}`,
  ].join(" ");
  writeFileSync(
    join(dir, "httpd.conf"),
    `ServerRoot ${dir}
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
LogLevel ${process.env.APACHE_LOGLEVEL || "warn"}
User www-data
Group www-data
LoadModule mpm_event_module ${modules}/mod_mpm_event.so
LoadModule authn_core_module ${modules}/mod_authn_core.so
LoadModule authz_core_module ${modules}/mod_authz_core.so
LoadModule authz_user_module ${modules}/mod_authz_user.so
LoadModule proxy_module ${modules}/mod_proxy.so
LoadModule proxy_http_module ${modules}/mod_proxy_http.so
LoadModule oauth2_module ${modules}/mod_oauth2.so
KeepAlive On
MaxKeepAliveRequests 0
StartServers 2
ThreadsPerChild 25
<Location "/v1/tables/">
  AuthType oauth2
  OAuth2TokenVerify ${verify}
  <RequireAll>
    Require oauth2_claim aud:${AUDIENCE}
    Require oauth2_claim iss:${issuer.url}
  </RequireAll>
  ProxyPass "${upstream.url}/v1/tables/" keepalive=On
</Location>
`,
  );
  const proc = spawn("/usr/sbin/apache2", ["-f", join(dir, "httpd.conf"), "-DFOREGROUND"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  cleanups.push(async () => {
    proc.kill("SIGTERM");
    await new Promise((resolve) => (proc.exitCode !== null ? resolve() : proc.once("exit", resolve)));
  });
  const url = `http://127.0.0.1:${port}${PATH}`;
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) break;
    try {
      await timed(url);
      const stop = async () => {
        if (proc.exitCode !== null) return;
        proc.kill("SIGTERM");
        await new Promise((resolve) => proc.once("exit", resolve));
      };
      return { url, dir, proc, stop };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50)); // polling a starting server's port
    }
  }
  notes.push(`apache2 did not start: ${stderr.trim() || readFileSync(join(dir, "error.log"), "utf8").slice(-500)}`);
  return null;
}

// jose's part of the bundle: what jwtVerify and createLocalJWKSet weigh bundled and minified alone,
// with the gateway's own esbuild settings (infra/build/bundle.py).
function joseBytes() {
  const out = spawnSync(join(ROOT_DIR, "node_modules", ".bin", "esbuild"), [
    "--bundle", "--format=esm", "--platform=neutral", "--target=es2022", "--minify", "--legal-comments=none",
    "--main-fields=module,main", "--conditions=workerd,worker,browser",
  ], { input: 'export { jwtVerify, createLocalJWKSet } from "jose";', cwd: ROOT_DIR });
  if (out.status !== 0) return "unknown (esbuild failed)";
  return `${out.stdout.length} bytes minified, ${gzipSync(out.stdout).length} gzipped`;
}

function table() {
  const rows = [["target", "conns", "req/s", "p50 ms", "p99 ms", "non-2xx", "server CPU µs/req"]];
  for (const r of results) {
    rows.push([r.name, String(r.connections), r.rps.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), String(r.non2xx), r.cpuPerRequestUs === null ? "-" : r.cpuPerRequestUs.toFixed(0)]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row, j) => {
    const line = "| " + row.map((cell, i) => cell.padEnd(widths[i])).join(" | ") + " |";
    return j === 0 ? line + "\n|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|" : line;
  }).join("\n");
}

async function main() {
  if (spawnSync("wrk", ["--version"]).error) throw new Error("wrk is not installed (apt-get install wrk)");
  const artifacts = readArtifacts(buildStack("local"), "warehouse");
  const issuer = await startIssuer();
  cleanups.push(() => issuer.close());
  const upstream = await leanUpstream();
  cleanups.push(upstream.close);
  const token = await callerToken(issuer, "ai-agent");
  const get = (name, c) => results.find((r) => r.name === name && r.connections === c);
  const only = process.env.BENCH_ONLY;
  const want = (name) => !only || only.split(",").includes(name);

  if (want("direct")) await measure("direct upstream", upstream.url + PATH, token, null);

  if (want("miniflare")) {
    const pass = await passThrough(upstream);
    const [passPid] = childWorkerd();
    await measure("pass-through Worker (Miniflare)", pass.url, token, passPid);
    await pass.mf.dispose();
  }

  // First request after start (Miniflare): a fresh gateway, then its first and second requests.
  let first, second, startMs, logged;
  if (want("miniflare")) {
    const started = performance.now();
    const cold = await fullGateway(artifacts, issuer, upstream);
    startMs = performance.now() - started;
    first = await timed(cold.url, token);
    second = await timed(cold.url, token);
    await cold.gateway.dispose();

    const full = await fullGateway(artifacts, issuer, upstream);
    const [gatewayPid] = childWorkerd();
    await measure("full gateway (Miniflare)", full.url, token, gatewayPid);
    logged = full.gateway.lines.count;
    await full.gateway.dispose();
  }

  let coldWorkerd, flood, rounds;
  const ratioOf = (full, pass) => full.rps / pass.rps;
  if (want("workerd")) {
    const pass = await workerdPassThrough(upstream);
    cleanups.push(pass.stop);
    await measure("pass-through Worker (workerd)", pass.url + PATH, token, pass.pid);
    const calls = await workerdRuntimeCalls(upstream);
    cleanups.push(calls.stop);
    await measure("runtime calls alone (workerd)", calls.url + PATH, token, calls.pid);

    // First request after start, five fresh processes (median), beside a pass-through's first.
    const firsts = [];
    const passFirsts = [];
    const fetches = issuer.state.jwksFetches + issuer.state.discoveryFetches;
    for (let i = 0; i < 5; i++) {
      const cold = await workerdGateway(artifacts, issuer, upstream);
      firsts.push([(await timed(cold.url, token)).ms, (await timed(cold.url, token)).ms]);
      await cold.worker.stop();
      const coldPass = await workerdPassThrough(upstream);
      passFirsts.push((await timed(coldPass.url + PATH, token)).ms);
      await coldPass.stop();
    }
    const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
    coldWorkerd = {
      first: median(firsts.map(([f]) => f)),
      second: median(firsts.map(([, s]) => s)),
      pass: median(passFirsts),
      idpCalls: issuer.state.jwksFetches + issuer.state.discoveryFetches - fetches,
    };

    const full = await workerdGateway(artifacts, issuer, upstream);
    const before = full.worker.lines.count;
    await measure("full gateway (workerd)", full.url, token, full.worker.pid);
    // The c=16 ratio again in alternating rounds, all processes up, so that a drift of the
    // machine between the table's cells (±10 % seen) does not decide it: the median of 3. Beside
    // it, the same for the runtime calls alone: the ratio a gateway whose own code cost nothing.
    const cell = (name) => get(name, 16);
    rounds = [[cell("full gateway (workerd)"), cell("runtime calls alone (workerd)")].map((r) => ratioOf(r, cell("pass-through Worker (workerd)")))];
    for (let i = 0; i < 2; i++) {
      const p = await wrk(pass.url + PATH, 16, token);
      const f = await wrk(full.url, 16, token);
      const r = await wrk(calls.url + PATH, 16, token);
      rounds.push([ratioOf(f, p), ratioOf(r, p)]);
    }
    const total = results.filter((r) => r.name === "full gateway (workerd)").reduce((sum, r) => sum + r.total, 0);
    await full.worker.stop();
    await calls.stop();
    await pass.stop();
    notes.push(`workerd gateway: ${full.worker.lines.count - before} log lines for ${total} measured requests (+ warm-up and rounds)`);
    flood = await floodImpact(artifacts, issuer, upstream);
  }

  for (const [label, expiry] of want("apache") ? [["cache off", 0], ["cache 60 s", 60]] : []) {
    const apache = await apachePeer(issuer, upstream, expiry);
    if (!apache) break;
    const check = await timed(apache.url, token);
    if (process.env.APACHE_DEBUG) console.log(readFileSync(join(apache.dir, "error.log"), "utf8").split("\n").filter((l) => /warn|error|claim|authz|verify/i.test(l)).join("\n").slice(-6000));
    const refused = await timed(apache.url, token.slice(0, -4) + "AAAA");
    if (check.status !== 200 || refused.status !== 401) {
      notes.push(`apache peer answered ${check.status} to a good token and ${refused.status} to a forged one; ` +
        readFileSync(join(apache.dir, "error.log"), "utf8").split("\n").filter((l) => /oauth2|error|warn/i.test(l)).slice(-15).join("\n"));
    }
    await measure(`apache2 + mod_oauth2 (${label})`, apache.url, token, apache.proc.pid);
    await apache.stop();
  }

  console.log(`\n## Gateway benchmark (${DURATION} s per cell, wrk, loopback, ${execFileSync("nproc", { encoding: "utf8" }).trim()} cores shared by load generator and servers)\n`);
  console.log(table());
  console.log("");
  for (const c of [1, 16]) {
    for (const runtime of ["Miniflare", "workerd"]) {
      const g = get(`full gateway (${runtime})`, c), p = get(`pass-through Worker (${runtime})`, c);
      if (!g || !p) continue;
      const cpu = g.cpuPerRequestUs - p.cpuPerRequestUs;
      const calls = get(`runtime calls alone (${runtime})`, c);
      const split = calls ? ` (the runtime calls alone: ${(calls.cpuPerRequestUs - p.cpuPerRequestUs).toFixed(0)} µs of it)` : "";
      const peers = ["cache off", "cache 60 s"].map((label) => [label, get(`apache2 + mod_oauth2 (${label})`, c)]).filter(([, a]) => a);
      console.log(`${runtime} c=${c}: full gateway / pass-through = ${(g.rps / p.rps).toFixed(2)} (goal ≥ 0.65); gateway CPU overhead ${cpu.toFixed(0)} µs/request${split} (goal ≤ 100)` +
        peers.map(([label, a]) => `; / apache (${label}) = ${(g.rps / a.rps).toFixed(2)} req/s, ${(a.cpuPerRequestUs / g.cpuPerRequestUs).toFixed(2)} CPU per request`).join("") +
        " (goal ≥ 1.0 at equal cache settings; CPU: apache's µs/request over the gateway's)");
    }
  }
  if (first) console.log(`Miniflare first request after start: ${first.ms.toFixed(1)} ms (status ${first.status}; key set fetched from the IdP); second: ${second.ms.toFixed(1)} ms; Miniflare start ${startMs.toFixed(0)} ms; decision lines logged: ${logged}`);
  if (rounds) {
    const [full, calls] = [0, 1].map((i) => rounds.map((round) => round[i]));
    const text = (ratios) => `${ratios.map((r) => r.toFixed(2)).join(", ")}; median ${[...ratios].sort((a, b) => a - b)[1].toFixed(2)}`;
    console.log(`workerd c=16, full gateway / pass-through in 3 alternating rounds: ${text(full)} (goal ≥ 0.65)`);
    console.log(`workerd c=16, runtime calls alone / pass-through in the same rounds: ${text(calls)} (what the gateway's features cost in the runtime, without its own code)`);
  }
  if (coldWorkerd) console.log(`workerd first request after start, key set in KV (median of 5 fresh processes): ${coldWorkerd.first.toFixed(1)} ms (IdP calls ${coldWorkerd.idpCalls}; goal ≤ 10 ms); second: ${coldWorkerd.second.toFixed(1)} ms; a pass-through Worker's first: ${coldWorkerd.pass.toFixed(1)} ms`);
  if (flood) console.log(`another client's p50 while one floods a 600/min route (workerd): ${flood.alone.toFixed(1)} ms alone → ${flood.during.toFixed(1)} ms (${(flood.during / flood.alone).toFixed(1)}×, goal ≤ 2×); the flood: ${flood.flooded.rps.toFixed(0)} req/s, ${flood.flooded.non2xx} non-2xx of ${flood.flooded.total}`);
  // The runtime's own ceiling: what a Worker that does nothing but proxy reaches against the cached
  // apache peer. The gateway's "/ apache (cache 60 s)" above reads against this, not against 1.0.
  for (const c of [1, 16]) {
    const p = get("pass-through Worker (workerd)", c), a = get("apache2 + mod_oauth2 (cache 60 s)", c);
    if (p && a) console.log(`runtime ceiling c=${c}: pass-through Worker (workerd) / apache (cache 60 s) = ${(p.rps / a.rps).toFixed(2)} req/s`);
  }
  const gzip = gzipSync(artifacts.bundle).length;
  console.log(`bundle: ${artifacts.bundle.length} bytes minified, ${gzip} gzipped (budget 65536 minified) — warehouse; jose's share: ${joseBytes()}`);
  console.log(`load average at the end: ${loadavg().map((v) => v.toFixed(2)).join(" ")}`);
  for (const note of notes) console.log(`note: ${note}`);
}

try {
  await main();
} finally {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
}
process.exit(0);
