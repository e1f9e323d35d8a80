// The outbound gateway's upstream step and the header contract (README: "The gateway's header
// contract"). Requests: the upstream receives only the end-to-end headers on DEFAULT_FORWARD, those
// the stack adds (`forward_headers:` per gateway and route), and the gateway's own (identity, trace
// context, request id, client address when configured, the upstream credential). Names compare
// after lower-casing and mapping `_` to `-`, so `X_Airgate_Subject` is `x-airgate-subject`; only
// the canonical spelling of an allowed name is forwarded. Responses: hop-by-hop headers are
// stripped; upstream `Set-Cookie` and absolute `Location` follow the stack's `response:` settings.
import { GatewayError } from "./problem.js";

// RFC 9110 §12.5 (content negotiation), §13.1 (conditional requests), §14.2 (Range), §8.3/8.4/8.5
// (representation metadata of the body), §10.1.5 (User-Agent).
const DEFAULT_FORWARD = (
  "accept accept-charset accept-encoding accept-language content-type content-encoding content-language " +
  "if-match if-none-match if-modified-since if-unmodified-since if-range range user-agent"
).split(" ");
// Headers that ask an upstream to act on another method or path (Symfony, Rails, Express
// method-override, IIS URL Rewrite): refused with 400 rather than silently dropped.
const OVERRIDES = new Set("x-http-method-override x-http-method x-method-override x-original-url x-rewrite-url x-original-method".split(" "));
// RFC 9110 §5.6.2: a field name is a token.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// The one pass over the request headers (the runtime gives their names lower-cased, repeated
// fields joined as `get` joins them): their size, and no method or path override in any spelling.
// Returns them as a Map of name → value, which every later step reads instead of asking the
// runtime again: each call into the runtime's Headers costs thousands of instructions
// (bench/gateway/instructions).
export function readHeaders(headers, maxBytes) {
  let total = 0;
  const fields = new Map();
  for (const [name, value] of headers) {
    fields.set(name, value);
    total += name.length + value.length + 4;
    if (OVERRIDES.has(name.includes("_") ? name.replace(/_/g, "-") : name)) {
      throw new GatewayError("override_refused", `${name} is not accepted`);
    }
  }
  if (total > maxBytes) throw new GatewayError("headers_too_large", `request headers exceed ${maxBytes} bytes`);
  return fields;
}

function allowedFor(policy, route) {
  return (route.allow ??= new Set([...DEFAULT_FORWARD, ...policy.headers.forward, ...route.forward_headers]));
}

// The headers the upstream receives (see the module comment), from the request's fields (none for
// a call the gateway makes itself). A plain object, not a Headers: fetch would copy a Headers into
// its request's own, one more runtime copy of every header.
export function forwardHeaders(incoming, ctx) {
  const allowed = allowedFor(ctx.policy, ctx.route);
  const headers = {};
  for (const [name, value] of incoming || []) if (allowed.has(name)) headers[name] = value;
  headers["x-request-id"] = ctx.requestId;
  headers.traceparent = ctx.traceparent;
  if (ctx.tracestate) headers.tracestate = ctx.tracestate;
  headers["x-airgate-subject"] = ctx.identity.subject;
  headers["x-airgate-roles"] = ctx.identity.roles.join(",");
  headers["x-airgate-policy-version"] = ctx.policyVersion;
  headers["x-airgate-route"] = ctx.route.name;
  if (ctx.policy.headers.client_address) {
    const address = ctx.fields.get("cf-connecting-ip");
    if (address) headers["x-forwarded-for"] = address;
  }
  return headers;
}

// The hop-by-hop fields the runtime leaves in a fetched response: workerd's HTTP layer (kj-http)
// owns Connection, Keep-Alive, TE, Trailer, Transfer-Encoding and Upgrade and writes its own
// (tests/worker/headers.test.mjs checks the client never sees them), but not the Proxy-* fields
// or those a Connection field names. One runtime call per name, so the list stays this short.
const PROXY_HOP_BY_HOP = ["proxy-authenticate", "proxy-authorization", "proxy-connection"];

// An absolute Location: "rewrite" (default) turns one under the upstream's URL into the same
// path on the gateway and drops any other; "drop" drops every absolute one; "forward" keeps it.
function location(value, rule, base) {
  if (!/^[a-z][a-z0-9+.-]*:|^\/\//i.test(value) || rule === "forward") return value;
  if (rule !== "drop" && value.startsWith(base + "/")) return value.slice(base.length);
  return null;
}

export function responseFrom(upstream, ctx) {
  const response = new Response(upstream.body, upstream);
  const headers = response.headers;
  const connection = headers.get("connection");
  if (connection !== null) {
    // RFC 9110 §7.6.1: the fields a Connection field names are hop-by-hop too.
    for (const name of connection.split(",")) if (TOKEN.test(name.trim())) headers.delete(name.trim());
    headers.delete("connection");
  }
  for (const name of PROXY_HOP_BY_HOP) headers.delete(name);
  const rules = ctx.policy.headers;
  if (rules.set_cookie !== "forward") headers.delete("set-cookie");
  const target = headers.get("location");
  if (target !== null) {
    const kept = location(target, rules.absolute_location, ctx.config.base);
    kept === null ? headers.delete("location") : headers.set("location", kept);
  }
  headers.set("x-request-id", ctx.requestId);
  return response;
}

// fetch with the configured timeout: no answer in time → 504, no answer at all → 502; a request
// body that failed on the way (over the limit) → that body's error.
export async function callUpstream(url, init, timeoutMs, ctx) {
  try {
    init.signal = AbortSignal.timeout(timeoutMs);
    init.redirect = "manual";
    return await fetch(url, init);
  } catch (error) {
    if (ctx?.bodyError) throw ctx.bodyError;
    if (error?.name === "TimeoutError") throw new GatewayError("upstream_timeout", `no answer within ${timeoutMs} ms`);
    throw new GatewayError("upstream_unreachable", "the upstream could not be reached");
  }
}

export function credentialValue(env, upstream) {
  const secret = env.UPSTREAM_CREDENTIAL;
  if (!upstream.credential_header) return null;
  if (!secret) throw new GatewayError("config_invalid", "the upstream credential is not bound");
  return upstream.credential_scheme ? `${upstream.credential_scheme} ${secret}` : secret;
}

export async function proxyHandler(ctx) {
  const { request, config, method } = ctx;
  const upstream = config.upstream;
  const headers = forwardHeaders(ctx.fields, ctx);
  const credential = credentialValue(ctx.env, upstream);
  if (credential) headers[upstream.credential_header.toLowerCase()] = credential;
  const init = { method, headers };
  // A GET or HEAD body is never forwarded, so its Content-Length is never read either.
  if (method !== "GET" && method !== "HEAD" && request.body) init.body = await ctx.body();
  const answer = await callUpstream(config.base + ctx.pathText + ctx.search, init, ctx.timeoutMs, ctx);
  ctx.upstreamStatus = answer.status;
  return responseFrom(answer, ctx);
}
