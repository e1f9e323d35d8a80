// Authentication: find the one credential of the gateway's mode, verify it with jose against the
// issuer's key set, and map the verified claims to roles.
//
// Key set: module scope, one fetch at a time (single flight). A token whose `kid` is not in the
// cached set triggers a refresh at most once per `jwks_refresh_cooldown_seconds`, so random kids
// cannot flood the IdP. A set older than MAX_AGE_MS is refreshed on use; if that fails the cached
// set is kept. Nothing cached and the IdP unreachable → 503 (fail closed); while nothing is cached,
// attempts are spaced at least EMPTY_RETRY_MS apart. Only `kid`/`alg` of a token's header choose a
// key: `jku`, `x5u`, `jwk` and `x5c` are never read.
import { compactVerify } from "jose";
import { GatewayError, within } from "./problem.js";

const MAX_AGE_MS = 10 * 60 * 1000;
const EMPTY_RETRY_MS = 1000;
const FETCH_TIMEOUT_MS = 5000;
const STALE_MS = FETCH_TIMEOUT_MS + 1000;

async function fetchJson(url) {
  const response = await fetch(url, {
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error();
  return response.json();
}

// A public JWK as a WebCrypto verification key for `alg` (RS*, PS*, ES*).
function importKey({ kty, n, e, crv, x, y }, alg) {
  const bits = alg.slice(2);
  const algorithm = {
    R: { name: "RSASSA-PKCS1-v1_5", hash: `SHA-${bits}` },
    P: { name: "RSA-PSS", hash: `SHA-${bits}` },
    E: { name: "ECDSA", namedCurve: bits === "512" ? "P-521" : `P-${bits}` },
  }[alg[0]];
  return crypto.subtle.importKey("jwk", { kty, n, e, crv, x, y }, algorithm, false, ["verify"]).catch(() => {
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

  // Single flight. A request that awaits a fetch another request started waits at most STALE_MS
  // (that request may have been cancelled, and its I/O with it); after that a new fetch may start.
  refresh() {
    const now = Date.now();
    if (!this.pending || now - this.attemptedAt > STALE_MS) {
      this.attemptedAt = now;
      const pending = (this.pending = this.load().finally(() => {
        if (this.pending === pending) this.pending = null;
      }));
    }
    return within(this.pending, STALE_MS);
  }

  async load() {
    try {
      const jwks = await fetchJson(await this.jwksUrl());
      if (!Array.isArray(jwks?.keys)) throw new Error();
      this.local = jwks.keys;
      this.imported = new Map();
      this.fetchedAt = Date.now();
    } catch {
      // kept keys (if any) stay in use; callers decide between 401 and 503
    }
  }

  async ensure() {
    const now = Date.now();
    if (!this.local) {
      if (this.pending || now - this.attemptedAt >= EMPTY_RETRY_MS) await this.refresh();
      if (!this.local) throw new GatewayError("keys_unavailable", "key set unreachable");
    } else if (now - this.fetchedAt > MAX_AGE_MS && now - this.attemptedAt >= this.cooldownMs) {
      await this.refresh();
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

  // jose calls this with the parsed protected header, after checking `alg` against the allow-list.
  key = async (header) => {
    await this.ensure();
    try {
      return await this.select(header);
    } catch (error) {
      if (error?.reason !== "token_key_unknown" || Date.now() - this.attemptedAt < this.cooldownMs) throw error;
      await this.refresh();
      return this.select(header);
    }
  };
}

function joseReason(error) {
  if (error instanceof GatewayError) return error;
  const code = error?.code;
  if (code === "ERR_JOSE_ALG_NOT_ALLOWED" || code === "ERR_JOSE_NOT_SUPPORTED") return new GatewayError("token_algorithm_not_allowed");
  if (code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") return new GatewayError("token_signature_invalid");
  return new GatewayError("invalid_token", "malformed token");
}

// The JWT claims checks (jose's compactVerify has checked the signature and algorithm; its
// jwtVerify would add 2 KiB of bundle for the same rules): exp required, exp/nbf with leeway,
// exact issuer, one of the configured audiences.
export function checkClaims(payload, options, now = Date.now() / 1000) {
  let claims;
  try {
    claims = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
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

function single(headers, name) {
  const value = headers.get(name);
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
  const algorithms = { algorithms: config.algorithms?.length ? config.algorithms : ["RS256", "ES256"] };
  return {
    mode,
    keys,
    async authenticate(request, limits) {
      const token = credentialOf(request.headers);
      if (token.length > limits.max_token_bytes) throw new GatewayError("token_too_large");
      let verified;
      try {
        verified = await compactVerify(token, keys.key, algorithms);
      } catch (error) {
        throw joseReason(error);
      }
      return checkClaims(verified.payload, options);
    },
  };
}

export function oidcVerifier(config) {
  return verifier(config, "oidc", (headers) => {
    const value = single(headers, "authorization");
    if (value == null) throw new GatewayError("missing_credential", "Authorization: Bearer required");
    const match = /^Bearer +([^ ]+)$/i.exec(value);
    if (!match) throw new GatewayError("invalid_token", "not a bearer token");
    return match[1];
  });
}

export function accessVerifier(config) {
  return verifier(config, "access", (headers) => {
    const value = single(headers, "cf-access-jwt-assertion");
    if (!value) {
      const detail = headers.has("cf-access-client-id")
        ? "service-token headers without an Access JWT"
        : "Cf-Access-Jwt-Assertion required";
      throw new GatewayError("missing_credential", detail);
    }
    return value;
  });
}

function values(claim) {
  if (typeof claim === "string") return [claim];
  return Array.isArray(claim) ? claim.filter((v) => typeof v === "string") : [];
}

// Verified claims → { subject, ids (every name the revocation list may use), roles }.
export function identify(claims, mode, policy, identityConfig, accessClients) {
  const groups = values(claims[identityConfig.roles_claim || "groups"]);
  const email = typeof claims.email === "string" ? claims.email.toLowerCase() : null;
  const clients = [];
  let tokenName = null;
  if (mode === "access") {
    if (claims.common_name) tokenName = accessClients[claims.common_name] || null;
  } else {
    for (const key of ["sub", "client_id", "azp"]) if (typeof claims[key] === "string") clients.push(claims[key]);
  }
  const roles = [];
  for (const [name, role] of Object.entries(policy.roles)) {
    if (
      groups.some((g) => role.groups.includes(g)) ||
      (email && role.emails.includes(email)) ||
      (tokenName && role.service_tokens.includes(tokenName)) ||
      clients.some((c) => role.oidc_clients.includes(c))
    ) {
      roles.push(name);
    }
  }
  const subject =
    tokenName || (claims.sub ? String(claims.sub) : null) || email || claims.common_name || claims.client_id || "unknown";
  const ids = [subject, claims.sub, email, claims.common_name, tokenName, claims.client_id].filter(Boolean);
  return { subject, ids, roles: roles.sort() };
}
