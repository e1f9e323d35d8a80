// The DAG trigger gateway's upstream step: POST /dags/{dag_id}/runs {conf} → Airflow
// POST /api/v2/dags/{dag_id}/dagRuns {"dag_run_id", "logical_date": null, conf, note}, and GET of one run.
// The run's `note` is the gateway's, never the caller's (a body with `note` is refused): it names
// the verified subject, its kind, the gateway and the request id, so Airflow's own record says who
// asked for the run and leads to the decision line (README: "Who triggered a run").
// The caller's role must hold a grant for the dag_id (checked before any rate-limit token is
// spent); a grant may pin a JSON schema for conf. Runs belong to their caller: the gateway names
// each run `airgate__<sha256(subject)[:16]>__<suffix>`, and a run read needs that prefix or a grant
// with `read_others_runs`. With an Idempotency-Key the suffix derives from (subject, dag, key), so
// even a lost in-flight marker cannot start a second run: Airflow refuses a run id twice (409: the
// (dag_id, run_id) unique constraint, airflow/api_fastapi/common/exceptions.py
// `_UniqueConstraintErrorHandler`; run ids match its default `allowed_run_id_pattern`).
// The Airflow credential is UPSTREAM_CREDENTIAL (a static bearer token) or, if that is not bound,
// a JWT from Airflow's POST /auth/token with AIRFLOW_USERNAME / AIRFLOW_PASSWORD, cached in module
// scope until 60 s before it expires (one fetch at a time, dropped after a 401).
import { GatewayError, sha256hex, within, base64url } from "./problem.js";
import { validate } from "./schema.js";
import { callUpstream, forwardHeaders } from "./proxy.js";

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
let airflowToken = null; // {value, until}
let tokenPending = null; // {promise, at}

// Airflow's API sits behind Access on the tunnel: every call presents the Worker's own service token.
function viaTunnel(env, headers) {
  if (env.UPSTREAM_ACCESS_CLIENT_ID) {
    headers["cf-access-client-id"] = env.UPSTREAM_ACCESS_CLIENT_ID;
    headers["cf-access-client-secret"] = env.UPSTREAM_ACCESS_CLIENT_SECRET || "";
  }
  return headers;
}

function expiryOf(jwt) {
  try {
    const exp = JSON.parse(new TextDecoder().decode(base64url(jwt.split(".")[1]))).exp;
    if (typeof exp === "number") return exp * 1000;
  } catch {}
  return Date.now() + 10 * 60 * 1000;
}

async function airflowCredential(ctx, fresh) {
  const { env, config } = ctx;
  if (env.UPSTREAM_CREDENTIAL) return `Bearer ${env.UPSTREAM_CREDENTIAL}`;
  if (!env.AIRFLOW_USERNAME || !env.AIRFLOW_PASSWORD) {
    throw new GatewayError("config_invalid", "no Airflow credential");
  }
  if (fresh) airflowToken = null;
  if (airflowToken && Date.now() < airflowToken.until) return `Bearer ${airflowToken.value}`;
  // Single flight, as for the key set: a login started by another request is awaited at most
  // timeout + 1 s, after which a new one may start.
  const now = Date.now();
  if (!tokenPending || now - tokenPending.at > ctx.timeoutMs + 1000) {
    const pending = (async () => {
      const answer = await callUpstream(
        `${config.base}/auth/token`,
        {
          method: "POST",
          headers: viaTunnel(env, { "content-type": "application/json" }),
          body: JSON.stringify({ username: env.AIRFLOW_USERNAME, password: env.AIRFLOW_PASSWORD }),
        },
        ctx.timeoutMs,
      );
      const body = answer.ok ? await answer.json().catch(() => null) : null;
      if (!body?.access_token) throw new GatewayError("upstream_credential_unavailable", `login: ${answer.status}`);
      airflowToken = { value: body.access_token, until: expiryOf(body.access_token) - 60_000 };
    })().finally(() => {
      if (tokenPending?.promise === pending) tokenPending = null;
    });
    tokenPending = { promise: pending, at: now };
  }
  await within(tokenPending.promise, ctx.timeoutMs + 1000);
  if (!airflowToken) throw new GatewayError("upstream_credential_unavailable");
  return `Bearer ${airflowToken.value}`;
}

async function callAirflow(ctx, method, path, body) {
  const headers = viaTunnel(ctx.env, forwardHeaders(null, ctx));
  headers.accept = "application/json";
  if (body !== undefined) headers["content-type"] = "application/json";
  for (let attempt = 0; ; attempt++) {
    headers.authorization = await airflowCredential(ctx, attempt > 0);
    // Under an idempotency lease, no call may start that could outlive it.
    if (Date.now() + ctx.timeoutMs > ctx.deadline) throw new GatewayError("upstream_timeout", "no time left in the lease");
    const answer = await callUpstream(ctx.config.base + path, { method, headers, body }, ctx.timeoutMs);
    // A cached login token may have been revoked or expired early: log in again once.
    if (answer.status === 401 && attempt === 0 && !ctx.env.UPSTREAM_CREDENTIAL) continue;
    ctx.upstreamStatus = answer.status;
    return { status: answer.status, content_type: answer.headers.get("content-type") || "application/json", body: await answer.text() };
  }
}

function toResponse(stored, requestId, replayed) {
  const headers = { "content-type": stored.content_type, "x-request-id": requestId };
  if (replayed) headers["idempotent-replayed"] = "true";
  return new Response(stored.body, { status: stored.status, headers });
}

const KINDS = { person: "person", oidc_client: "OIDC client", service_token: "service token" };
const MAX_SUBJECT = 256;

// One line that reads as what it holds: control and line-separator characters, and the
// bidirectional controls that could make a name display as another, become \uXXXX.
const oneLine = (text) =>
  text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

// Airflow's UI renders a note as Markdown: the subject goes in a code span (CommonMark §6.1), shown
// exactly as verified, never as a link or emphasis. The fence is longer than any backtick run in it.
function codeSpan(text) {
  const fence = "`".repeat(Math.max(0, ...(text.match(/`+/g) || []).map((run) => run.length)) + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

// The run's note, e.g. "Triggered by OIDC client `ai-agent` through airgate gateway trigger (local),
// request_id 1b4e…". Airflow stores at most 1000 characters; a subject (OIDC: at most 255 ASCII
// characters) is cut at MAX_SUBJECT, the decision line keeping it whole.
export function runNote(ctx) {
  const { subject, kind } = ctx.identity;
  const points = [...subject]; // cut between characters, never inside a surrogate pair
  const shown = points.length > MAX_SUBJECT ? `${points.slice(0, MAX_SUBJECT).join("")}…` : subject;
  const environment = ctx.env.ENVIRONMENT ? ` (${ctx.env.ENVIRONMENT})` : "";
  return (
    `Triggered by ${KINDS[kind] ?? "caller"} ${codeSpan(oneLine(shown))} ` +
    `through airgate gateway ${ctx.policy.gateway}${environment}, request_id ${ctx.requestId}`
  );
}

const runsPath = (dagId) => `/api/v2/dags/${encodeURIComponent(dagId)}/dagRuns`;
const ownerOf = async (ctx) => `airgate__${(await sha256hex(ctx.identity.subject)).slice(0, 16)}__`;

// Before any token is spent: the DAG grant, and for a run read, that the run is the caller's own
// (or a held grant says `read_others_runs`).
export async function check(ctx) {
  const { dag_id: dagId, run_id: runId } = ctx.params;
  if (dagId === undefined) return;
  const grants = Object.hasOwn(ctx.policy.dags, dagId) ? ctx.policy.dags[dagId] : {};
  const held = ctx.identity.roles.filter((role) => Object.hasOwn(grants, role));
  if (!held.length) throw new GatewayError("dag_not_granted");
  ctx.schemas = held.map((role) => grants[role].conf_schema);
  if (runId !== undefined && !held.some((role) => grants[role].read_others_runs) && !runId.startsWith(await ownerOf(ctx))) {
    throw new GatewayError("run_not_owned");
  }
}

// JSON with every number exact: a non-finite one (1e400 parses to Infinity, which JSON.stringify
// sends as null) or an integer beyond ±(2^53 − 1) (silently rounded) is refused.
function parseExact(text) {
  return JSON.parse(text || "{}", (key, value) => {
    if (typeof value === "number" && (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value)))) {
      throw new GatewayError("conf_number_unsafe", `${key || "a number"} is not exactly representable`);
    }
    return value;
  });
}

async function durable(ctx, call) {
  try {
    const answer = await call();
    if (!answer.ok) throw new Error(`status ${answer.status}`);
    return await answer.json();
  } catch (error) {
    if (ctx.policy.limits.durable_objects_fail_open) return null;
    throw new GatewayError("durable_object_unavailable");
  }
}

async function trigger(ctx, dagId) {
  const schemas = ctx.schemas;
  let payload;
  try {
    payload = parseExact(new TextDecoder().decode(await ctx.bytes()));
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError("invalid_body", "not JSON");
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new GatewayError("invalid_body", "not an object");
  }
  // Refused, not replaced: a caller who sends a note expects it kept, and a silent swap would lose
  // it without a word; the refusal says why and starts nothing.
  if (Object.hasOwn(payload, "note")) {
    throw new GatewayError("invalid_body", "note is written by the gateway (who triggered the run); send conf only");
  }
  const unknown = Object.keys(payload).filter((key) => key !== "conf");
  if (unknown.length) throw new GatewayError("invalid_body", `unknown field ${unknown[0]}`);
  const conf = payload.conf ?? {};
  if (typeof conf !== "object" || conf === null || Array.isArray(conf)) {
    throw new GatewayError("invalid_body", "conf is not an object");
  }
  if (!schemas.includes(null)) {
    const errors = schemas.map((schema) => validate(schema, conf));
    if (!errors.includes(null)) throw new GatewayError("conf_schema_violation", errors[0]);
  }
  const key = ctx.fields.get("idempotency-key") ?? null;
  if (key !== null && !IDEMPOTENCY_KEY.test(key)) throw new GatewayError("invalid_request", "bad Idempotency-Key");
  const owner = await ownerOf(ctx);
  const suffix = key === null ? crypto.randomUUID().replace(/-/g, "") : (await sha256hex(`${ctx.identity.subject}\n${dagId}\n${key}`)).slice(0, 32);
  const runId = owner + suffix;
  // The idempotency fingerprint covers what the caller decides, not the note: a retry is another
  // request (another request id) asking for the same run.
  const asked = JSON.stringify({ dag_run_id: runId, logical_date: null, conf });
  const body = JSON.stringify({ dag_run_id: runId, logical_date: null, conf, note: runNote(ctx) });
  const path = runsPath(dagId);
  // Worst case of one attempt: login, call, 401, login again, call (each up to the timeout, each
  // login wait 1 s longer), plus a margin for the Durable Object round trips.
  const leaseMs = 4 * ctx.timeoutMs + 2000 + 5000;
  ctx.deadline = Date.now() + leaseMs - 5000;
  const post = async () => {
    const stored = await callAirflow(ctx, "POST", path, body);
    if (stored.status !== 409 || key === null) return stored;
    // The run id exists: this key's run was started by an attempt whose answer was lost.
    const found = await callAirflow(ctx, "GET", `${path}/${encodeURIComponent(runId)}`);
    ctx.reason = "idempotent_replay";
    return found.status === 200 ? found : stored;
  };
  if (key === null) return toResponse(await post(), ctx.requestId);

  const namespace = ctx.env.IDEMPOTENCY;
  const id = namespace.idFromName(`${ctx.identity.subject}\n${dagId}\n${key}`);
  // A fresh stub per call: a stub that saw its object reset stays broken.
  const send = (action, data) => () =>
    namespace.get(id).fetch(`https://idempotency${action}`, { method: "POST", body: JSON.stringify(data) });
  const fingerprint = await sha256hex(asked);
  const begun = await durable(ctx, send("/begin", { fingerprint, lease_ms: leaseMs }));
  if (begun?.state === "done") {
    ctx.reason = "idempotent_replay";
    ctx.upstreamStatus = null;
    return toResponse(begun.response, ctx.requestId, true);
  }
  if (begun?.state === "mismatch") throw new GatewayError("idempotency_key_reused");
  if (begun?.state === "busy") throw new GatewayError("idempotency_in_progress");
  let stored;
  try {
    stored = await post();
  } catch (error) {
    // Nothing to replay: let a retry with the same key try again.
    if (begun) await durable(ctx, send("/complete", {})).catch(() => {});
    throw error;
  }
  if (begun) {
    const final = stored.status < 500 && stored.status !== 429 && stored.status !== 401;
    await durable(ctx, send("/complete", final ? { response: stored } : {})).catch(() => {});
  }
  return toResponse(stored, ctx.requestId, ctx.reason === "idempotent_replay");
}

export async function dagTriggerHandler(ctx) {
  const { dag_id: dagId, run_id: runId } = ctx.params;
  const method = ctx.method;
  if (dagId && runId === undefined && method === "POST") return trigger(ctx, dagId);
  if (dagId && runId !== undefined && (method === "GET" || method === "HEAD")) {
    return toResponse(await callAirflow(ctx, "GET", `${runsPath(dagId)}/${encodeURIComponent(runId)}`), ctx.requestId);
  }
  throw new GatewayError("no_route");
}
dagTriggerHandler.check = check;
