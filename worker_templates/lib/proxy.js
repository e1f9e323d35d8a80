// The outbound gateway's upstream step: forward the normalised request with the upstream's own
// credential, never the caller's.
import { GatewayError } from "./problem.js";
import { formatPath } from "./path.js";

const HOP_BY_HOP = [
  "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
  "trailer", "transfer-encoding", "upgrade", "host", "content-length",
];
const CALLER_CREDENTIALS = ["authorization", "cookie"];

function dropped(headers) {
  const names = new Set(HOP_BY_HOP);
  for (const token of (headers.get("connection") || "").split(",")) names.add(token.trim().toLowerCase());
  return names;
}

// Request headers safe to forward: hop-by-hop, the caller's credentials, anything Cloudflare Access
// added and anything that could pose as the gateway's own identity headers are removed.
export function forwardHeaders(incoming, ctx) {
  const drop = dropped(incoming);
  const headers = new Headers();
  for (const [name, value] of incoming) {
    if (drop.has(name) || CALLER_CREDENTIALS.includes(name)) continue;
    if (name.startsWith("cf-access-") || name.startsWith("x-airgate-") || name === "traceparent") continue;
    headers.append(name, value);
  }
  headers.set("x-request-id", ctx.requestId);
  headers.set("traceparent", ctx.traceparent);
  headers.set("x-airgate-subject", ctx.identity.subject);
  headers.set("x-airgate-roles", ctx.identity.roles.join(","));
  headers.set("x-airgate-policy-version", ctx.policyVersion);
  headers.set("x-airgate-route", ctx.route.name);
  return headers;
}

export function responseFrom(upstream, requestId) {
  const drop = dropped(upstream.headers);
  drop.delete("content-length");
  const headers = new Headers();
  for (const [name, value] of upstream.headers) if (!drop.has(name)) headers.append(name, value);
  headers.set("x-request-id", requestId);
  return new Response(upstream.body, { status: upstream.status, headers });
}

// fetch with the configured timeout: no answer in time → 504, no answer at all → 502.
export async function callUpstream(url, init, timeoutMs) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    return await fetch(url, { ...init, signal: controller.signal, redirect: "manual" });
  } catch (error) {
    if (timedOut) throw new GatewayError("upstream_timeout", `no answer within ${timeoutMs} ms`);
    throw new GatewayError("upstream_unreachable", "the upstream could not be reached");
  } finally {
    clearTimeout(timer);
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
  const target = upstream.url.replace(/\/+$/, "") + formatPath(ctx.path) + url.search;
  const init = { method: request.method, headers };
  if (request.body && request.method !== "GET" && request.method !== "HEAD") init.body = await ctx.body();
  const answer = await callUpstream(target, init, ctx.timeoutMs);
  ctx.upstreamStatus = answer.status;
  return responseFrom(answer, ctx.requestId);
}
