// Authentication: find the one credential of the gateway's mode, verify its JWS signature with
// WebCrypto against the issuer's key set, check the claims, and map only verified claims to roles.
//
// Key set: module scope, one fetch at a time (single flight), the response capped at JWKS_MAX_BYTES.
// A cold isolate first reads the copy in KV (`jwks:<sha256(issuer)[:16]>` in the POLICY namespace:
// {fetched_at, keys}), so it need not call the identity provider; every fetch from the provider
// writes that copy back. A set older than MAX_AGE_MS is refreshed on use; if that fails the set is
// kept, but never past MAX_STALE_MS after it was fetched: older keys stop being trusted (503).
// A token whose `kid` is not in the set triggers a refresh at most once per
// `jwks_refresh_cooldown_seconds`, so random kids cannot flood the IdP. Nothing cached and the IdP
// unreachable → 503 (fail closed); attempts are then spaced at least EMPTY_RETRY_MS apart.
// Only `kid`/`alg` of a token's header choose a key: `jku`, `x5u`, `jwk` and `x5c` are never read,
// and a header with `crit` (RFC 7515 §4.1.11: extensions we do not understand) is refused.
import { GatewayError, within, readCapped, sha256hex, base64url } from "./problem.js";

const MAX_AGE_MS = 10 * 60 * 1000;
const MAX_STALE_MS = 60 * 60 * 1000;
const EMPTY_RETRY_MS = 1000;
const FETCH_TIMEOUT_MS = 5000;
const STALE_MS = FETCH_TIMEOUT_MS + 1000;
const JWKS_MAX_BYTES = 64 * 1024;
const B64URL = /^[A-Za-z0-9_-]*$/;
// Verified tokens, by their full text (a key of signature alone would let a forged payload ride a
// valid signature), until min(exp, TOKEN_CACHE_MS). Revocation is still checked on every request.
const TOKEN_CACHE_MS = 60 * 1000;
const TOKEN_CACHE_SIZE = 1000;
const decoder = new TextDecoder("utf-8", { fatal: true });

const parse = (data) => JSON.parse(decoder.decode(data));

async function fetchJson(url) {
  const response = await fetch(url, {
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error();
  return parse(await readCapped(response.body, JWKS_MAX_BYTES));
}

// RS*, PS*, ES*: the WebCrypto parameters for importing the JWK and verifying with it.
function algorithmOf(alg) {
  const bits = alg.slice(2);
  const hash = `SHA-${bits}`;
  return {
    R: { name: "RSASSA-PKCS1-v1_5", hash },
    P: { name: "RSA-PSS", hash, saltLength: bits / 8 },
    E: { name: "ECDSA", hash, namedCurve: bits === "512" ? "P-521" : `P-${bits}` },
  }[alg[0]];
}

function importKey({ kty, n, e, crv, x, y }, alg) {
  return crypto.subtle.importKey("jwk", { kty, n, e, crv, x, y }, algorithmOf(alg), false, ["verify"]).catch(() => {
    throw new GatewayError("token_key_unknown", "unusable key");
  });
}

export class KeySet {
  constructor(config) {
    this.config = config;
    this.cooldownMs = Math.max(1, config.jwks_refresh_cooldown_seconds ?? 30) * 1000;
    this.local = null;
    this.fetchedAt = 0;
    this.attemptedAt = -Infinity;
    this.pending = null;
  }

  async jwksUrl() {
    if (this.config.jwks_url) return this.config.jwks_url;
    if (!this.discovered) {
      const issuer = this.config.issuer.replace(/\/$/, "");
      const document = await fetchJson(`${issuer}/.well-known/openid-configuration`);
      if (document.issuer !== this.config.issuer || typeof document.jwks_uri !== "string") {
        throw new Error();
      }
      this.discovered = document.jwks_uri;
    }
    return this.discovered;
  }

  // A new set: its keys are imported now, while the request's other reads are still in flight.
  use(keys, fetchedAt) {
    this.local = keys;
    this.imported = new Map();
    this.fetchedAt = fetchedAt;
    for (const { kid, alg } of keys) {
      try {
        if (/^[RPE]S(256|384|512)$/.test(alg)) this.select({ kid, alg }).catch(() => {});
      } catch {}
    }
  }

  // Single flight. A request that awaits a fetch another request started waits at most STALE_MS
  // (that request may have been cancelled, and its I/O with it); after that a new fetch may start.
  refresh(kv) {
    const now = Date.now();
    if (!this.pending || now - this.attemptedAt > STALE_MS) {
      this.attemptedAt = now;
      const pending = (this.pending = this.load(kv).finally(() => {
        if (this.pending === pending) this.pending = null;
      }));
    }
    return within(this.pending, STALE_MS);
  }

  async load(kv) {
    try {
      const jwks = await fetchJson(await this.jwksUrl());
      if (!Array.isArray(jwks?.keys)) throw new Error();
      this.use(jwks.keys, Date.now());
      await kv
        ?.put(this.kvKey, JSON.stringify({ fetched_at: Math.floor(this.fetchedAt / 1000), keys: jwks }), {
          expirationTtl: MAX_STALE_MS / 1000,
        })
        .catch(() => {});
    } catch {
      // kept keys (if any) stay in use until MAX_STALE_MS; callers decide between 401 and 503
    }
  }

  async ensure(kv) {
    const now = Date.now();
    this.kvKey ??= "jwks:" + (await sha256hex(this.config.issuer)).slice(0, 16);
    if (!this.local && kv && !this.kvRead) {
      this.kvRead = true;
      const stored = await kv.get(this.kvKey, "json").catch(() => null);
      const at = stored?.fetched_at * 1000;
      if (Array.isArray(stored?.keys?.keys) && now - at < MAX_STALE_MS && !this.local) this.use(stored.keys.keys, at);
    }
    if (this.local && now - this.fetchedAt > MAX_STALE_MS) this.local = null;
    if (!this.local) {
      if (this.pending || now - this.attemptedAt >= EMPTY_RETRY_MS) await this.refresh(kv);
      if (!this.local) throw new GatewayError("keys_unavailable", "key set unreachable");
    } else if (now - this.fetchedAt > MAX_AGE_MS && now - this.attemptedAt >= this.cooldownMs) {
      await this.refresh(kv);
    }
  }

  // The one key that may have signed a token with this header: same kid (when the token names
  // one), a key type that fits the algorithm, meant for signatures. Imported keys are cached.
  select(header) {
    const kty = { R: "RSA", P: "RSA", E: "EC" }[header.alg[0]];
    const found = this.local.filter(
      (k) => (!header.kid || k.kid === header.kid) && k.kty === kty && (!k.use || k.use === "sig") && (!k.alg || k.alg === header.alg),
    );
    if (found.length !== 1) throw new GatewayError("token_key_unknown", "no single key matches");
    const cacheKey = `${found[0].kid}\n${header.alg}\n${found[0].n || found[0].x}`;
    if (!this.imported.has(cacheKey)) this.imported.set(cacheKey, importKey(found[0], header.alg));
    return this.imported.get(cacheKey);
  }

  async key(header, kv) {
    await this.ensure(kv);
    try {
      return await this.select(header);
    } catch (error) {
      if (error?.reason !== "token_key_unknown" || Date.now() - this.attemptedAt < this.cooldownMs) throw error;
      await this.refresh(kv);
      return this.select(header);
    }
  }
}

// RFC 7515 compact serialisation: header.payload.signature, each base64url without padding.
// Returns the payload bytes once the signature verifies with an allowed algorithm.
async function verifyJws(token, keys, algorithms, kv) {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((part) => B64URL.test(part))) throw new GatewayError("invalid_token", "malformed token");
  let header, signature, payload;
  try {
    header = parse(base64url(parts[0]));
    signature = base64url(parts[2]);
    payload = base64url(parts[1]);
  } catch {
    throw new GatewayError("invalid_token", "malformed token");
  }
  if (typeof header?.alg !== "string" || !algorithms.includes(header.alg)) throw new GatewayError("token_algorithm_not_allowed");
  if (header.crit !== undefined || header.b64 !== undefined) throw new GatewayError("invalid_token", "unsupported header");
  const key = await keys.key(header, kv);
  const data = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
  if (!(await crypto.subtle.verify(algorithmOf(header.alg), key, signature, data).catch(() => false))) {
    throw new GatewayError("token_signature_invalid");
  }
  return payload;
}

// The JWT claims checks: exp required, exp/nbf with leeway, exact issuer, one of the configured
// audiences.
export function checkClaims(payload, options, now = Date.now() / 1000) {
  let claims;
  try {
    claims = parse(payload);
  } catch {}
  if (!claims || typeof claims !== "object" || Array.isArray(claims)) throw new GatewayError("invalid_token", "payload not an object");
  const { exp, nbf, iss, aud } = claims;
  const leeway = options.leeway;
  if (exp === undefined) throw new GatewayError("token_missing_exp");
  if (typeof exp !== "number") throw new GatewayError("token_claims_invalid", "bad exp");
  if (exp <= now - leeway) throw new GatewayError("token_expired");
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > now + leeway)) throw new GatewayError("token_not_yet_valid");
  if (iss !== options.issuer) throw new GatewayError("token_issuer_mismatch");
  if (![].concat(aud).some((a) => typeof a === "string" && options.audience.includes(a))) {
    throw new GatewayError("token_audience_mismatch");
  }
  return claims;
}

function single(fields, name) {
  const value = fields.get(name);
  if (value == null) return null;
  // Headers joins repeated fields with ", "; a JWT never contains a comma.
  if (value.includes(",")) throw new GatewayError("duplicate_credential", `more than one ${name} header`);
  return value.trim();
}

function verifier(config, mode, credentialOf) {
  const keys = new KeySet(config);
  const options = {
    issuer: config.issuer,
    audience: [].concat(config.audience),
    leeway: Math.min(Math.max(config.leeway_seconds ?? 30, 0), 60),
  };
  const algorithms = config.algorithms?.length ? config.algorithms : ["RS256", "ES256"];
  const verified = new Map();
  async function verifyAndCache(token, now, kv) {
    const claims = checkClaims(await verifyJws(token, keys, algorithms, kv), options);
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

export function oidcVerifier(config) {
  return verifier(config, "oidc", (fields) => {
    const value = single(fields, "authorization");
    if (value == null) throw new GatewayError("missing_credential", "Authorization: Bearer required");
    const match = /^Bearer +([^ ]+)$/i.exec(value);
    if (!match) throw new GatewayError("invalid_token", "not a bearer token");
    return match[1];
  });
}

export function accessVerifier(config) {
  return verifier(config, "access", (fields) => {
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

// Verified claims → { subject, kind (person, oidc_client, service_token), ids (every identifier
// that can grant a role: the revocation list may name any of them), roles }. Only what the identity provider vouches for counts:
// - an email: always in an Access JWT (Access authenticated it); in OIDC only with
//   `email_verified: true` (OpenID Connect Core 1.0 §5.1);
// - an OIDC client id: only on a client-credentials token, which carries `client_id` equal to `sub`
//   (RFC 9068 §2.2: with no resource owner, `sub` identifies the client); a person's `sub` or a
//   token's `azp` never names a client;
// - an Access service token: its `common_name` (the client id Access verified), named by the stack.
// A token without a usable subject (no `sub`, no service-token client id) is refused (401).
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
