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
import { GatewayError, problem, sha256hex, readCapped } from "./problem.js";
import { normalisePath, formatPath, evaluate, params } from "./path.js";
import { identify } from "./identity.js";
import { readHeaders } from "./proxy.js";
import { refusedParameters, checkRefused, optIns } from "./query.js";

const DEFAULT_CONTROL_TTL_S = 10;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const policies = new Map();
let control = null; // {value, at}
let configCache = null;
const verifiers = new Map();
const identities = new WeakMap();

function json(value) {
  return typeof value === "string" ? JSON.parse(value) : value;
}

function configOf(env, verifierFactory) {
  if (configCache?.env === env) return configCache;
  let identity, upstream, accessClients;
  try {
    identity = json(env.IDENTITY);
    upstream = json(env.UPSTREAM);
    accessClients = json(env.ACCESS_CLIENTS ?? {}) || {};
  } catch {
    throw new GatewayError("config_invalid");
  }
  if (!identity?.issuer || !upstream?.url || !env.POLICY_VERSION || !env.POLICY) {
    throw new GatewayError("config_invalid");
  }
  // One verifier (and key set) per identity document and KV MAC secret, kept across requests.
  const key = JSON.stringify(identity) + "\n" + (env.JWKS_KV_MAC_KEY ?? "");
  if (!verifiers.has(key)) verifiers.set(key, verifierFactory(identity, { JWKS_KV_MAC_KEY: env.JWKS_KV_MAC_KEY }));
  const ttl = Number(env.CONTROL_TTL_SECONDS ?? DEFAULT_CONTROL_TTL_S);
  // `base`: the upstream URL without trailing slashes, to which every upstream path is appended.
  const base = upstream.url.replace(/\/+$/, "");
  configCache = { env, identity, upstream, base, accessClients, verifier: verifiers.get(key), controlTtlMs: ttl * 1000 };
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

// The control copy while it is fresh, else null (the caller then reads it with loadControl).
const freshControl = (ttlMs) => (control && Date.now() - control.at < ttlMs ? control.value : null);

async function loadControl(env, ttlMs) {
  const now = Date.now();
  try {
    const value = (await env.POLICY.get("control", "json")) || {};
    control = {
      // Identifiers compare exactly; an email is compared lower-cased, as identities hold it.
      value: {
        revoked: new Set((value.revoked_subjects || []).flatMap((id) => (id.includes?.("@") ? [id, id.toLowerCase()] : [id]))),
        disabled: new Set(value.disabled_roles || []),
      },
      at: now,
    };
  } catch {
    if (!control) throw new GatewayError("control_unavailable");
  }
  return control.value;
}


// Continue the caller's trace (new span id for this hop) or start one: [traceparent, continued]
// (the caller's tracestate is forwarded only with its own trace). Random ids come from
// crypto.randomUUID (native; only its version and variant nibbles are fixed, which are skipped in
// the span id and fall outside the trace id's random rightmost 7 bytes), the cheapest source here.
function traceparentFor(incoming, requestId) {
  const uuid = crypto.randomUUID();
  const span = uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(24, 28);
  const match = incoming && TRACEPARENT.exec(incoming.trim().toLowerCase());
  const valid = match && match[1] !== "ff" && !/^0+$/.test(match[2]) && !/^0+$/.test(match[3]);
  return valid ? [`00-${match[2]}-${span}-${match[4]}`, true] : [`00-${requestId.replace(/-/g, "")}-${span}-01`, false];
}

// Rate limiting: the bucket lives in a Durable Object per key ((subject, route), or a client address
// for failed authentications). An isolate may lease several tokens at once, sized by how many
// requests it saw for that key in the last second (one for a quiet caller, so limits stay exact),
// and spends them locally for at most LEASE_MS. Leased tokens are taken from the bucket, so the
// limit is never exceeded; at worst one lease of unused tokens expires unspent. An empty bucket is
// remembered until the Durable Object said it refills, so a flood of 429s costs no call at all.
const LEASE_MS = 1000;
const leases = new Map();

const limited = (limit, ms) =>
  new GatewayError("rate_limited", `over ${limit.requests} per ${limit.per_seconds} s`, { retryAfter: Math.max(1, Math.ceil(ms / 1000)) });

function leaseOf(key, now) {
  let lease = leases.get(key);
  if (!lease) {
    if (leases.size > 10000) leases.clear();
    leases.set(key, (lease = { tokens: 0, until: 0, hits: 0, last: 0, window: now + 1000, empty: 0 }));
  }
  return lease;
}

function spend(lease, now) {
  if (lease.tokens >= 1 && now < lease.until) return lease.tokens-- > 0;
}

// Spends a leased token (null), refuses from memory (throws 429), or asks the bucket (a promise of
// null, "fail_open" or a throw): the first two, by far the most frequent, never wait.
function rateLimit(env, policy, key, limit) {
  const now = Date.now();
  const lease = leaseOf(key, now);
  if (now > lease.window) [lease.last, lease.hits, lease.window] = [lease.hits, 0, now + 1000];
  lease.hits++;
  if (spend(lease, now)) return null;
  // While the bucket is remembered empty: 429 without a Durable Object call.
  if (lease.empty > now) throw limited(limit, lease.empty - now);
  return takeFromBucket(env, policy, key, limit, lease);
}

async function takeFromBucket(env, policy, key, limit, lease) {
  const want = Math.max(1, Math.min(lease.last, Math.floor(limit.requests / 10)));
  let answer;
  try {
    const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(key));
    answer = await stub.fetch(`https://rate-limiter/take?requests=${limit.requests}&per=${limit.per_seconds}&want=${want}`);
  } catch {}
  const count = Number(await answer?.text());
  if (answer?.status === 200) {
    lease.tokens = (Date.now() < lease.until ? lease.tokens : 0) + count;
    lease.until = Date.now() + LEASE_MS;
  }
  if (spend(lease, Date.now())) return null;
  if (answer?.status === 429) {
    lease.empty = Date.now() + count;
    throw limited(limit, count);
  }
  if (policy.limits.durable_objects_fail_open) return "fail_open";
  throw new GatewayError("durable_object_unavailable");
}

// The body, counted as it streams whatever Content-Length says. A declared length (already ≤ max)
// is kept for the upstream (FixedLengthStream, workerd); otherwise the body is read into memory
// first (ctx.bytes), which never holds more than `max` bytes.
function bodyOf(ctx, request, max, declared) {
  if (declared === null) return ctx.bytes();
  let size = 0;
  const counted = request.body.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        if ((size += chunk.byteLength) <= max) return controller.enqueue(chunk);
        controller.error((ctx.bodyError = new GatewayError("body_too_large", `the body exceeds ${max} bytes`)));
      },
    }),
  );
  return typeof FixedLengthStream === "function" ? counted.pipeThrough(new FixedLengthStream(Number(declared))) : counted;
}

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

// Method, path, route and (for the trigger gateway) the DAG grant: the decision the Python
// reference (infra/policy/evaluate.py) makes for routes, shared by real requests and
// /.airgate/decision. Throws the refusal; sets ctx.path, ctx.route and ctx.params. Returns the
// grant check's promise when the gateway has one (the trigger gateway), else nothing.
function decide(ctx, method, rawPath, check) {
  if (!METHODS.includes(method)) throw new GatewayError("invalid_method", `${method} is not served`);
  ctx.path ??= normalisePath(rawPath);
  const verdict = evaluate(ctx.policy, method, ctx.path, ctx.identity.roles);
  ctx.route = verdict.route;
  if (verdict.decision !== "allow") throw new GatewayError(verdict.decision, undefined, { allow: verdict.allow });
  ctx.params = params(ctx.route.segments, ctx.path);
  return check?.(ctx);
}

// GET /.airgate/decision?method=M&path=P: the decision this gateway would make for the caller's own
// identity (README: "The decision endpoint"). Never forwards, spends a token or triggers anything.
async function decisionAnswer(ctx, query, check, revoked) {
  const method = query.get("method");
  const raw = query.get("path");
  if (!/^[A-Z]{1,16}$/.test(method || "") || !raw?.startsWith("/")) {
    throw new GatewayError("invalid_request", "give ?method=<METHOD>&path=<url-encoded path starting with />");
  }
  let decision = "allow";
  try {
    await decide(ctx, method, new URL("https://gateway" + raw).pathname, check);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    decision = error.reason;
  }
  const body = {
    gateway: ctx.policy.gateway,
    policy_version: ctx.policyVersion,
    subject: ctx.identity.subject,
    roles: ctx.identity.roles,
    method,
    path: ctx.path ? formatPath(ctx.path) : raw,
    decision,
    status: decision === "allow" ? 200 : new GatewayError(decision).status,
    route: ctx.route?.name ?? null,
    rate_limit: ctx.route?.rate_limit ?? null,
  };
  if (ctx.params?.dag_id !== undefined) body.dag_id = ctx.params.dag_id;
  if (revoked) body.revoked = true;
  return Response.json(body, { headers: { "cache-control": "no-store", "x-request-id": ctx.requestId } });
}

export function createGateway({ build, verifierFactory, upstreamHandler }) {
  // The request's method, URL parts and headers are each read from the runtime once: every such
  // read is a call across the runtime boundary, a large part of the gateway's own cost
  // (bench/gateway/instructions).
  async function handle(request, env, record, continued, method, headers) {
    const config = configOf(env, verifierFactory);
    const kv = env.POLICY;
    // Cold isolate: read the key set (KV, else the IdP) and the control list while the policy is
    // read. Awaited here: I/O started by one request must not be left for another. A warm isolate
    // has all three and waits for nothing.
    const current = freshControl(config.controlTtlMs);
    const controlled = current ? null : loadControl(env, config.controlTtlMs);
    controlled?.catch(() => {});
    let policy = policies.get(env.POLICY_VERSION);
    if (!policy || !config.verifier.keys.local) {
      [policy] = await Promise.all([loadPolicy(env), config.verifier.keys.local || config.verifier.keys.ensure(kv).catch(() => {})]);
    }
    const limits = policy.limits;
    const url = new URL(request.url);
    const { pathname, search } = url;
    const fields = readHeaders(headers, limits.max_header_bytes);
    // Refused query parameters: answered here unless some route opts one in, then once the route is known.
    const refused = search ? refusedParameters(url.searchParams) : null;
    if (refused?.length) checkRefused(refused, optIns(policy));
    // RFC 9112 §6.1: a message with both is a smuggling attempt as often as not; refuse it.
    if (fields.has("transfer-encoding") && fields.has("content-length")) {
      throw new GatewayError("ambiguous_body_length", "Content-Length together with Transfer-Encoding");
    }
    // RFC 9110 §10.1.1: the one expectation we meet is 100-continue (answered by the runtime; the
    // header itself is never forwarded); any other → 417.
    const expect = fields.get("expect");
    if (expect !== undefined && expect.trim().toLowerCase() !== "100-continue") throw new GatewayError("expectation_failed");
    // Every field a later step sets is declared here, so each request's context has one shape.
    const ctx = {
      request, env, config, policy, fields, method, search,
      identity: { roles: [] },
      requestId: record.request_id,
      traceparent: record.traceparent,
      tracestate: continued ? fields.get("tracestate") : undefined,
      policyVersion: env.POLICY_VERSION,
      timeoutMs: config.upstream.timeout_ms || limits.upstream_timeout_ms || 10000,
      path: undefined, pathText: undefined, route: undefined, params: undefined,
      bytes: undefined, body: undefined, bodyError: undefined, deadline: Infinity,
      reason: undefined, upstreamStatus: undefined,
    };
    const asked = pathname === "/.airgate/decision" && method === "GET";
    if (!asked) {
      if (!METHODS.includes(method)) throw new GatewayError("invalid_method", `${method} is not served`);
      record.path = ctx.pathText = formatPath((ctx.path = normalisePath(pathname)));
    }

    // Failed authentications are limited per client address (a valid credential always passes, so
    // callers behind a shared address are not locked out); once the bucket is empty, a failure is
    // answered 429 from the isolate's memory, without a Durable Object call.
    let claims;
    try {
      claims = config.verifier.authenticate(fields, limits, kv);
      if (claims instanceof Promise) claims = await claims;
    } catch (error) {
      if (error?.status === 401) {
        const address = `\nauth\n${fields.get("cf-connecting-ip") || "unknown"}`;
        try {
          await rateLimit(env, policy, address, limits.auth_failures);
        } catch (limit) {
          if (limit.reason === "rate_limited") throw limit;
        }
      }
      throw error;
    }
    const { revoked, disabled } = current ?? (await controlled);
    // Verified claims are cached per token, so their identity is too (per policy version).
    let known = identities.get(claims);
    if (known?.policy !== policy) {
      known = { policy, identity: identify(claims, config.verifier.mode, policy, config.identity, config.accessClients) };
      identities.set(claims, known);
    }
    // The cached identity is shared, never changed: a revocation or kill switch gives a copy.
    const granted = known.identity.roles;
    const isRevoked = known.identity.ids.some((id) => revoked.has(id));
    const roles = isRevoked ? [] : disabled.size ? granted.filter((role) => !disabled.has(role)) : granted;
    const identity = (ctx.identity = roles === granted ? known.identity : { ...known.identity, roles });
    record.subject = identity.subject;
    record.roles = identity.roles;
    if (asked) {
      record.reason = "decision_query";
      return decisionAnswer(ctx, url.searchParams, upstreamHandler.check, isRevoked);
    }
    if (isRevoked) throw new GatewayError("subject_revoked");

    try {
      const checking = decide(ctx, method, pathname, upstreamHandler.check);
      if (checking) await checking;
      if (refused?.length) checkRefused(refused, ctx.route.forward_query);
    } finally {
      if (ctx.route) record.route = ctx.route.name;
    }
    const route = ctx.route;
    const max = limits.max_body_bytes;
    // A GET or HEAD body is never forwarded (proxy.js), so only other methods' lengths matter.
    const declared = method === "GET" || method === "HEAD" ? null : (fields.get("content-length") ?? null);
    if (declared !== null && !(Number(declared) <= max)) {
      throw new GatewayError("body_too_large", `the body exceeds ${max} bytes`);
    }
    let limitedBy = rateLimit(env, policy, `${identity.subject}\n${route.name}`, route.rate_limit);
    if (limitedBy) limitedBy = await limitedBy;
    if (limitedBy) record.durable_objects = limitedBy;

    ctx.bytes = () => readCapped(request.body, max);
    ctx.body = () => bodyOf(ctx, request, max, declared);
    const response = await upstreamHandler(ctx);
    record.decision = "allow";
    record.reason = ctx.reason || "allowed";
    record.upstream_status = ctx.upstreamStatus ?? null;
    return response;
  }

  return {
    async fetch(request, env) {
      const started = Date.now();
      const method = request.method;
      const headers = request.headers;
      const requestId = crypto.randomUUID();
      const [traceparent, continued] = traceparentFor(headers.get("traceparent"), requestId);
      const record = {
        time: new Date(started).toISOString(),
        request_id: requestId,
        traceparent,
        environment: env.ENVIRONMENT ?? build.environment,
        gateway: env.GATEWAY ?? build.gateway,
        route: null,
        method,
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
        response = await handle(request, env, record, continued, method, headers);
        if (record.reason === "decision_query") record.decision = "allow";
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
