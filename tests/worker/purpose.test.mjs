// Token purpose, token header checks and the Worker's re-check of its own IDENTITY binding, at the
// running `warehouse` gateway (local stack: accepted_token_types [at+jwt]).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startGatewaySetting, stopAll, startGateway, pointAt, expectProblem,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream, gateway, artifacts;
const running = [];

before(async () => {
  ({ artifacts, issuer, upstream } = await startGatewaySetting());
  gateway = await startGateway(artifacts, {
    vars: pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "t" },
  });
  running.push(gateway);
});

after(() => stopAll(running, issuer, upstream));

const agent = { sub: "ai-agent", client_id: "ai-agent" };
const call = async (claims = {}, options = {}, to = gateway) =>
  to.send("GET", "/v1/tables/revenue", {
    headers: { authorization: `Bearer ${await issuer.token({ ...agent, ...claims }, { audience: AUDIENCE, ...options })}` },
  });

test("the local stack's access tokens pass in every spelling of at+jwt (RFC 7515 §4.1.9)", async () => {
  for (const typ of ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"]) {
    const answer = await call({}, { header: { typ } });
    assert.equal(answer.status, 200, `${typ}: ${answer.text}`);
  }
});

test("a token minted for another purpose is refused", async () => {
  const cases = [
    ["an ID token (typ JWT, nonce, at_hash)", { nonce: "n", at_hash: "x" }, { header: { typ: "JWT" } }],
    ["an untyped token", {}, { header: { typ: undefined } }],
    ["a typ this stack does not accept", {}, { header: { typ: "JWT" } }],
    ["a logout token", { events: { "http://schemas.openid.net/event/backchannel-logout": {} } }, { header: { typ: "logout+jwt" } }],
    ["an at+jwt carrying an ID token's nonce", { nonce: "n" }, {}],
    ["an at+jwt carrying at_hash", { at_hash: "x" }, {}],
    ["an at+jwt carrying a security event", { events: {} }, {}],
    ["a Cognito-style ID token (token_use id)", { token_use: "id" }, {}],
    ["a typ that is not a string", {}, { header: { typ: 1 } }],
  ];
  for (const [name, claims, options] of cases) {
    const before = upstream.state.requests.length;
    const answer = await call(claims, options);
    expectProblem(assert, answer, 401, "token_purpose_mismatch");
    assert.equal(upstream.state.requests.length, before, name);
  }
  expectProblem(assert, await call({ aud: "http://another-api" }), 401, "token_audience_mismatch");
  assert.equal((await call({ token_use: "access" })).status, 200, "token_use access is an access token");
});

test("a kid that is not a non-empty string is invalid, not 'no kid'", async () => {
  for (const kid of ["", 0, null, false]) {
    const answer = await call({}, { kid: "rsa-1", header: { kid } });
    expectProblem(assert, answer, 401, "invalid_token");
  }
});

test("iat, when present, must be a number", async () => {
  for (const iat of ["yesterday", null, [1], {}]) expectProblem(assert, await call({ iat }), 401, "token_claims_invalid");
  assert.equal((await call({}, { omit: ["iat"] })).status, 200, "iat is optional");
});

test("the Worker re-checks its IDENTITY binding and fails closed on a bad value", async () => {
  const bad = {
    "leeway as text": { leeway_seconds: "30" },
    "leeway beyond a minute": { leeway_seconds: 1e9 },
    "no audience": { audience: [] },
    "an empty audience": { audience: [""] },
    "an unknown token type": { accepted_token_types: ["id_token"] },
    "no algorithms": { algorithms: [] },
  };
  const withIdentity = async (identity) => {
    const vars = pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE });
    const g = await startGateway(artifacts, { vars: { ...vars, IDENTITY: { ...vars.IDENTITY, ...identity } }, secrets: { UPSTREAM_CREDENTIAL: "t" } });
    running.push(g);
    return g;
  };
  // One gateway per bad value would start a runtime each; these two cover the number and list checks
  // end to end, and identityOptions' own table covers the rest (differential.test.mjs).
  for (const name of ["leeway beyond a minute", "an empty audience"]) {
    const g = await withIdentity(bad[name]);
    const before = upstream.state.requests.length;
    expectProblem(assert, await call({}, {}, g), 503, "config_invalid");
    assert.equal(upstream.state.requests.length, before, name);
  }
  const { identityOptions } = await import("../../worker_templates/lib/identity.js");
  const good = artifacts.wrangler.vars.IDENTITY;
  assert.ok(identityOptions(good));
  for (const [name, change] of Object.entries(bad)) {
    assert.throws(() => identityOptions({ ...good, ...change }), (error) => error.reason === "config_invalid", name);
  }
});
