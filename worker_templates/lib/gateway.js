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
import { GatewayError, problem } from "./problem.js";
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
    throw new GatewayError("config_invalid", "a JSON binding is malformed");
  }
  if (!identity?.issuer || !upstream?.url || !env.POLICY_VERSION || !env.POLICY) {
    throw new GatewayError("config_invalid", "a required binding is missing");
  }
  const key = JSON.stringify(identity);
  if (!verifiers.has(key)) verifiers.set(key, verifierFactory(identity));
  const ttl = Number(env.CONTROL_TTL_SECONDS ?? DEFAULT_CONTROL_TTL_S);
  configCache = { env, identity, upstream, accessClients, verifier: verifiers.get(key), controlTtlMs: ttl * 1000 };
  return configCache;
}

async function sha256hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function loadPolicy(env) {
  const version = env.POLICY_VERSION;
  const cached = policies.get(version);
  if (cached) return cached;
  let text;
  try {
    text = await env.POLICY.get(`policy:${version}`);
  } catch {
    throw new GatewayError("policy_unavailable", "the policy store cannot be read");
  }
  if (text == null) throw new GatewayError("policy_unavailable", `policy version ${version} is not in the store`);
  text = text.trim();
  if ((await sha256hex(text)).slice(0, version.length) !== version || version.length < 16) {
    throw new GatewayError("policy_unavailable", `the stored policy does not hash to version ${version}`);
  }
  const policy = JSON.parse(text);
  if (policy.gateway !== env.GATEWAY) throw new GatewayError("config_invalid", "the policy is for another gateway");
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
    if (!control) throw new GatewayError("control_unavailable", "the revocation list cannot be read");
  }
  return control.value;
}

function headerBytes(headers) {
  let total = 0;
  for (const [name, value] of headers) total += name.length + value.length + 4;
  return total;
}

function randomHex(bytes) {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

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
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      reader.cancel().catch(() => {});
      throw new GatewayError("body_too_large", `the body exceeds ${max} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out.buffer;
}

async function rateLimit(env, policy, subject, route) {
  const limit = route.rate_limit;
  let answer;
  try {
    const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(`${subject}\n${route.name}`));
    answer = await stub.fetch(`https://rate-limiter/take?requests=${limit.requests}&per=${limit.per_seconds}`);
  } catch {
    if (policy.limits.durable_objects_fail_open) return "fail_open";
    throw new GatewayError("durable_object_unavailable", "the rate limiter failed");
  }
  if (answer.status === 429) {
    const retryAfter = Number(answer.headers.get("retry-after")) || 1;
    throw new GatewayError("rate_limited", `more than ${limit.requests} requests per ${limit.per_seconds} s`, { retryAfter });
  }
  if (answer.status !== 204) {
    if (policy.limits.durable_objects_fail_open) return "fail_open";
    throw new GatewayError("durable_object_unavailable", "the rate limiter failed");
  }
  return null;
}

export function createGateway({ build, verifierFactory, upstreamHandler }) {
  async function handle(request, env, record, ctx) {
    const config = configOf(env, verifierFactory);
    const policy = await loadPolicy(env);
    const limits = policy.limits;
    if (headerBytes(request.headers) > limits.max_header_bytes) {
      throw new GatewayError("headers_too_large", `request headers exceed ${limits.max_header_bytes} bytes`);
    }
    const url = new URL(request.url);
    const path = normalisePath(url.pathname);
    record.path = formatPath(path);

    const claims = await config.verifier.authenticate(request, limits);
    const { revoked, disabled } = await loadControl(env, config.controlTtlMs);
    const identity = identify(claims, config.verifier.mode, policy, config.identity, config.accessClients);
    record.subject = identity.subject;
    if (identity.ids.some((id) => revoked.has(id))) throw new GatewayError("subject_revoked");
    identity.roles = identity.roles.filter((role) => !disabled.has(role));
    record.roles = identity.roles;

    const verdict = evaluate(policy, request.method, path, identity.roles);
    if (verdict.route) record.route = verdict.route.name;
    if (verdict.decision !== "allow") {
      const details = {
        no_route: "no route matches this path",
        method_not_allowed: `no route allows ${request.method} on this path`,
        role_not_allowed: "none of this identity's roles may call this route",
      };
      throw new GatewayError(verdict.decision, details[verdict.decision]);
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
      readBody: () => readBody(request, max),
      waitUntil: (p) => ctx?.waitUntil?.(p),
    };
    if (request.body && request.method !== "GET" && request.method !== "HEAD") {
      handlerCtx.body = declared !== null ? request.body : await readBody(request, max);
    }
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
        const failure = error instanceof GatewayError ? error : new GatewayError("internal_error", "unexpected failure");
        if (!(error instanceof GatewayError)) record.error = String(error?.name || "Error");
        record.decision = failure.status >= 500 ? "error" : "deny";
        record.reason = failure.reason;
        response = problem(failure, record.request_id);
        response.headers.set("x-request-id", record.request_id);
      }
      record.status = response.status;
      record.latency_ms = Date.now() - started;
      console.log(JSON.stringify(record));
      return response;
    },
  };
}
