// Test harness for the gateway Worker: builds the real bundle with `airgate build`, runs it in
// workerd through Miniflare, and provides the things around it on 127.0.0.1: an OpenID issuer
// (discovery + JWKS, keys made at test time), upstream echo servers and a stand-in Airflow API.
// Decision lines are read from workerd's stdout and matched to responses by request id.
import { execFileSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, request as httpRequest, Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { EventEmitter } from "node:events";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { Miniflare, Log, LogLevel, supportedCompatibilityDate } from "miniflare";

process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.WRANGLER_SEND_METRICS = "false";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const AIRGATE = join(ROOT, ".venv", "bin", "airgate");

const builds = new Map();
/** Runs the real build pipeline for a stack once per test process; returns the output folder. */
export function buildStack(stack) {
  if (!builds.has(stack)) {
    const out = mkdtempSync(join(tmpdir(), `airgate-${stack}-`));
    execFileSync(AIRGATE, ["build", "--stack", stack, "--out", out], { cwd: ROOT, stdio: "pipe" });
    builds.set(stack, out);
    process.on("exit", () => rmSync(out, { recursive: true, force: true }));
  }
  return builds.get(stack);
}

export function readArtifacts(dir, gateway) {
  const base = join(dir, gateway);
  return {
    dir: base,
    wrangler: JSON.parse(readFileSync(join(base, "wrangler.json"), "utf8")),
    manifest: JSON.parse(readFileSync(join(base, "manifest.json"), "utf8")),
    policyText: readFileSync(join(base, "policy.json"), "utf8").trim(),
    bundle: readFileSync(join(base, "gateway.js")),
  };
}

/**
 * The stack's date, or the newest one the pinned workerd supports if the stack's is newer
 * (shared.yaml says 2026-11-01; workerd 1.20260730 refuses dates after its own).
 */
export function compatibilityDate(wanted) {
  return wanted > supportedCompatibilityDate ? supportedCompatibilityDate : wanted;
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

function close(server) {
  server.closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function readAll(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * An issuer on 127.0.0.1 serving discovery and a JWKS; counts key-set fetches; can go down.
 * `typ`: the header its tokens carry (the local stack accepts RFC 9068 `at+jwt`; Access, `JWT`).
 */
export async function startIssuer({ jwksPath = "/jwks", typ = "at+jwt" } = {}) {
  const keys = {};
  for (const [kid, alg] of [["rsa-1", "RS256"], ["ec-1", "ES256"]]) {
    const pair = await generateKeyPair(alg, { extractable: true });
    keys[kid] = { ...pair, alg, kid };
  }
  const state = { published: ["rsa-1", "ec-1"], jwksFetches: 0, discoveryFetches: 0, down: false, answers: {} };
  // The key set as the issuer publishes it now.
  async function publish() {
    const published = [];
    for (const kid of state.published) {
      published.push({ ...(await exportJWK(keys[kid].publicKey)), kid, alg: keys[kid].alg, use: "sig" });
    }
    return { keys: published };
  }
  const server = createServer(async (req, res) => {
    if (state.down) {
      res.writeHead(503).end();
      return;
    }
    // A test's own answer for a path (a redirect, a bad key set): (req, res) => handled.
    if (state.answers?.[req.url]) {
      state.answers[req.url](req, res);
      return;
    }
    if (req.url === "/.well-known/openid-configuration") {
      state.discoveryFetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issuer: state.issuer, jwks_uri: state.issuer + jwksPath }));
      return;
    }
    if (req.url === jwksPath) {
      state.jwksFetches++;
      const jwks = await publish();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ...jwks, ...(state.jwksPadding ? { padding: "x".repeat(state.jwksPadding) } : {}) }));
      return;
    }
    res.writeHead(404).end();
  });
  const port = await listen(server);
  state.issuer = `http://127.0.0.1:${port}`;
  const issuer = {
    state,
    keys,
    url: state.issuer,
    jwksUrl: state.issuer + jwksPath,
    /** The key set as the issuer publishes it now. */
    jwks: publish,
    async addKey(kid, alg = "RS256") {
      const pair = await generateKeyPair(alg, { extractable: true });
      keys[kid] = { ...pair, alg, kid };
      return keys[kid];
    },
    /** A signed JWT. claims are merged over sane defaults; `omit` drops default claims. */
    async token(claims = {}, { kid = "rsa-1", key, alg, header = {}, omit = [], audience } = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload = { iss: state.issuer, aud: audience, iat: now, exp: now + 300, ...claims };
      for (const name of omit) delete payload[name];
      const signer = keys[kid] || { alg: alg || "RS256" };
      const jwt = new SignJWT(payload).setProtectedHeader({ alg: alg || signer.alg, kid, typ, ...header });
      return jwt.sign(key || signer.privateKey);
    },
    close: () => close(server),
  };
  return issuer;
}

/** The KV key under which the gateway keeps its copy of an issuer's key set (keyset.js KeySet). */
export const jwksKey = (issuerUrl) => `jwks:${createHash("sha256").update(issuerUrl).digest("hex").slice(0, 16)}`;

/** A test's stand-in for the deploy's key-set MAC secret (the JWKS_KV_MAC_KEY binding). */
export const MAC_KEY = "test-only-jwks-mac-key-0123456789abcdef";

/**
 * The KV copy of a key set as keyset.js writes it, authenticated with `macKey` (README: "Key
 * material"): {v: 2, fetched_at, jwks: text, mac: HMAC-SHA256 over issuer, fetched_at and text}.
 */
export function keySetCopy(issuerUrl, jwks, fetchedAt, macKey = MAC_KEY) {
  const text = typeof jwks === "string" ? jwks : JSON.stringify(jwks);
  const mac = createHmac("sha256", macKey).update(`airgate-jwks/2\n${issuerUrl}\n${fetchedAt}\n${text}`).digest("base64url");
  return JSON.stringify({ v: 2, fetched_at: fetchedAt, jwks: text, mac });
}

/**
 * An upstream on 127.0.0.1 that records every request and answers with what it received.
 * `routes` maps "METHOD /path" (or a function) to a custom handler for special behaviour.
 */
export async function startUpstream(name = "upstream") {
  const state = { requests: [], handler: null };
  const sockets = new Set();
  const server = createServer(async (req, res) => {
    const body = await readAll(req);
    const record = { method: req.method, url: req.url, path: req.url.split("?")[0], headers: req.headers, body };
    state.requests.push(record);
    if (state.handler && (await state.handler(req, res, record)) !== false) return;
    const payload = JSON.stringify({ upstream: name, ...record });
    res.writeHead(200, { "content-type": "application/json", connection: "keep-alive", "x-upstream": name });
    res.end(payload);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const port = await listen(server);
  return {
    state,
    url: `http://127.0.0.1:${port}`,
    port,
    reset() {
      state.requests.length = 0;
      state.handler = null;
    },
    close: () => close(server),
  };
}

/**
 * What a gateway's test file starts once: one gateway's artifacts from a stack's real build, the
 * OpenID issuer and that gateway's echo upstream. Resolves {artifacts, issuer, upstream}.
 */
export async function startGatewaySetting(stack = "local", gateway = "warehouse") {
  const artifacts = readArtifacts(buildStack(stack), gateway);
  return { artifacts, issuer: await startIssuer(), upstream: await startUpstream(gateway) };
}

/** Disposes every gateway in `gateways` and closes `servers`, whichever of them started. */
export async function stopAll(gateways, ...servers) {
  await Promise.allSettled(gateways.map((gateway) => gateway?.dispose()));
  for (const server of servers) await server?.close();
}

/**
 * A stand-in for Airflow 3's dag-run API, as far as the gateway uses it, as a startUpstream handler:
 * POST /api/v2/dags/{dag_id}/dagRuns records a run in `runs` (with the headers it came with) unless
 * the DAG already has that dag_run_id (409 AlreadyExists: Airflow's stable REST API, "Trigger a new
 * DAG run"), GET …/dagRuns/{dag_run_id} reads one back (finished by then), anything else is 404.
 * `onPost(body)` sees every POST's body before the duplicate check; `created(run)` runs once a run
 * is recorded, before the answer's `delayMs` (a realistic write latency).
 */
export function airflowRuns(runs, { delayMs = 60, onPost, created } = {}) {
  return async (req, res, record) => {
    const json = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    let match = /^\/api\/v2\/dags\/([^/]+)\/dagRuns$/.exec(record.path);
    if (req.method === "POST" && match) {
      const body = JSON.parse(record.body);
      await onPost?.(body);
      const taken = runs.some((r) => r.dag_id === match[1] && r.dag_run_id === body.dag_run_id);
      if (taken) return json(409, { title: "Conflict", detail: `DAGRun ${body.dag_run_id} already exists` });
      const run = { dag_run_id: body.dag_run_id, dag_id: match[1], conf: body.conf, state: "queued" };
      runs.push({ ...run, headers: record.headers });
      await created?.(run);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return json(200, run);
    }
    match = /^\/api\/v2\/dags\/([^/]+)\/dagRuns\/([^/]+)$/.exec(record.path);
    if (req.method === "GET" && match) {
      const run = runs.find((r) => r.dag_id === match[1] && r.dag_run_id === decodeURIComponent(match[2]));
      if (!run) return json(404, { detail: "not found" });
      return json(200, { dag_id: run.dag_id, dag_run_id: run.dag_run_id, conf: run.conf, state: "success" });
    }
    return json(404, { detail: "not found" });
  };
}

/** A Miniflare instance running one built gateway. `vars` override wrangler.json vars. */
export async function startGateway(artifacts, { vars = {}, secrets = {}, seedPolicy = true, durableObjects, workers = [], parseLogs = true } = {}) {
  const { wrangler, manifest, policyText, dir } = artifacts;
  const logs = new EventEmitter();
  logs.setMaxListeners(1000);
  const lines = [];
  const byId = new Map();
  const stdio = (stream) => {
    if (!parseLogs) {
      // Benchmarks: count decision lines without parsing them.
      stream.on("data", (chunk) => {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines.count = (lines.count || 0) + 1;
      });
      return;
    }
    createInterface({ input: stream }).on("line", (line) => {
      const start = line.indexOf("{");
      if (start < 0) return;
      let record;
      try {
        record = JSON.parse(line.slice(start));
      } catch {
        return;
      }
      if (record && record.request_id && record.decision) {
        lines.push(record);
        byId.set(record.request_id, record);
        logs.emit("line", record);
      }
      lines.raw = (lines.raw || "") + line + "\n";
    });
  };
  const rawOutput = [];
  const main = {
    name: wrangler.name,
    modules: true,
    scriptPath: join(dir, wrangler.main),
    modulesRoot: dir,
    compatibilityDate: compatibilityDate(wrangler.compatibility_date),
    bindings: { ...wrangler.vars, ...vars, ...secrets },
    kvNamespaces: Object.fromEntries(wrangler.kv_namespaces.map((kv) => [kv.binding, kv.id])),
    durableObjects:
      durableObjects ?? Object.fromEntries(wrangler.durable_objects.bindings.map((d) => [d.name, d.class_name])),
  };
  const mf = new Miniflare({
    workers: [main, ...workers],
    host: "127.0.0.1",
    port: 0,
    cf: false,
    log: new Log(LogLevel.NONE),
    handleRuntimeStdio(stdout, stderr) {
      stdio(stdout);
      stdio(stderr);
      if (parseLogs) {
        stdout.on("data", (d) => rawOutput.push(String(d)));
        stderr.on("data", (d) => rawOutput.push(String(d)));
      }
    },
  });
  let url, kv;
  try {
    url = await mf.ready;
    kv = await mf.getKVNamespace("POLICY", wrangler.name);
    if (seedPolicy) await kv.put(manifest.policy_kv_key, policyText);
  } catch (error) {
    await mf.dispose().catch(() => {});
    throw error;
  }
  const agent = new Agent({ keepAlive: false, maxSockets: 64 });

  function waitLog(requestId, timeoutMs = 5000) {
    if (byId.has(requestId)) return Promise.resolve(byId.get(requestId));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        logs.off("line", onLine);
        reject(new Error(`no decision line for ${requestId}`));
      }, timeoutMs);
      function onLine(record) {
        if (record.request_id !== requestId) return;
        clearTimeout(timer);
        logs.off("line", onLine);
        resolve(record);
      }
      logs.on("line", onLine);
    });
  }

  /** Sends a request with the raw path as given (no client-side normalisation). */
  function send(method, path, { headers = {}, body, rawHeaders } = {}) {
    return new Promise((resolve, reject) => {
      const options = { host: "127.0.0.1", port: url.port, method, path, agent, headers: { host: "gateway.test", ...headers } };
      if (rawHeaders) {
        options.headers = ["host", "gateway.test", ...rawHeaders];
      }
      const req = httpRequest(options, async (res) => {
        const text = await readAll(res);
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {}
        const requestId = res.headers["x-request-id"];
        let log = null;
        if (requestId) log = await waitLog(requestId).catch(() => null);
        resolve({ status: res.statusCode, headers: res.headers, text, json, log });
      });
      req.on("error", reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  return {
    mf,
    kv,
    url,
    lines,
    rawOutput,
    send,
    waitLog,
    async dispose() {
      agent.destroy();
      await mf.dispose();
    },
  };
}

/** Bindings that point a built gateway at the test's issuer and upstream. */
export function pointAt(wrangler, { issuer, upstream, audience, identity = {}, upstreamConfig = {} }) {
  const base = wrangler.vars.IDENTITY;
  return {
    IDENTITY: {
      ...base,
      issuer: issuer.url,
      jwks_url: base.mode === "access" ? issuer.jwksUrl : null,
      audience: audience ? [audience] : base.audience,
      ...identity,
    },
    UPSTREAM: { ...wrangler.vars.UPSTREAM, url: upstream.url, ...upstreamConfig },
  };
}

/** Asserts the common problem+json shape and the logged reason; returns the parsed body. */
export function expectProblem(assert, response, status, reason) {
  const where = `${response.status} ${response.text.slice(0, 300)} log=${JSON.stringify(response.log)}`;
  assert.equal(response.status, status, where);
  assert.match(response.headers["content-type"] || "", /^application\/problem\+json/, where);
  const body = response.json;
  // Every 401 shows one reason on the wire (RFC 6750 invalid_token); the precise one is logged.
  const wire = status === 401 ? "invalid_token" : reason;
  assert.equal(body.type, `urn:airgate:problem:${wire}`, where);
  if (status === 401) assert.equal(response.headers["www-authenticate"], 'Bearer realm="airgate", error="invalid_token"');
  assert.equal(body.status, status);
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.detail, "string");
  assert.equal(typeof body.retryable, "boolean");
  assert.equal(body.retryable, status === 429 || status >= 500);
  assert.equal(body.request_id, response.headers["x-request-id"]);
  assert.ok(response.log, `a decision line for ${body.request_id}`);
  assert.equal(response.log.reason, reason);
  assert.equal(response.log.status, status);
  assert.equal(response.log.request_id, body.request_id);
  return body;
}

export const DECISION_FIELDS = [
  "time", "request_id", "traceparent", "environment", "gateway", "route", "method", "path", "subject",
  "roles", "decision", "reason", "status", "upstream_status", "latency_ms", "policy_version",
];

/** Python's canonical_json (sorted keys, no spaces, non-ASCII kept), for policies a test edits. */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * A second Worker for the same Miniflare: `source` (the module `<name>.js`) beside the gateway's
 * bundle, so it can extend the gateway's Durable Object classes; `durableObjects` as Miniflare's.
 */
export function besideGateway(artifacts, name, source, durableObjects) {
  return {
    name,
    modulesRoot: artifacts.dir,
    modules: [
      { type: "ESModule", path: join(artifacts.dir, `${name}.js`), contents: source },
      { type: "ESModule", path: join(artifacts.dir, "gateway.js") },
    ],
    compatibilityDate: compatibilityDate(artifacts.wrangler.compatibility_date),
    durableObjects,
  };
}

/** The same gateway with its compiled policy edited by `mutate` (re-hashed, as the compiler would). */
export function withPolicy(artifacts, mutate) {
  const policy = JSON.parse(artifacts.policyText);
  mutate(policy);
  const policyText = canonicalJson(policy);
  const version = createHash("sha256").update(policyText).digest("hex").slice(0, 16);
  return {
    ...artifacts,
    policyText,
    policy,
    manifest: { ...artifacts.manifest, policy_version: version, policy_kv_key: `policy:${version}` },
    wrangler: { ...artifacts.wrangler, vars: { ...artifacts.wrangler.vars, POLICY_VERSION: version } },
  };
}

/**
 * Streams a chunked body of `total` bytes to the gateway and, without ending the request, waits
 * for its answer: resolves {status, json, sent} once the gateway answers before the body ended.
 */
export function streamWithoutEnding(gatewayUrl, method, path, headers, total, chunk = 16 * 1024) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: gatewayUrl.port, method, path, headers: { host: "gateway.test", ...headers } });
    let sent = 0;
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer while the body was still open (${sent} bytes sent)`));
    }, 10000);
    req.on("response", async (res) => {
      clearTimeout(timer);
      const text = await readAll(res);
      req.destroy();
      resolve({ status: res.statusCode, json: JSON.parse(text), sent });
    });
    req.on("error", () => {});
    while (sent < total) {
      const size = Math.min(chunk, total - sent);
      req.write(Buffer.alloc(size, 97));
      sent += size;
    }
  });
}
