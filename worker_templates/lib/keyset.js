// The identity provider's key set: fetched, checked whole, kept in module scope and (authenticated)
// in KV, and handed to jose as a local JWKS.
//
// Fetches: discovery, then the JWKS, never following a redirect (`redirect: "manual"`: a 3xx is a
// failed fetch), one at a time (single flight), the body capped at JWKS_MAX_BYTES.
// A set is used only if every entry passes `checkKeySet`: one bad entry (a null, a 1024-bit RSA
// key, a private member, a `kid` that is not a non-empty string, a curve that does not fit its
// `alg`) rejects the whole set, and the previous set stays in use (or, with none, 503).
// KV copy (`jwks:<sha256(issuer)[:16]>` in the POLICY namespace): {v: 2, fetched_at, jwks, mac},
// `mac` an HMAC-SHA256 under the Worker secret JWKS_KV_MAC_KEY (made by the deploy, known to no one
// else) over the issuer, `fetched_at` and the set's exact text. Whoever can write the namespace
// cannot plant a key without that secret. Without the secret bound the copy is neither read nor
// written. A copy with a `fetched_at` in the future (beyond FUTURE_SKEW_S) is refused.
// Freshness: a set older than MAX_AGE_MS is refreshed on use; if that fails it is kept, but never
// past MAX_STALE_MS after it was fetched (503 after that). A token naming a key the set lacks
// triggers a refresh at most once per `jwks_refresh_cooldown_seconds`. Nothing cached and the IdP
// unreachable: attempts are spaced at least EMPTY_RETRY_MS apart.
import { createLocalJWKSet } from "jose";
import { GatewayError, within, readCapped, sha256hex, base64url } from "./problem.js";

const MAX_AGE_MS = 10 * 60 * 1000;
const MAX_STALE_MS = 60 * 60 * 1000;
const EMPTY_RETRY_MS = 1000;
const FETCH_TIMEOUT_MS = 5000;
const STALE_MS = FETCH_TIMEOUT_MS + 1000;
const JWKS_MAX_BYTES = 64 * 1024;
const MAX_KEYS = 64;
const FUTURE_SKEW_S = 5;
const MAC_MIN_BYTES = 32;
const KV_FORMAT = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

// RFC 7515 §2 / RFC 4648 §5: unpadded base64url, and canonical (the unused bits of the last
// character zero), so one value has one spelling.
const B64URL = /^[A-Za-z0-9_-]*$/;
const LAST_OF_2 = /[AQgw]$/;
const LAST_OF_3 = /[AEIMQUYcgkosw048]$/;
export function canonicalBase64url(text) {
  if (typeof text !== "string" || !B64URL.test(text)) return false;
  const rest = text.length % 4;
  return rest === 0 || (rest === 2 && LAST_OF_2.test(text)) || (rest === 3 && LAST_OF_3.test(text));
}

const CURVES = { "P-256": [32, "ES256"], "P-384": [48, "ES384"], "P-521": [66, "ES512"] };
const PRIVATE = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const nonEmpty = (value) => typeof value === "string" && value.length > 0;
const optional = (value, check) => value === undefined || check(value);

function rsaBits(n) {
  const bytes = base64url(n);
  if (!bytes.length || bytes[0] === 0) return 0;
  return (bytes.length - 1) * 8 + (32 - Math.clz32(bytes[0]));
}

// Why one entry is unusable, or null. Well-formed keys of kinds the gateway never selects (OKP, an
// encryption key) are fine: jose skips them.
function entryProblem(key) {
  if (!key || typeof key !== "object" || Array.isArray(key)) return "not an object";
  const { kty, kid, use, alg, crv } = key;
  if (!optional(kid, nonEmpty)) return "kid is not a non-empty string";
  if (!optional(use, nonEmpty) || !optional(alg, nonEmpty)) return "use/alg not a string";
  if (!optional(key.ext, (v) => typeof v === "boolean")) return "ext not a boolean";
  const ops = key.key_ops;
  if (!optional(ops, (v) => Array.isArray(v) && v.every(nonEmpty) && new Set(v).size === v.length)) return "bad key_ops";
  if (PRIVATE.some((member) => key[member] !== undefined)) return "private or secret key material";
  if (kty === "RSA") {
    if (!canonicalBase64url(key.n) || !canonicalBase64url(key.e) || !key.e) return "bad RSA members";
    if (rsaBits(key.n) < 2048) return "RSA key under 2048 bits";
    if (alg !== undefined && !/^(RS|PS)(256|384|512)$/.test(alg)) return "alg does not fit an RSA key";
    return null;
  }
  if (kty === "EC") {
    const curve = CURVES[crv];
    if (!curve) return "unknown curve";
    if (!canonicalBase64url(key.x) || !canonicalBase64url(key.y)) return "bad EC members";
    if (base64url(key.x).length !== curve[0] || base64url(key.y).length !== curve[0]) return "bad EC coordinates";
    if (alg !== undefined && alg !== curve[1]) return "crv does not match alg";
    return null;
  }
  if (kty === "OKP") return nonEmpty(crv) && canonicalBase64url(key.x) ? null : "bad OKP members";
  return "unsupported kty";
}

/** The set's keys if every entry is usable; otherwise throws (the caller keeps its previous set). */
export function checkKeySet(jwks) {
  if (!jwks || typeof jwks !== "object" || !Array.isArray(jwks.keys)) throw new Error("not a key set");
  if (!jwks.keys.length || jwks.keys.length > MAX_KEYS) throw new Error("empty or too many keys");
  for (const key of jwks.keys) {
    const problem = entryProblem(key);
    if (problem) throw new Error(problem);
  }
  return jwks.keys;
}

// The algorithm a key will verify with when it names none (for importing it ahead of use).
const defaultAlg = (key) => key.alg || (key.kty === "RSA" ? "RS256" : CURVES[key.crv]?.[1]);

async function fetchText(url) {
  const response = await fetch(url, {
    headers: { accept: "application/json" },
    redirect: "manual",
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (response.status !== 200) {
    response.body?.cancel().catch(() => {});
    throw new Error(`status ${response.status}`);
  }
  return decoder.decode(await readCapped(response.body, JWKS_MAX_BYTES));
}

async function macKeyOf(secret) {
  if (typeof secret !== "string" || encoder.encode(secret).length < MAC_MIN_BYTES) return null;
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

const macInput = (issuer, fetchedAt, text) => encoder.encode(`airgate-jwks/${KV_FORMAT}\n${issuer}\n${fetchedAt}\n${text}`);
const toB64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

export class KeySet {
  constructor(config, macSecret) {
    this.config = config;
    this.cooldownMs = config.jwks_refresh_cooldown_seconds * 1000;
    this.algorithms = config.algorithms;
    this.macKey = macKeyOf(macSecret).catch(() => null);
    this.local = null; // the checked keys in use
    this.jwks = null; // jose's local JWKS over them
    this.fetchedAt = 0;
    this.attemptedAt = -Infinity;
    this.pending = null;
  }

  async jwksUrl() {
    if (this.config.jwks_url) return this.config.jwks_url;
    if (!this.discovered) {
      const issuer = this.config.issuer.replace(/\/$/, "");
      const document = JSON.parse(await fetchText(`${issuer}/.well-known/openid-configuration`));
      if (document?.issuer !== this.config.issuer || !nonEmpty(document.jwks_uri)) throw new Error("bad discovery");
      this.discovered = document.jwks_uri;
    }
    return this.discovered;
  }

  // A checked set (throws, leaving the current one, if any entry is bad). Its keys are imported
  // now, while the request's other reads are still in flight.
  use(jwks, fetchedAt) {
    const keys = checkKeySet(jwks);
    this.local = keys;
    this.jwks = createLocalJWKSet({ keys });
    this.fetchedAt = fetchedAt;
    for (const key of keys) {
      const alg = defaultAlg(key);
      if (this.algorithms.includes(alg)) this.jwks({ alg, kid: key.kid }).catch(() => {});
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
    let text;
    try {
      text = await fetchText(await this.jwksUrl());
      this.use(JSON.parse(text), Date.now());
    } catch {
      return; // kept keys (if any) stay in use until MAX_STALE_MS; callers decide between 401 and 503
    }
    const key = await this.macKey;
    if (!kv || !key) return;
    const fetchedAt = Math.floor(this.fetchedAt / 1000);
    try {
      const mac = toB64url(await crypto.subtle.sign("HMAC", key, macInput(this.config.issuer, fetchedAt, text)));
      await kv.put(this.kvKey, JSON.stringify({ v: KV_FORMAT, fetched_at: fetchedAt, jwks: text, mac }), {
        expirationTtl: MAX_STALE_MS / 1000,
      });
    } catch {}
  }

  // The KV copy, if it is authentic, not from the future, not too old and wholly valid.
  async readCopy(kv, now) {
    const key = await this.macKey;
    if (!key) return;
    const stored = await kv.get(this.kvKey, "json").catch(() => null);
    const { v, fetched_at: at, jwks, mac } = stored && typeof stored === "object" ? stored : {};
    if (v !== KV_FORMAT || !Number.isSafeInteger(at) || typeof jwks !== "string" || !canonicalBase64url(mac)) return;
    if (at > now / 1000 + FUTURE_SKEW_S || now - at * 1000 >= MAX_STALE_MS) return;
    const authentic = await crypto.subtle.verify("HMAC", key, base64url(mac), macInput(this.config.issuer, at, jwks));
    if (!authentic || this.local) return;
    try {
      this.use(JSON.parse(jwks), at * 1000);
    } catch {}
  }

  async ensure(kv) {
    const now = Date.now();
    this.kvKey ??= "jwks:" + (await sha256hex(this.config.issuer)).slice(0, 16);
    if (!this.local && kv && !this.kvRead) {
      this.kvRead = true;
      await this.readCopy(kv, now).catch(() => {});
    }
    if (this.local && now - this.fetchedAt > MAX_STALE_MS) [this.local, this.jwks] = [null, null];
    if (!this.local) {
      if (this.pending || now - this.attemptedAt >= EMPTY_RETRY_MS) await this.refresh(kv);
      if (!this.local) throw new GatewayError("keys_unavailable", "key set unreachable");
    } else if (now - this.fetchedAt > MAX_AGE_MS && now - this.attemptedAt >= this.cooldownMs) {
      await this.refresh(kv);
    }
  }

  // jose's key lookup (a JWTVerifyGetKey): the one key the set has for this header, refreshing
  // the set once (within the cooldown) when it has none.
  getter(kv) {
    return async (header, token) => {
      await this.ensure(kv);
      try {
        return await this.jwks(header, token);
      } catch (error) {
        if (error?.code !== "ERR_JWKS_NO_MATCHING_KEY" || Date.now() - this.attemptedAt < this.cooldownMs) throw error;
        await this.refresh(kv);
        return this.jwks(header, token);
      }
    };
  }
}
