// Access mode (dev stack, `ingest`): the Worker validates Cf-Access-Jwt-Assertion itself against
// the team's certs, maps service-token client ids (common_name, empty sub) and emails to roles,
// and accepts nothing else as a credential.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem } from "./helpers.mjs";

const AUD = "3f1e6c0b5d2a4e8f9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f";
const CLIENTS = { "1a2b3c.access": "airflow-worker", "9z8y7x.access": "ci", "0stale.access": "ai-agent" };
let issuer, upstream, gateway, artifacts;

before(async () => {
  artifacts = readArtifacts(buildStack("dev"), "ingest");
  assert.equal(artifacts.wrangler.vars.IDENTITY.mode, "access");
  issuer = await startIssuer({ jwksPath: "/cdn-cgi/access/certs", typ: "JWT" });
  upstream = await startUpstream("ingest");
  gateway = await startGateway(artifacts, {
    vars: {
      ...pointAt(artifacts.wrangler, { issuer, upstream, audience: AUD }),
      ACCESS_CLIENTS: CLIENTS,
      CONTROL_TTL_SECONDS: "0",
    },
    secrets: { UPSTREAM_CREDENTIAL: "ingest-upstream-secret" },
  });
});

after(async () => {
  await gateway?.dispose();
  await issuer?.close();
  await upstream?.close();
});

const serviceToken = (commonName, extra = {}, options = {}) =>
  issuer.token({ aud: [AUD], sub: "", email: "", type: "app", common_name: commonName, ...extra }, options);
const userToken = (email, extra = {}) =>
  issuer.token({ aud: [AUD], sub: "7c1f-user", email, type: "app", identity_nonce: "n", country: "NL", ...extra });
const assertion = (token) => ({ "cf-access-jwt-assertion": token });
const health = (headers, extra) => gateway.send("GET", "/v1/health", { headers, ...extra });

test("a service-token JWT (common_name, empty sub) is an identity with the token's roles", async () => {
  const token = await serviceToken("1a2b3c.access");
  const before = upstream.state.requests.length;
  const answer = await gateway.send("POST", "/v1/events", {
    headers: { ...assertion(token), cookie: `CF_Authorization=${token}`, "cf-access-client-id": "1a2b3c.access" },
    body: '{"event":1}',
  });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(upstream.state.requests.length, before + 1);
  const seen = upstream.state.requests.at(-1);
  assert.equal(seen.headers["cf-access-jwt-assertion"], undefined);
  assert.equal(seen.headers["cf-access-client-id"], undefined);
  assert.equal(seen.headers.cookie, undefined);
  assert.equal(seen.headers.authorization, "Bearer ingest-upstream-secret");
  assert.equal(seen.headers["x-airgate-subject"], "airflow-worker");
  assert.equal(seen.body, '{"event":1}');
  assert.equal(answer.log.subject, "airflow-worker");
  assert.deepEqual(answer.log.roles, ["airflow-worker"]);
  assert.equal(answer.log.environment, "dev");
  assert.equal(answer.log.gateway, "ingest");
});

test("users map by email; the route decides", async () => {
  const oncall = assertion(await userToken("oncall@acme-data.com"));
  const answer = await health(oncall);
  assert.equal(answer.status, 200);
  assert.equal(answer.log.subject, "7c1f-user");
  assert.deepEqual(answer.log.roles, ["platform-admin"]);
  expectProblem(assert, await gateway.send("POST", "/v1/events", { headers: oncall, body: "{}" }), 403, "role_not_allowed");
  const stranger = await health(assertion(await userToken("someone@else.com")));
  expectProblem(assert, stranger, 403, "role_not_allowed");
  assert.deepEqual(stranger.log.roles, []);
  // Groups count only if a claim carries them.
  const engineer = await health(assertion(await userToken("eng@acme-data.com", { groups: ["data-engineering"] })));
  assert.deepEqual(engineer.log.roles, ["data-engineer"]);
});

test("a service token whose client id is not bound has no role", async () => {
  const answer = await health(assertion(await serviceToken("unknown.access")));
  expectProblem(assert, answer, 403, "role_not_allowed");
  assert.equal(answer.log.subject, "unknown.access");
});

const REFUSED = [
  ["a bearer token instead of the Access header", async () => ({ authorization: `Bearer ${await serviceToken("1a2b3c.access")}` }), 401, "missing_credential"],
  ["the CF_Authorization cookie without the header", async () => ({ cookie: `CF_Authorization=${await serviceToken("1a2b3c.access")}` }), 401, "missing_credential"],
  ["CF-Access-Client-Id/Secret without a JWT", async () => ({ "cf-access-client-id": "1a2b3c.access", "cf-access-client-secret": "x" }), 401, "missing_credential"],
  ["a token for another Access app", async () => assertion(await serviceToken("1a2b3c.access", { aud: ["another-app-aud"] })), 401, "token_audience_mismatch"],
  ["a token from another team", async () => assertion(await serviceToken("1a2b3c.access", { iss: "https://other.cloudflareaccess.com" })), 401, "token_issuer_mismatch"],
  ["an expired token", async () => assertion(await serviceToken("1a2b3c.access", { exp: Math.floor(Date.now() / 1000) - 3600 })), 401, "token_expired"],
  ["a token without exp", async () => assertion(await serviceToken("1a2b3c.access", {}, { omit: ["exp"] })), 401, "token_missing_exp"],
];

for (const [name, headersOf, status, reason] of REFUSED) {
  test(`refused: ${name}`, async () => {
    const before = upstream.state.requests.length;
    expectProblem(assert, await health(await headersOf()), status, reason);
    assert.equal(upstream.state.requests.length, before);
  });
}

test("refused: two Cf-Access-Jwt-Assertion headers", async () => {
  const token = await serviceToken("1a2b3c.access");
  const answer = await health(undefined, {
    rawHeaders: ["cf-access-jwt-assertion", token, "cf-access-jwt-assertion", await serviceToken("9z8y7x.access")],
  });
  expectProblem(assert, answer, 401, "duplicate_credential");
});

test("a revoked service token is refused at once, by name or client id", async () => {
  const token = assertion(await serviceToken("9z8y7x.access"));
  assert.equal((await health(token)).status, 200);
  try {
    await gateway.kv.put("control", JSON.stringify({ revoked_subjects: ["ci"] }));
    expectProblem(assert, await health(token), 403, "subject_revoked");
    await gateway.kv.put("control", JSON.stringify({ revoked_subjects: ["9z8y7x.access"] }));
    expectProblem(assert, await health(token), 403, "subject_revoked");
  } finally {
    await gateway.kv.delete("control");
  }
  assert.equal((await health(token)).status, 200);
});
