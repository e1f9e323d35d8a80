// The gateway's request pipeline: limits → path → identity → roles → policy → body → rate limit →
// upstream, with one problem+json answer for every refusal and one decision line per request.
//
// Policy: the Worker enforces exactly KV `policy:<POLICY_VERSION>` and checks that the stored text
// hashes to that version; a version never changes once written, so it is cached in module scope
// for the isolate's life. Missing, unreadable or altered → 503 (fail closed).
// Control (`control`: revoked_subjects, disabled_roles) is cached CONTROL_TTL_SECONDS (default 10 s,
// a plain-text binding may lower it): a revocation or kill switch written to KV is enforced within
// KV's propagation (up to ~60 s) plus that TTL. If it cannot be read, the last copy is used; with no
// copy at all, 503.
import { GatewayError, problem, hex, sha256hex } from "./problem.js";
import { normalisePath, formatPath, evaluate, params } from "./path.js";
import { identify } from "./identity.js";

const DEFAULT_CONTROL_TTL_S = 10;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const policies = new Map();
let control = null; // {value, at}
let configCache = null;
const verifiers = new Map();

function json(value) {
  return typeof value === "string" ? JSON.parse(value) : value;
}

function configOf(env, verifierFactory) {
  if (configCache?.env === env) return configCache;
  let identity, upstream, accessClients;
  try {
    identity = json(env.IDENTITY);
    upstream = json(env.UPSTREAM);
    accessClients = json(env.ACCESS_CLIENTS ?? env.SERVICE_TOKENS ?? {}) || {};
  } catch {
    throw new GatewayError("config_invalid");
  }
  if (!identity?.issuer || !upstream?.url || !env.POLICY_VERSION || !env.POLICY) {
    throw new GatewayError("config_invalid");
  }
  const key = JSON.stringify(identity);
  if (!verifiers.has(key)) verifiers.set(key, verifierFactory(identity));
  const ttl = Number(env.CONTROL_TTL_SECONDS ?? DEFAULT_CONTROL_TTL_S);
  configCache = { env, identity, upstream, accessClients, verifier: verifiers.get(key), controlTtlMs: ttl * 1000 };
  return configCache;
}

async function loadPolicy(env) {
  const version = env.POLICY_VERSION;
  const cached = policies.get(version);
  if (cached) return cached;
  let text;
  try {
    text = await env.POLICY.get(`policy:${version}`);
  } catch {
    throw new GatewayError("policy_unavailable");
  }
  if (text == null) throw new GatewayError("policy_unavailable", `policy version ${version} is not in the store`);
  text = text.trim();
  if ((await sha256hex(text)).slice(0, version.length) !== version || version.length < 16) {
    throw new GatewayError("policy_unavailable", `the stored policy does not hash to version ${version}`);
  }
  const policy = JSON.parse(text);
  if (policy.gateway !== env.GATEWAY) throw new GatewayError("config_invalid");
  policies.set(version, policy);
  return policy;
}

async function loadControl(env, ttlMs) {
  const now = Date.now();
  if (control && now - control.at < ttlMs) return control.value;
  try {
    const value = (await env.POLICY.get("control", "json")) || {};
    control = {
      value: { revoked: new Set(value.revoked_subjects || []), disabled: new Set(value.disabled_roles || []) },
      at: now,
    };
  } catch {
    if (!control) throw new GatewayError("control_unavailable");
  }
  return control.value;
}

function headerBytes(headers) {
  let total = 0;
  for (const [name, value] of headers) total += name.length + value.length + 4;
  return total;
}

const randomHex = (n) => hex(crypto.getRandomValues(new Uint8Array(n)));

// Continue the caller's trace (new span id for this hop) or start one.
function traceparentFor(incoming) {
  const match = TRACEPARENT.exec((incoming || "").trim().toLowerCase());
  const valid = match && match[1] !== "ff" && !/^0+$/.test(match[2]) && !/^0+$/.test(match[3]);
  return valid ? `00-${match[2]}-${randomHex(8)}-${match[4]}` : `00-${randomHex(16)}-${randomHex(8)}-01`;
}

async function readBody(request, max) {
  if (!request.body) return new ArrayBuffer(0);
  const reader = request.body.getReader();
  const chunks = [];
  for (let size = 0; ; ) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      reader.cancel().catch(() => {});
      throw new GatewayError("body_too_large", `the body exceeds ${max} bytes`);
    }
    chunks.push(value);
  }
  return new Blob(chunks).arrayBuffer();
}

// Rate limiting: the bucket lives in a Durable Object per (subject, route). An isolate may lease
// several tokens at once, sized by how many requests it saw for that key in the last second (one
// for a quiet caller, so limits stay exact), and spends them locally for at most LEASE_MS. Leased
// tokens are taken from the bucket, so the limit is never exceeded; at worst one lease of unused
// tokens (under a second of that caller's traffic) expires unspent.
const LEASE_MS = 1000;
const leases = new Map();

function spend(lease, now) {
  if (lease.tokens >= 1 && now < lease.until) return lease.tokens-- > 0;
}

async function rateLimit(env, policy, subject, route) {
  const limit = route.rate_limit;
  const key = `${subject}\n${route.name}`;
  const now = Date.now();
  let lease = leases.get(key);
  if (!lease) {
    if (leases.size > 10000) leases.clear();
    leases.set(key, (lease = { tokens: 0, until: 0, hits: 0, last: 0, window: now + 1000 }));
  }
  if (now > lease.window) [lease.last, lease.hits, lease.window] = [lease.hits, 0, now + 1000];
  lease.hits++;
  if (spend(lease, now)) return null;
  const want = Math.max(1, Math.min(lease.last, Math.floor(limit.requests / 10)));
  let answer;
  try {
    const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key));
    answer = await stub.fetch(`https://rate-limiter/take?requests=${limit.requests}&per=${limit.per_seconds}&want=${want}`);
  } catch {}
  if (answer?.status === 200) {
    lease.tokens = (Date.now() < lease.until ? lease.tokens : 0) + Number(await answer.text());
    lease.until = Date.now() + LEASE_MS;
  }
  if (spend(lease, Date.now())) return null;
  if (answer?.status === 429) {
    const retryAfter = Number(answer.headers.get("retry-after")) || 1;
    throw new GatewayError("rate_limited", `over ${limit.requests} per ${limit.per_seconds} s`, { retryAfter });
  }
  if (policy.limits.durable_objects_fail_open) return "fail_open";
  throw new GatewayError("durable_object_unavailable");
}

export function createGateway({ build, verifierFactory, upstreamHandler }) {
  async function handle(request, env, record, ctx) {
    const config = configOf(env, verifierFactory);
    // Cold isolate: fetch the key set (and below, the control list) while other reads are in flight.
    // Awaited here: I/O started by one request must not be left for another to finish.
    const [policy] = await Promise.all([loadPolicy(env), config.verifier.keys.local || config.verifier.keys.ensure().catch(() => {})]);
    const limits = policy.limits;
    if (headerBytes(request.headers) > limits.max_header_bytes) {
      throw new GatewayError("headers_too_large", `request headers exceed ${limits.max_header_bytes} bytes`);
    }
    const url = new URL(request.url);
    const path = normalisePath(url.pathname);
    record.path = formatPath(path);

    const controlled = loadControl(env, config.controlTtlMs);
    controlled.catch(() => {});
    const claims = await config.verifier.authenticate(request, limits);
    const { revoked, disabled } = await controlled;
    const identity = identify(claims, config.verifier.mode, policy, config.identity, config.accessClients);
    record.subject = identity.subject;
    if (identity.ids.some((id) => revoked.has(id))) throw new GatewayError("subject_revoked");
    identity.roles = identity.roles.filter((role) => !disabled.has(role));
    record.roles = identity.roles;

    const verdict = evaluate(policy, request.method, path, identity.roles);
    if (verdict.route) record.route = verdict.route.name;
    if (verdict.decision !== "allow") {
      throw new GatewayError(verdict.decision);
    }
    const route = verdict.route;

    const max = limits.max_body_bytes;
    const declared = request.headers.get("content-length");
    if (declared !== null && Number(declared) > max) {
      throw new GatewayError("body_too_large", `the body exceeds ${max} bytes`);
    }
    const limited = await rateLimit(env, policy, identity.subject, route);
    if (limited) record.durable_objects = limited;

    const handlerCtx = {
      request, env, config, policy, route, url, path, identity,
      params: params(route.segments, path),
      requestId: record.request_id,
      traceparent: record.traceparent,
      policyVersion: env.POLICY_VERSION,
      timeoutMs: config.upstream.timeout_ms || limits.upstream_timeout_ms || 10000,
      // The body, read once (at most max_body_bytes); or streamed when its length was declared.
      body: () => (declared !== null ? request.body : (read ??= readBody(request, max))),
    };
    let read;
    const response = await upstreamHandler(handlerCtx);
    record.decision = "allow";
    record.reason = handlerCtx.reason || "allowed";
    record.upstream_status = handlerCtx.upstreamStatus ?? null;
    return response;
  }

  return {
    async fetch(request, env, ctx) {
      const started = Date.now();
      const record = {
        time: new Date(started).toISOString(),
        request_id: crypto.randomUUID(),
        traceparent: traceparentFor(request.headers.get("traceparent")),
        environment: env.ENVIRONMENT ?? build.environment,
        gateway: env.GATEWAY ?? build.gateway,
        route: null,
        method: request.method,
        path: null,
        subject: null,
        roles: [],
        decision: "deny",
        reason: null,
        status: 0,
        upstream_status: null,
        latency_ms: 0,
        policy_version: env.POLICY_VERSION ?? null,
      };
      let response;
      try {
        response = await handle(request, env, record, ctx);
      } catch (error) {
        const failure = error instanceof GatewayError ? error : new GatewayError("internal_error");
        record.decision = failure.status >= 500 ? "error" : "deny";
        record.reason = failure.reason;
        response = problem(failure, record.request_id);
      }
      record.status = response.status;
      record.latency_ms = Date.now() - started;
      console.log(JSON.stringify(record));
      return response;
    },
  };
}
