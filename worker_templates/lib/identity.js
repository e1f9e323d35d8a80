// Authentication: find the one credential of the gateway's mode, verify it (jwt.js: our pre-checks,
// then jose over the issuer's key set from keyset.js), and map only verified claims to roles.
//
// The Worker re-checks its own IDENTITY binding before trusting it (an issuer and non-empty
// audiences, a finite leeway within 0..60 s, known algorithms and token types, a positive cooldown):
// a bad value fails closed (503 config_invalid) on every request rather than loosening a check.
import { GatewayError } from "./problem.js";
import { KeySet } from "./keyset.js";
import { verifyJwt, TOKEN_TYPES } from "./jwt.js";

const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];
// Verified tokens, by their full text (a key of signature alone would let a forged payload ride a
// valid signature), until min(exp, TOKEN_CACHE_MS). Revocation is still checked on every request.
const TOKEN_CACHE_MS = 60 * 1000;
const TOKEN_CACHE_SIZE = 1000;

const nonEmpty = (value) => typeof value === "string" && value.length > 0;
const listOf = (value, check) => Array.isArray(value) && value.length > 0 && value.every(check);

/** The IDENTITY binding, checked: the options jose and the pre-checks use, or throws config_invalid. */
export function identityOptions(config) {
  const bad = (key) => {
    throw new GatewayError("config_invalid", `IDENTITY.${key} is not valid`);
  };
  if (!config || typeof config !== "object") bad("(document)");
  if (!nonEmpty(config.issuer)) bad("issuer");
  if (!listOf(config.audience, nonEmpty)) bad("audience");
  const leeway = config.leeway_seconds;
  if (typeof leeway !== "number" || !Number.isFinite(leeway) || leeway < 0 || leeway > 60) bad("leeway_seconds");
  if (!listOf(config.algorithms, (a) => ALGORITHMS.includes(a))) bad("algorithms");
  if (!listOf(config.accepted_token_types, (t) => TOKEN_TYPES.includes(t))) bad("accepted_token_types");
  const cooldown = config.jwks_refresh_cooldown_seconds;
  if (typeof cooldown !== "number" || !Number.isFinite(cooldown) || cooldown < 1) bad("jwks_refresh_cooldown_seconds");
  if (config.jwks_url != null && !nonEmpty(config.jwks_url)) bad("jwks_url");
  return {
    issuer: config.issuer,
    audience: [...config.audience],
    leeway,
    algorithms: [...config.algorithms],
    accepted: [...config.accepted_token_types],
  };
}

function single(fields, name) {
  const value = fields.get(name);
  if (value == null) return null;
  // Headers joins repeated fields with ", "; a JWT never contains a comma.
  if (value.includes(",")) throw new GatewayError("duplicate_credential", `more than one ${name} header`);
  return value.trim();
}

function verifier(config, secrets, mode, credentialOf) {
  const options = identityOptions(config);
  const keys = new KeySet(config, secrets.JWKS_KV_MAC_KEY);
  const verified = new Map();
  async function verifyAndCache(token, now, kv) {
    const claims = await verifyJwt(token, keys.getter(kv), options);
    if (verified.size >= TOKEN_CACHE_SIZE) verified.delete(verified.keys().next().value);
    verified.set(token, { claims, until: Math.min(claims.exp * 1000, now + TOKEN_CACHE_MS) });
    return claims;
  }
  return {
    mode,
    keys,
    // `fields`: the request's headers as the gateway read them once (a Map of name → value).
    // A token verified before answers at once (its claims); any other, a promise of its claims.
    authenticate(fields, limits, kv) {
      const token = credentialOf(fields);
      if (token.length > limits.max_token_bytes) throw new GatewayError("token_too_large");
      const now = Date.now();
      const hit = verified.get(token);
      if (hit && now < hit.until) return hit.claims;
      return verifyAndCache(token, now, kv);
    },
  };
}

export function oidcVerifier(config, secrets = {}) {
  return verifier(config, secrets, "oidc", (fields) => {
    const value = single(fields, "authorization");
    if (value == null) throw new GatewayError("missing_credential", "Authorization: Bearer required");
    const match = /^Bearer +([^ ]+)$/i.exec(value);
    if (!match) throw new GatewayError("invalid_token", "not a bearer token");
    return match[1];
  });
}

export function accessVerifier(config, secrets = {}) {
  return verifier(config, secrets, "access", (fields) => {
    const value = single(fields, "cf-access-jwt-assertion");
    if (!value) {
      const detail = fields.has("cf-access-client-id")
        ? "service-token headers without an Access JWT"
        : "Cf-Access-Jwt-Assertion required";
      throw new GatewayError("missing_credential", detail);
    }
    return value;
  });
}

const text = (value) => (typeof value === "string" && value ? value : null);

// The subject reaches the upstream in a header (x-airgate-subject) and must arrive as the identity
// provider signed it. The runtime refuses a control character in a header value (fetch throws, which
// would read as an upstream failure, 502) and trims white space at either end (" alice" would reach
// the upstream as "alice"). A subject it cannot carry as it is counts as no usable subject.
const UNCARRIED = /[\x00-\x1f\x7f]|^[ \t]|[ \t]$/;

// Verified claims → { subject, kind (person, oidc_client, service_token), ids (every identifier
// that can grant a role: the revocation list may name any of them), roles }. Only what the identity provider vouches for counts:
// - an email: always in an Access JWT (Access authenticated it); in OIDC only with
//   `email_verified: true` (OpenID Connect Core 1.0 §5.1);
// - an OIDC client id: only on a client-credentials token, which carries `client_id` equal to `sub`
//   (RFC 9068 §2.2: with no resource owner, `sub` identifies the client); a person's `sub` or a
//   token's `azp` never names a client;
// - an Access service token: its `common_name` (the client id Access verified), named by the stack.
// A token without a usable subject (no `sub`, no service-token client id, or a subject a header
// cannot carry as it is: UNCARRIED) is refused (401).
export function identify(claims, mode, policy, identityConfig, accessClients) {
  const raw = claims[identityConfig.roles_claim || "groups"];
  const groups = [].concat(raw ?? []).filter((g) => typeof g === "string");
  const sub = text(claims.sub);
  const email = mode === "access" || claims.email_verified === true ? text(claims.email)?.toLowerCase() : null;
  let client = null;
  let tokenName = null;
  if (mode === "access") {
    client = text(claims.common_name);
    tokenName = (client && Object.hasOwn(accessClients, client) && accessClients[client]) || null;
  } else if (sub && claims.client_id === sub) {
    client = sub;
  }
  const subject = tokenName || sub || client;
  if (!subject) throw new GatewayError("token_subject_missing", "no subject");
  if (UNCARRIED.test(subject)) throw new GatewayError("token_subject_missing", "a subject a header cannot carry as it is");
  const roles = [];
  for (const [name, role] of Object.entries(policy.roles)) {
    if (
      groups.some((g) => role.groups.includes(g)) ||
      (email && role.emails.includes(email)) ||
      (tokenName && role.service_tokens.includes(tokenName)) ||
      (mode === "oidc" && client && role.oidc_clients.includes(client))
    ) {
      roles.push(name);
    }
  }
  const ids = [subject, sub, email, client, tokenName].filter(Boolean);
  // What the subject is, for records people read (the trigger gateway's DAG-run note).
  const kind = tokenName || !sub ? "service_token" : mode === "oidc" && client ? "oidc_client" : "person";
  return { subject, kind, ids, roles: roles.sort() };
}
