// Refusals as RFC 9457 problem documents, and the one error type the gateway's steps throw.
// Each reason names one cause; its status and whether a retry can help are fixed here, so the
// decision log and the caller see the same words.

// reason → status; a retry can help exactly for 429 and 5xx. The title is the reason in words.
const REASONS = {
  invalid_path: 400,
  invalid_method: 400,
  invalid_request: 400,
  override_refused: 400,
  credential_in_query: 400,
  ambiguous_body_length: 400,
  missing_credential: 401,
  duplicate_credential: 401,
  invalid_token: 401,
  token_algorithm_not_allowed: 401,
  token_signature_invalid: 401,
  token_key_unknown: 401,
  token_expired: 401,
  token_not_yet_valid: 401,
  token_missing_exp: 401,
  token_issuer_mismatch: 401,
  token_audience_mismatch: 401,
  token_claims_invalid: 401,
  token_purpose_mismatch: 401,
  token_subject_missing: 401,
  subject_revoked: 403,
  no_role: 403,
  role_not_allowed: 403,
  method_not_allowed: 405,
  dag_not_granted: 403,
  run_not_owned: 403,
  no_route: 404,
  idempotency_key_reused: 422,
  body_too_large: 413,
  expectation_failed: 417,
  invalid_body: 422,
  conf_schema_violation: 422,
  conf_number_unsafe: 422,
  rate_limited: 429,
  headers_too_large: 431,
  token_too_large: 431,
  upstream_unreachable: 502,
  upstream_credential_unavailable: 502,
  policy_unavailable: 503,
  control_unavailable: 503,
  keys_unavailable: 503,
  durable_object_unavailable: 503,
  idempotency_in_progress: 503,
  config_invalid: 503,
  upstream_timeout: 504,
  internal_error: 500,
};

function title(reason) {
  const words = reason.replace(/_/g, " ");
  return words[0].toUpperCase() + words.slice(1);
}

export class GatewayError extends Error {
  constructor(reason, detail, extra) {
    super(detail || reason);
    this.reason = REASONS[reason] ? reason : "internal_error";
    this.detail = detail || title(this.reason);
    this.extra = extra || {};
  }
  get status() {
    return REASONS[this.reason];
  }
}

// Every 401 shows the caller one reason, RFC 6750 §3.1 `invalid_token`: which check failed (issuer,
// signature, key…) would help a forger, so the precise reason goes only to the decision line.
export function problem(error, requestId) {
  const status = error.status;
  const reason = status === 401 ? "invalid_token" : error.reason;
  const body = {
    type: `urn:airgate:problem:${reason}`,
    title: title(reason),
    status,
    detail: status === 401 ? "A valid bearer credential is required" : error.detail,
    request_id: requestId,
    retryable: status >= 500 || status === 429,
  };
  const headers = { "content-type": "application/problem+json", "cache-control": "no-store", "x-request-id": requestId };
  if (error.extra.retryAfter != null) headers["retry-after"] = String(error.extra.retryAfter);
  if (error.extra.allow) headers.allow = error.extra.allow;
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="airgate", error="invalid_token"';
  return new Response(JSON.stringify(body), { status, headers });
}

// Waits for `promise` at most `ms`: a single-flight fetch started by another request may never settle.
export const within = (promise, ms) => Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms))]);
const hex = (bytes) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
// Reads a stream into one buffer, refusing (GatewayError `reason`) as soon as it passes `max` bytes:
// never more than `max` bytes are held, whatever a Content-Length said.
export async function readCapped(stream, max, reason = "body_too_large") {
  const chunks = [];
  let size = 0;
  if (stream) {
    const reader = stream.getReader();
    for (let part; !(part = await reader.read()).done; chunks.push(part.value)) {
      if ((size += part.value.byteLength) > max) {
        reader.cancel().catch(() => {});
        throw new GatewayError(reason, `more than ${max} bytes`);
      }
    }
  }
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}
// Base64url (RFC 4648 §5, unpadded) → bytes: the JWS parts (identity.js) and the Airflow login token.
export const base64url = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
export const sha256hex = async (text) => hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
