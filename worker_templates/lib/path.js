// Path normalisation and route matching, the JavaScript twin of infra/policy/evaluate.py.
import { GatewayError } from "./problem.js";

const ENCODED_SEPARATOR = /%(2f|5c)/i;
const CONTROL = /[\u0000-\u001f\u007f]/;

// `raw` is URL.pathname: already parsed once by the URL parser (which resolves literal and
// %2e dot segments and turns `\` into `/`). Each segment is percent-decoded exactly once here.
export function normalisePath(raw) {
  if (!raw.startsWith("/")) throw new GatewayError("invalid_path", "path must start with '/'");
  const out = [];
  for (const piece of raw.split("/")) {
    if (piece === "") continue;
    if (ENCODED_SEPARATOR.test(piece)) {
      throw new GatewayError("invalid_path", "encoded separator in a segment");
    }
    let segment;
    try {
      segment = decodeURIComponent(piece);
    } catch {
      throw new GatewayError("invalid_path", "malformed percent-encoding");
    }
    if (CONTROL.test(segment) || segment.includes("\\") || segment.includes("/")) {
      throw new GatewayError("invalid_path", "control character or separator in a segment");
    }
    // `..;x` / `.;x`: servlet containers read these as dot segments, so refuse them outright.
    if (/^\.\.?;/.test(segment)) throw new GatewayError("invalid_path", "dot segment with parameters");
    if (segment === ".") continue;
    if (segment === "..") {
      out.pop();
      continue;
    }
    out.push(segment);
  }
  return out;
}

// Every code point outside RFC 3986 pchar is percent-encoded (one pass; `u` keeps pairs whole).
const ENCODE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@]/gu;
const encodeSegment = (segment) => segment.replace(ENCODE, encodeURIComponent);

// The path the upstream receives: the same segments that were matched, re-encoded.
export function formatPath(segments) {
  return "/" + segments.map(encodeSegment).join("/");
}

export function matches(pattern, path) {
  for (let i = 0; i < pattern.length; i++) {
    const segment = pattern[i];
    if (segment === "**") return true;
    if (i >= path.length) return false;
    if (segment !== "*" && segment[0] !== "{" && segment !== path[i]) return false;
  }
  return path.length === pattern.length;
}

export function params(pattern, path) {
  const found = {};
  pattern.forEach((segment, i) => {
    if (segment[0] === "{") found[segment.slice(1, -1)] = path[i];
  });
  return found;
}

// First route (most specific first) whose pattern matches and whose methods include `method`.
// On a 405, `allow` lists the methods of every route the path matched (its Allow header); built
// only then, as 405s are rare.
export function evaluate(policy, method, path, roles) {
  let pathMatched = false;
  for (const route of policy.routes) {
    if (!matches(route.segments, path)) continue;
    pathMatched = true;
    if (!route.methods.includes(method)) continue;
    if (route.roles.some((role) => roles.includes(role))) return { decision: "allow", route };
    return { decision: "role_not_allowed", route };
  }
  if (!pathMatched) return { decision: "no_route", route: null };
  const allow = new Set();
  for (const route of policy.routes) if (matches(route.segments, path)) route.methods.forEach((m) => allow.add(m));
  return { decision: "method_not_allowed", route: null, allow: [...allow].join(", ") };
}
