// Exactly-once DAG triggers (local stack, `trigger`): 100 concurrent retries of one Idempotency-Key,
// with the idempotency Durable Object reset while the first call is inside Airflow, start one run.
// The reset uses the runtime's own DurableObjectState.abort() (workerd; Cloudflare documents it as
// resetting the object: in-memory state is lost, storage is kept), reached through a subclass in a
// second worker, so the gateway's code runs unchanged.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, withPolicy, airflowRuns, besideGateway,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
const SUBJECT = "de-once";
const DAG = "ingest_events";
let issuer, airflow, artifacts;
const running = [];
const runs = [];
let onFirstPost = null;
let posts = 0;

const RESTARTABLE = `
import { IdempotencyStore } from "./gateway.js";
export class Restartable extends IdempotencyStore {
  async fetch(request) {
    if (new URL(request.url).pathname === "/restart") this.state.abort("reset by the test");
    return super.fetch(request);
  }
}
export default {
  async fetch(request, env) {
    const name = new URL(request.url).searchParams.get("name");
    try {
      await env.STORE.get(env.STORE.idFromName(name)).fetch("https://idempotency/restart", { method: "POST", body: "{}" });
    } catch {}
    return new Response("reset");
  },
};`;

// Airflow's documented rules that matter here: a dag_run_id exists at most once per DAG (409
// AlreadyExists), and a run can be read back by its id. Every POST is counted, a duplicate too; the
// first run recorded fires `onFirstPost` while the call is still inside Airflow.
const airflowHandler = airflowRuns(runs, {
  delayMs: 300, // the write's latency
  onPost() {
    posts++;
  },
  async created() {
    const hook = onFirstPost;
    onFirstPost = null;
    await hook?.();
  },
});

before(async () => {
  // A trigger bucket large enough for every retry: this test is about the idempotency store.
  artifacts = withPolicy(readArtifacts(buildStack("local"), "trigger"), (policy) => {
    policy.routes.find((r) => r.name === "trigger-run").rate_limit = { requests: 100000, per_seconds: 60 };
  });
  issuer = await startIssuer();
  airflow = await startUpstream("airflow");
  airflow.state.handler = airflowHandler;
});

after(async () => {
  await Promise.allSettled(running.map((g) => g.dispose()));
  await issuer?.close();
  await airflow?.close();
});

async function gatewayWithRestartableStore() {
  const restartable = besideGateway(artifacts, "restartable", RESTARTABLE, { STORE: "Restartable" });
  const gateway = await startGateway(artifacts, {
    vars: pointAt(artifacts.wrangler, { issuer, upstream: airflow, audience: AUDIENCE, upstreamConfig: { timeout_ms: 5000 } }), // roomy: a loaded CI machine must not time the first call out
    secrets: { UPSTREAM_CREDENTIAL: "airflow-token" },
    durableObjects: { RATE_LIMITER: "RateLimiter", IDEMPOTENCY: { className: "Restartable", scriptName: "restartable" } },
    workers: [restartable],
  });
  running.push(gateway);
  return gateway;
}

const seen = {};
// One client: retries what a client should retry (429, 503, a dropped connection) until an answer.
async function client(gateway, headers) {
  for (let attempt = 0; attempt < 400; attempt++) {
    const answer = await gateway.send("POST", `/dags/${DAG}/runs`, { headers, body: '{"conf":{"day":"2026-11-30"}}' }).catch(() => null);
    const why = answer ? `${answer.status} ${answer.log?.reason}` : "dropped";
    seen[why] = (seen[why] || 0) + 1;
    if (answer && answer.status !== 503 && answer.status !== 429) return answer;
    await new Promise((resolve) => setTimeout(resolve, 25 + Math.random() * 50)); // client back-off
  }
  throw new Error(`no final answer after 400 attempts: ${JSON.stringify(seen)}`);
}

test("100 concurrent retries of one key, the Durable Object reset mid-request → exactly one DAG run", async () => {
  const gateway = await gatewayWithRestartableStore();
  const key = "nightly-2026-11-30";
  const token = await issuer.token({ sub: SUBJECT, groups: ["data-engineering"] }, { audience: AUDIENCE });
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key };
  let reset = false;
  onFirstPost = async () => {
    await gateway.mf.getWorker("restartable").then((w) => w.fetch(`http://x/?name=${encodeURIComponent(`${SUBJECT}\n${DAG}\n${key}`)}`));
    reset = true;
  };
  const answers = await Promise.all(Array.from({ length: 100 }, () => client(gateway, headers)));
  assert.ok(reset, "the object was reset while the first call was inside Airflow");
  const mine = runs.filter((r) => r.dag_id === DAG && r.conf.day === "2026-11-30");
  assert.equal(mine.length, 1, "exactly one run");
  assert.equal(posts, 1, "and Airflow was asked once: the reset object still knew the call was in flight");
  for (const answer of answers) {
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.dag_run_id, mine[0].dag_run_id);
  }
  assert.ok(answers.filter((a) => a.headers["idempotent-replayed"] === "true").length >= 99);

  // Even with the in-flight marker and the stored answer gone entirely (another account's store),
  // the key names the same run id, which Airflow refuses twice: the caller gets that run back.
  const fresh = await gatewayWithRestartableStore();
  const again = await client(fresh, headers);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.dag_run_id, mine[0].dag_run_id);
  assert.equal(again.headers["idempotent-replayed"], "true");
  assert.equal(runs.filter((r) => r.dag_id === DAG).length, 1);
  assert.equal(posts, 2);
});
