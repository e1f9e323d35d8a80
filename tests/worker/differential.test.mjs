// The gateway's token verdict against jose's, as a fast-check property: at least 500 tokens per
// run, valid and mutated (header, claims, signature, key set). Under the same options (algorithm
// allow-list, issuer, audience, leeway, exp required) the gateway must never accept what jose
// refuses, and refuses what jose accepts only where one of its stricter pre-checks (EXCLUSIONS)
// applies. The gateway side is the Worker's own code: KeySet (the set checked whole) and verifyJwt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign, constants } from "node:crypto";
import fc from "fast-check";
import { jwtVerify, createLocalJWKSet } from "jose";
import { KeySet } from "../../worker_templates/lib/keyset.js";
import { verifyJwt } from "../../worker_templates/lib/jwt.js";
import { identityOptions } from "../../worker_templates/lib/identity.js";

const ISSUER = "https://idp.example";
const AUDIENCE = "https://api.example";
const IDENTITY = {
  issuer: ISSUER,
  jwks_url: `${ISSUER}/jwks`,
  audience: [AUDIENCE],
  leeway_seconds: 30,
  algorithms: ["RS256", "ES256"],
  accepted_token_types: ["at+jwt"],
  jwks_refresh_cooldown_seconds: 30,
};
const RUNS = 600;

// Where the gateway is stricter than jose, on purpose (the only cases where jose may accept and
// the gateway refuse). Each names the check and when it applies to a generated case.
const EXCLUSIONS = [
  ["a part that is not canonical base64url (unused bits set)", (c) => c.signature === "noncanonical"],
  ["a `crit` header (RFC 7515 §4.1.11)", (c) => c.extraHeader === "crit"],
  ["a `b64` header (RFC 7797)", (c) => c.extraHeader === "b64"],
  ["a `typ` the stack does not accept", (c) => !["at+jwt", "application/at+jwt", "AT+JWT"].includes(c.typ)],
  ["claims that give away an ID or logout token", (c) => ["nonce", "at_hash", "events", "token_use_id"].includes(c.purpose)],
  ["a `kid` that is not a non-empty string", (c) => ["", 0, null, false].includes(c.kid)],
  ["a key set with an invalid entry, rejected whole", (c) => ["null", "weak_rsa", "empty_kid", "private", "crv_mismatch", "oct"].includes(c.jwks)],
];

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const weak = generateKeyPairSync("rsa", { modulusLength: 1024 });
const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = (pair, extra) => ({ ...pair.publicKey.export({ format: "jwk" }), ...extra });
const RSA_JWK = jwk(rsa, { kid: "rsa-1", alg: "RS256", use: "sig" });
const EC_JWK = jwk(ec, { kid: "ec-1", alg: "ES256", use: "sig" });

const JWKS = {
  good: () => [RSA_JWK, EC_JWK],
  null: () => [RSA_JWK, EC_JWK, null],
  weak_rsa: () => [RSA_JWK, EC_JWK, jwk(weak, { kid: "weak", alg: "RS256" })],
  empty_kid: () => [RSA_JWK, EC_JWK, jwk(other, { kid: "" })],
  private: () => [RSA_JWK, EC_JWK, { ...jwk(other, { kid: "p" }), d: other.privateKey.export({ format: "jwk" }).d }],
  crv_mismatch: () => [RSA_JWK, EC_JWK, { ...EC_JWK, kid: "ec-odd", alg: "ES384" }],
  oct: () => [RSA_JWK, EC_JWK, { kty: "oct", k: "c2VjcmV0", kid: "hmac" }],
  no_signing_key: () => [jwk(other, { kid: "rsa-1", alg: "RS256" }), EC_JWK],
  verify_only_ops: () => [{ ...RSA_JWK, use: undefined, key_ops: ["verify"] }, EC_JWK],
  encrypt_use: () => [{ ...RSA_JWK, use: "enc" }, EC_JWK],
  sign_ops: () => [{ ...RSA_JWK, use: undefined, key_ops: ["sign"] }, EC_JWK],
  duplicate_no_kid: () => [{ ...RSA_JWK, kid: undefined }, { ...jwk(other, { alg: "RS256" }) }, EC_JWK],
};

const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

function signature(alg, data) {
  if (alg === "RS256") return sign("sha256", data, rsa.privateKey);
  if (alg === "PS256") return sign("sha256", data, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  if (alg === "ES256") return sign("sha256", data, { key: ec.privateKey, dsaEncoding: "ieee-p1363" });
  return Buffer.alloc(0); // "none", "HS256": no key of ours signs them
}

const now = () => Math.floor(Date.now() / 1000);
const choice = (values) => fc.constantFrom(...values);
const MISSING = Symbol("missing");
// Each field: a valid value most of the time, a mutation otherwise, so about a third of the
// tokens are wholly valid and the rest carry one or more mutations.
const field = (valid, mutated) => fc.oneof({ arbitrary: choice(valid), weight: 12 }, { arbitrary: choice(mutated), weight: 1 });
const caseArbitrary = fc.record({
  alg: field(["RS256", "ES256"], ["PS256", "none", "HS256"]),
  kid: field(["match", MISSING], ["unknown", "", 0, null, false]),
  typ: field(["at+jwt", "application/at+jwt", "AT+JWT"], ["JWT", MISSING, "logout+jwt"]),
  extraHeader: field([MISSING, "jku", "jwk"], ["crit", "b64"]),
  iss: field(["ok"], ["other", MISSING, 1]),
  aud: field(["ok", "list"], ["other", "empty", MISSING, 5]),
  exp: field(["future", "leeway"], ["past", MISSING, "text"]),
  nbf: field([MISSING, "past", "soon"], ["later", "text"]),
  iat: field(["now", MISSING], ["text", null]),
  purpose: field([MISSING, "token_use_access"], ["nonce", "at_hash", "events", "token_use_id"]),
  signature: field(["ok"], ["flipped", "truncated", "noncanonical", "empty"]),
  jwks: field(["good", "verify_only_ops"], Object.keys(JWKS).filter((name) => !["good", "verify_only_ops"].includes(name))),
});

function tokenFor(c) {
  const t = now();
  const header = { alg: c.alg };
  if (c.kid === "match") header.kid = c.alg === "ES256" ? "ec-1" : "rsa-1";
  else if (c.kid !== MISSING) header.kid = c.kid;
  if (c.typ !== MISSING) header.typ = c.typ;
  if (c.extraHeader === "crit") Object.assign(header, { crit: ["exp"], exp: 1 });
  if (c.extraHeader === "b64") Object.assign(header, { b64: true, crit: undefined });
  if (c.extraHeader === "jku") header.jku = "https://evil.example/jwks";
  if (c.extraHeader === "jwk") header.jwk = jwk(other, {});
  const claims = { sub: "client", client_id: "client" };
  if (c.iss !== MISSING) claims.iss = c.iss === "ok" ? ISSUER : c.iss === "other" ? "https://evil.example" : c.iss;
  const aud = { ok: AUDIENCE, list: ["x", AUDIENCE], other: "https://other.example", empty: [], 5: 5 }[c.aud];
  if (c.aud !== MISSING) claims.aud = aud;
  const exp = { future: t + 300, leeway: t - 10, past: t - 100, text: "soon" }[c.exp];
  if (c.exp !== MISSING) claims.exp = exp;
  if (c.nbf !== MISSING) claims.nbf = { past: t - 100, soon: t + 10, later: t + 100, text: "x" }[c.nbf];
  if (c.iat !== MISSING) claims.iat = c.iat === "now" ? t : c.iat;
  if (c.purpose === "nonce") claims.nonce = "n";
  if (c.purpose === "at_hash") claims.at_hash = "h";
  if (c.purpose === "events") claims.events = { "http://schemas.openid.net/event/backchannel-logout": {} };
  if (c.purpose === "token_use_id") claims.token_use = "id";
  if (c.purpose === "token_use_access") claims.token_use = "access";
  const input = `${b64(header)}.${b64(claims)}`;
  let sig = signature(c.alg, Buffer.from(input)).toString("base64url");
  if (c.signature === "flipped" && sig) sig = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
  if (c.signature === "truncated") sig = sig.slice(0, -4);
  if (c.signature === "empty") sig = "";
  if (c.signature === "noncanonical" && sig) {
    // Set the unused low bits of the last character: the same bytes in another spelling.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(sig.at(-1));
    const spare = sig.length % 4 === 2 ? 15 : sig.length % 4 === 3 ? 3 : 0;
    if (spare) sig = sig.slice(0, -1) + alphabet[last | spare];
  }
  return `${input}.${sig}`;
}

async function gatewayVerdict(token, keys) {
  const set = new KeySet(IDENTITY, undefined);
  try {
    set.use({ keys }, Date.now());
  } catch {
    return false; // rejected whole
  }
  set.attemptedAt = Date.now(); // fetched just now: no refresh (and no network) in this test
  try {
    await verifyJwt(token, set.getter(null), identityOptions(IDENTITY));
    return true;
  } catch (error) {
    assert.equal(typeof error.reason, "string", `a GatewayError, not ${error}`);
    assert.ok(error.status === 401, `refusals are 401 here, got ${error.reason}`);
    return false;
  }
}

async function joseVerdict(token, keys) {
  try {
    await jwtVerify(token, createLocalJWKSet({ keys }), {
      algorithms: IDENTITY.algorithms,
      issuer: ISSUER,
      audience: IDENTITY.audience,
      clockTolerance: IDENTITY.leeway_seconds,
      requiredClaims: ["exp"],
    });
    return true;
  } catch {
    return false;
  }
}

test(`the gateway's verdict equals jose's (${RUNS} tokens), except where a listed pre-check is stricter`, async (t) => {
  const seen = { both: 0, neither: 0, excluded: new Map() };
  await fc.assert(
    fc.asyncProperty(caseArbitrary, async (c) => {
      const token = tokenFor(c);
      const keys = JWKS[c.jwks]();
      const ours = await gatewayVerdict(token, keys);
      const theirs = await joseVerdict(token, keys);
      assert.ok(!ours || theirs, `the gateway accepted what jose refuses: ${JSON.stringify(c)}`);
      if (ours === theirs) {
        seen[ours ? "both" : "neither"]++;
        return;
      }
      const reasons = EXCLUSIONS.filter(([, applies]) => applies(c)).map(([name]) => name);
      assert.ok(reasons.length, `jose accepts, the gateway refuses, and no listed exclusion applies: ${JSON.stringify(c)}`);
      for (const reason of reasons) seen.excluded.set(reason, (seen.excluded.get(reason) || 0) + 1);
    }),
    { numRuns: RUNS },
  );
  t.diagnostic(`both accepted ${seen.both}, both refused ${seen.neither}; excluded: ${JSON.stringify(Object.fromEntries(seen.excluded))}`);
  // The generator must reach both verdicts, or the property proves nothing.
  assert.ok(seen.both > 20, `only ${seen.both} tokens both accepted`);
  assert.ok(seen.neither > 100, `only ${seen.neither} tokens both refused`);
  assert.ok(seen.excluded.size >= 4, `exclusions exercised: ${[...seen.excluded.keys()].join("; ")}`);
});
