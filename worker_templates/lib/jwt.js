// A bearer JWT's verdict: our cheap pre-checks, then jose's jwtVerify over the key set.
//
// The pre-checks refuse, before any signature work, what jose would let through or what is not
// ours to accept (tests/worker/differential.test.mjs lists each against jose):
// - the compact form with three canonical base64url parts (one spelling per token);
// - a header that is a JSON object, with no `crit` or `b64` (RFC 7515 §4.1.11, RFC 7797: extensions
//   the gateway does not implement), an allowed `alg`, and a `kid` that, when present, is a
//   non-empty string;
// - the token's purpose (RFC 8725 §3.11, RFC 9068 §4): its `typ` must be one the stack accepts
//   (`accepted_token_types`: "at+jwt", "jwt" or "untyped"), and no claim may give away an ID token
//   (`nonce`, `at_hash`, `c_hash`, `s_hash`), a logout token or other security event (`events`),
//   or another purpose (`token_use` other than "access");
// - a payload that is a JSON object with a numeric `exp`.
// jose then checks the signature with the one key the set has for the header, the algorithm
// allow-list, `iss`, `aud`, `exp`/`nbf` with the leeway, and the types of `iat`/`nbf`/`exp`.
import { jwtVerify } from "jose";
import { GatewayError, base64url } from "./problem.js";
import { canonicalBase64url } from "./keyset.js";

const decoder = new TextDecoder("utf-8", { fatal: true });
export const TOKEN_TYPES = ["at+jwt", "jwt", "untyped"];
const ID_TOKEN_CLAIMS = ["nonce", "at_hash", "c_hash", "s_hash", "events"];

function object(part) {
  let value;
  try {
    value = JSON.parse(decoder.decode(base64url(part)));
  } catch {}
  return value && typeof value === "object" && !Array.isArray(value) ? value : null;
}

// RFC 7515 §4.1.9: compared case-insensitively, the "application/" prefix optional.
function typeOf(typ) {
  if (typ === undefined) return "untyped";
  if (typeof typ !== "string") return null;
  const lower = typ.toLowerCase();
  const bare = lower.startsWith("application/") ? lower.slice("application/".length) : lower;
  return bare === "at+jwt" || bare === "jwt" ? bare : null;
}

/** Our checks on the unverified token; throws the refusal. */
export function preCheck(token, options) {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every(canonicalBase64url)) throw new GatewayError("invalid_token", "malformed token");
  const header = object(parts[0]);
  const claims = object(parts[1]);
  if (!header || !claims) throw new GatewayError("invalid_token", "malformed token");
  if (header.crit !== undefined || header.b64 !== undefined) throw new GatewayError("invalid_token", "unsupported header");
  if (typeof header.alg !== "string" || !options.algorithms.includes(header.alg)) throw new GatewayError("token_algorithm_not_allowed");
  if (header.kid !== undefined && (typeof header.kid !== "string" || !header.kid)) throw new GatewayError("invalid_token", "kid is not a non-empty string");
  const kind = typeOf(header.typ);
  if (!kind || !options.accepted.includes(kind)) throw new GatewayError("token_purpose_mismatch", `typ ${JSON.stringify(header.typ)}`);
  const giveaway = ID_TOKEN_CLAIMS.find((name) => claims[name] !== undefined);
  if (giveaway) throw new GatewayError("token_purpose_mismatch", `${giveaway} claim`);
  if (claims.token_use !== undefined && claims.token_use !== "access") throw new GatewayError("token_purpose_mismatch", "token_use");
  if (claims.exp === undefined) throw new GatewayError("token_missing_exp");
  if (typeof claims.exp !== "number") throw new GatewayError("token_claims_invalid", "bad exp");
}

const CLAIM_REASONS = { iss: "token_issuer_mismatch", aud: "token_audience_mismatch", nbf: "token_not_yet_valid", exp: "token_missing_exp" };

// jose's error codes → the decision line's reasons (the caller sees 401 invalid_token for all).
function reasonOf(error) {
  switch (error?.code) {
    case "ERR_JWT_EXPIRED":
      return "token_expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return CLAIM_REASONS[error.claim] ?? "token_claims_invalid";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "token_signature_invalid";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "token_algorithm_not_allowed";
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
    case "ERR_JWKS_INVALID":
    case "ERR_JOSE_NOT_SUPPORTED":
      return "token_key_unknown";
    default:
      // A key jose will not use (an RSA key under 2048 bits throws a TypeError) or anything else.
      return "invalid_token";
  }
}

/** The verified claims, or throws a GatewayError. `getKey` is jose's key lookup (KeySet.getter). */
export async function verifyJwt(token, getKey, options) {
  preCheck(token, options);
  try {
    const { payload } = await jwtVerify(token, getKey, {
      algorithms: options.algorithms,
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: options.leeway,
      requiredClaims: ["exp"],
    });
    return payload;
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError(reasonOf(error), error?.code);
  }
}
