// The outbound gateway's upstream step and the header contract (README: "The gateway's header
// contract"). Requests: the upstream receives only the end-to-end headers on DEFAULT_FORWARD, those
// the stack adds (`forward_headers:` per gateway and route), and the gateway's own (identity, trace
// context, request id, client address when configured, the upstream credential). Names compare
// after lower-casing and mapping `_` to `-`, so `X_Airgate_Subject` is `x-airgate-subject`; only
// the canonical spelling of an allowed name is forwarded. Responses: hop-by-hop headers are
// stripped; upstream `Set-Cookie` and absolute `Location` follow the stack's `response:` settings.
import { GatewayError } from "./problem.js";
import { formatPath } from "./path.js";

// RFC 9110 §12.5 (content negotiation), §13.1 (conditional requests), §14.2 (Range), §8.3/8.4/8.5
// (representation metadata of the body), §10.1.5 (User-Agent).
const DEFAULT_FORWARD = (
  "accept accept-charset accept-encoding accept-language content-type content-encoding content-language " +
  "if-match if-none-match if-modified-since if-unmodified-since if-range range user-agent"
).split(" ");
// Headers that ask an upstream to act on another method or path (Symfony, Rails, Express
// method-override, IIS URL Rewrite): refused with 400 rather than silently dropped.
const OVERRIDES = new Set("x-http-method-override x-http-method x-method-override x-original-url x-rewrite-url x-original-method".split(" "));
// RFC 9110 §7.6.1: hop-by-hop fields, plus any the Connection field names.
const HOP_BY_HOP = "connection keep-alive proxy-authenticate proxy-authorization proxy-connection te trailer transfer-encoding upgrade".split(" ");

// One pass over the request headers (the runtime gives their names lower-cased): their size, and
// no method or path override in any spelling; then no `_method` in the query.
export function checkHeaders(headers, url, maxBytes) {
  let total = 0;
  for (const [name, value] of headers) {
    total += name.length + value.length + 4;
    if (OVERRIDES.has(name.includes("_") ? name.replace(/_/g, "-") : name)) {
      throw new GatewayError("override_refused", `${name} is not accepted`);
    }
  }
  if (total > maxBytes) throw new GatewayError("headers_too_large", `request headers exceed ${maxBytes} bytes`);
  if (url.search) {
    for (const [name] of url.searchParams) {
      if (name.toLowerCase() === "_method") throw new GatewayError("override_refused", "_method is not accepted");
    }
  }
}

function allowedFor(policy, route) {
  return (route.allow ??= new Set([...DEFAULT_FORWARD, ...policy.headers.forward, ...route.forward_headers]));
}

// The headers the upstream receives (see the module comment).
export function forwardHeaders(incoming, ctx) {
  const allowed = allowedFor(ctx.policy, ctx.route);
  const headers = new Headers();
  for (const [name, value] of incoming) if (allowed.has(name)) headers.append(name, value);
  headers.set("x-request-id", ctx.requestId);
  headers.set("traceparent", ctx.traceparent);
  if (ctx.tracestate) headers.set("tracestate", ctx.tracestate);
  headers.set("x-airgate-subject", ctx.identity.subject);
  headers.set("x-airgate-roles", ctx.identity.roles.join(","));
  headers.set("x-airgate-policy-version", ctx.policyVersion);
  headers.set("x-airgate-route", ctx.route.name);
  if (ctx.policy.headers.client_address) {
    const address = ctx.request.headers.get("cf-connecting-ip");
    if (address) headers.set("x-forwarded-for", address);
  }
  return headers;
}

function dropped(headers) {
  const connection = headers.get("connection");
  return connection ? [...HOP_BY_HOP, ...connection.split(",").map((t) => t.trim().toLowerCase())] : HOP_BY_HOP;
}

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
  for (const name of dropped(headers)) headers.delete(name);
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
  const { request, config, url } = ctx;
  const upstream = config.upstream;
  const headers = forwardHeaders(request.headers, ctx);
  const credential = credentialValue(ctx.env, upstream);
  if (credential) headers.set(upstream.credential_header, credential);
  const target = config.base + formatPath(ctx.path) + url.search;
  const init = { method: request.method, headers };
  if (request.body && request.method !== "GET" && request.method !== "HEAD") init.body = await ctx.body();
  const answer = await callUpstream(target, init, ctx.timeoutMs, ctx);
  ctx.upstreamStatus = answer.status;
  return responseFrom(answer, ctx);
}
