// Identity at the oidc-mode gateway (local stack, `warehouse`): the attack matrix of the issue,
// the happy path (what the upstream sees), revocation and the per-role kill switch.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPair, SignJWT, exportSPKI } from "jose";
import {
  buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem, DECISION_FIELDS,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream, gateway, artifacts;

before(async () => {
  artifacts = readArtifacts(buildStack("local"), "warehouse");
  issuer = await startIssuer();
  upstream = await startUpstream("warehouse");
  gateway = await startGateway(artifacts, {
    vars: { ...pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE }), CONTROL_TTL_SECONDS: "0" },
    secrets: { UPSTREAM_CREDENTIAL: "warehouse-secret-token" },
  });
});

after(async () => {
  await gateway?.dispose();
  await issuer?.close();
  await upstream?.close();
});

const b64 = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const agentToken = (claims = {}, options = {}) =>
  issuer.token({ sub: "ai-agent", client_id: "ai-agent", ...claims }, { audience: AUDIENCE, ...options });
const tables = (headers, extra = {}) => gateway.send("GET", "/v1/tables/revenue", { headers, ...extra });
const bearer = (token) => ({ authorization: `Bearer ${token}` });

function assertNotForwarded(before) {
  assert.equal(upstream.state.requests.length, before, "the upstream must not have been called");
}

test("an allowed call reaches the upstream with the upstream's credential and identity headers", async () => {
  const token = await agentToken();
  const before = upstream.state.requests.length;
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const answer = await tables({
    ...bearer(token),
    cookie: "CF_Authorization=abc; session=1",
    "cf-access-jwt-assertion": "x.y.z",
    "cf-access-client-secret": "leak",
    "x-airgate-subject": "admin",
    "x-airgate-roles": "platform-admin",
    connection: "keep-alive, x-hop",
    "x-hop": "1",
    traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
    "x-custom": "dropped",
    accept: "application/json",
  });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(upstream.state.requests.length, before + 1);
  const seen = upstream.state.requests.at(-1);
  assert.equal(seen.path, "/v1/tables/revenue");
  assert.equal(seen.headers.authorization, "Bearer warehouse-secret-token");
  assert.equal(seen.headers.cookie, undefined);
  assert.equal(seen.headers["cf-access-jwt-assertion"], undefined);
  assert.equal(seen.headers["cf-access-client-secret"], undefined);
  assert.equal(seen.headers["x-hop"], undefined);
  assert.equal(seen.headers["x-custom"], undefined, "not on the allow-list");
  assert.equal(seen.headers.accept, "application/json");
  assert.equal(seen.headers["x-airgate-subject"], "ai-agent");
  assert.equal(seen.headers["x-airgate-roles"], "ai-agent");
  assert.equal(seen.headers["x-airgate-policy-version"], artifacts.manifest.policy_version);
  assert.equal(seen.headers["x-request-id"], answer.headers["x-request-id"]);
  assert.match(seen.headers.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  assert.notEqual(seen.headers.traceparent.split("-")[2], "00f067aa0ba902b7", "a new span id for this hop");

  const log = answer.log;
  assert.deepEqual(Object.keys(log).filter((k) => DECISION_FIELDS.includes(k)).sort(), [...DECISION_FIELDS].sort());
  assert.equal(log.decision, "allow");
  assert.equal(log.reason, "allowed");
  assert.equal(log.route, "tables");
  assert.equal(log.subject, "ai-agent");
  assert.deepEqual(log.roles, ["ai-agent"]);
  assert.equal(log.upstream_status, 200);
  assert.equal(log.policy_version, artifacts.manifest.policy_version);
  assert.equal(log.environment, "local");
  assert.equal(log.gateway, "warehouse");
  assert.equal(log.traceparent, seen.headers.traceparent);
  assert.equal(typeof log.latency_ms, "number");
  assert.ok(!gateway.rawOutput.join("").includes(token), "the token never appears in the output");
  assert.ok(!gateway.rawOutput.join("").includes(token.split(".")[2]), "nor its signature");
  assert.ok(!gateway.rawOutput.join("").includes("warehouse-secret-token"), "nor the upstream secret");
});

test("a caller without traceparent gets a new trace", async () => {
  const answer = await tables(bearer(await agentToken()));
  assert.equal(answer.status, 200);
  assert.match(answer.log.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
});

test("ES256 tokens from the same issuer are accepted", async () => {
  const answer = await tables(bearer(await agentToken({}, { kid: "ec-1" })));
  assert.equal(answer.status, 200, answer.text);
});

test("groups and email claims map to roles", async () => {
  const analyst = await issuer.token({ sub: "u-1", groups: ["analytics"] }, { audience: AUDIENCE });
  let answer = await tables(bearer(analyst));
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.log.roles, ["analyst"]);
  const oncall = await issuer.token({ sub: "u-2", email: "OnCall@Acme-Data.com", email_verified: true }, { audience: AUDIENCE });
  answer = await gateway.send("GET", "/v1/admin/users", { headers: bearer(oncall) });
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.log.roles, ["platform-admin"]);
});

const matrix = [
  ["no credential at all", async () => ({}), 401, "missing_credential"],
  ["a non-bearer Authorization scheme", async () => ({ authorization: "Basic YWk6YWk=" }), 401, "invalid_token"],
  ["garbage instead of a JWT", async () => bearer("not-a-jwt"), 401, "invalid_token"],
  ...["none", "None", "NONE"].map((alg) => [
    `alg ${alg} without signature`,
    async () => bearer(`${b64({ alg, typ: "JWT" })}.${b64({ iss: issuer.url, aud: AUDIENCE, sub: "ai-agent", exp: 9e9 })}.`),
    401,
    "token_algorithm_not_allowed",
  ]),
  [
    "RS256 header with an empty signature",
    async () => bearer((await agentToken()).split(".").slice(0, 2).join(".") + "."),
    401,
    "token_signature_invalid",
  ],
  [
    "HS256 signed with the issuer's public key (algorithm confusion)",
    async () => {
      const pem = await exportSPKI(issuer.keys["rsa-1"].publicKey);
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ iss: issuer.url, aud: AUDIENCE, sub: "ai-agent", exp: now + 300 })
        .setProtectedHeader({ alg: "HS256", kid: "rsa-1" })
        .sign(new TextEncoder().encode(pem));
      return bearer(token);
    },
    401,
    "token_algorithm_not_allowed",
  ],
  [
    "payload tampered after signing",
    async () => {
      const [h, , s] = (await agentToken()).split(".");
      const now = Math.floor(Date.now() / 1000);
      return bearer(`${h}.${b64({ iss: issuer.url, aud: AUDIENCE, sub: "x", groups: ["platform"], exp: now + 300 })}.${s}`);
    },
    401,
    "token_signature_invalid",
  ],
  [
    "signed by a key the issuer never published (unknown kid)",
    async () => {
      const { privateKey } = await generateKeyPair("RS256");
      return bearer(await agentToken({}, { kid: "attacker", key: privateKey, alg: "RS256" }));
    },
    401,
    "token_key_unknown",
  ],
  [
    "signed by another key under a published kid",
    async () => {
      const { privateKey } = await generateKeyPair("RS256");
      return bearer(await agentToken({}, { kid: "rsa-1", key: privateKey }));
    },
    401,
    "token_signature_invalid",
  ],
  ...["jku", "x5u", "jwk"].map((name) => [
    `${name} in the header pointing at the attacker's key`,
    async () => {
      const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
      const { exportJWK } = await import("jose");
      const jwk = { ...(await exportJWK(publicKey)), kid: "attacker" };
      const value = name === "jwk" ? jwk : "http://127.0.0.1:9/evil";
      return bearer(await agentToken({}, { kid: "attacker", key: privateKey, alg: "RS256", header: { [name]: value } }));
    },
    401,
    "token_key_unknown",
  ]),
  ["wrong issuer", async () => bearer(await agentToken({ iss: "http://127.0.0.1:1/other" })), 401, "token_issuer_mismatch"],
  [
    "a token for another app (wrong audience)",
    async () => bearer(await agentToken({}, { audience: "http://elsewhere.localhost" })),
    401,
    "token_audience_mismatch",
  ],
  ["a token with no audience", async () => bearer(await agentToken({}, { omit: ["aud"] })), 401, "token_audience_mismatch"],
  [
    "expired beyond the leeway",
    async () => bearer(await agentToken({ exp: Math.floor(Date.now() / 1000) - 31 })),
    401,
    "token_expired",
  ],
  [
    "nbf in the future beyond the leeway",
    async () => bearer(await agentToken({ nbf: Math.floor(Date.now() / 1000) + 120 })),
    401,
    "token_not_yet_valid",
  ],
  ["no exp claim", async () => bearer(await agentToken({}, { omit: ["exp"] })), 401, "token_missing_exp"],
  [
    "an oversized token",
    async () => bearer(await agentToken({ padding: "x".repeat(9000) })),
    431,
    "token_too_large",
  ],
  [
    "oversized headers",
    async () => ({ ...bearer(await agentToken()), "x-big": "y".repeat(17 * 1024) }),
    431,
    "headers_too_large",
  ],
  ["a cookie without the header", async () => ({ cookie: "CF_Authorization=" + (await agentToken()) }), 401, "missing_credential"],
  [
    "CF-Access-Client-Id/Secret headers without a JWT",
    async () => ({ "cf-access-client-id": "abc.access", "cf-access-client-secret": "s3cret" }),
    401,
    "missing_credential",
  ],
];

for (const [name, headersOf, status, reason] of matrix) {
  test(`refused: ${name}`, async () => {
    const before = upstream.state.requests.length;
    const answer = await tables(await headersOf());
    expectProblem(assert, answer, status, reason);
    assert.equal(answer.log.decision, "deny");
    assertNotForwarded(before);
    if (status === 401) assert.match(answer.headers["www-authenticate"] || "", /^Bearer/);
  });
}

test("refused: duplicate Authorization headers", async () => {
  const before = upstream.state.requests.length;
  const good = await agentToken();
  const answer = await tables(undefined, {
    rawHeaders: ["authorization", `Bearer ${good}`, "authorization", `Bearer ${good}`],
  });
  expectProblem(assert, answer, 401, "duplicate_credential");
  assertNotForwarded(before);
});

test("a token within the leeway is still accepted (exp 10 s ago, leeway 30 s)", async () => {
  const answer = await tables(bearer(await agentToken({ exp: Math.floor(Date.now() / 1000) - 10 })));
  assert.equal(answer.status, 200, answer.text);
});

test("route, method and role decisions: 404, 405 (with Allow), 403", async () => {
  const token = bearer(await agentToken());
  expectProblem(assert, await gateway.send("GET", "/v2/unknown", { headers: token }), 404, "no_route");
  const wrong = await gateway.send("DELETE", "/v1/tables/x", { headers: token });
  expectProblem(assert, wrong, 405, "method_not_allowed");
  assert.equal(wrong.headers.allow, "GET");
  const denied = await gateway.send("GET", "/v1/admin/users", { headers: token });
  expectProblem(assert, denied, 403, "role_not_allowed");
  assert.equal(denied.log.route, "admin");
  const nobody = bearer(await issuer.token({ sub: "stranger" }, { audience: AUDIENCE }));
  expectProblem(assert, await tables(nobody), 403, "role_not_allowed");
});

test("revocation and the per-role kill switch take effect from KV without a redeploy", async () => {
  const token = bearer(await agentToken());
  const analyst = bearer(await issuer.token({ sub: "u-9", groups: ["analytics"] }, { audience: AUDIENCE }));
  try {
    await gateway.kv.put("control", JSON.stringify({ revoked_subjects: ["ai-agent"] }));
    expectProblem(assert, await tables(token), 403, "subject_revoked");
    assert.equal((await tables(analyst)).status, 200);
    await gateway.kv.put("control", JSON.stringify({ disabled_roles: ["analyst"] }));
    assert.equal((await tables(token)).status, 200);
    const off = await tables(analyst);
    expectProblem(assert, off, 403, "role_not_allowed");
    assert.deepEqual(off.log.roles, []);
  } finally {
    await gateway.kv.delete("control");
  }
  assert.equal((await tables(analyst)).status, 200);
});

test("a flood of unknown kids fetches the key set at most once per cooldown; rotation is picked up after it", async () => {
  const cooldown = artifacts.wrangler.vars.IDENTITY.jwks_refresh_cooldown_seconds;
  assert.ok(cooldown >= 1);
  assert.equal((await tables(bearer(await agentToken()))).status, 200);
  const fetchesBefore = issuer.state.jwksFetches;
  const { privateKey } = await generateKeyPair("RS256");
  const flood = await Promise.all(
    Array.from({ length: 40 }, async (_, i) =>
      tables(bearer(await agentToken({}, { kid: `random-${i}`, key: privateKey, alg: "RS256" }))),
    ),
  );
  for (const answer of flood) expectProblem(assert, answer, 401, "token_key_unknown");
  assert.ok(issuer.state.jwksFetches - fetchesBefore <= 1, `fetched ${issuer.state.jwksFetches - fetchesBefore} times`);
  // A newly published key is not fetched again inside the cooldown: still refused, no fetch.
  await issuer.addKey("rsa-2");
  issuer.state.published.push("rsa-2");
  const afterFlood = issuer.state.jwksFetches;
  expectProblem(assert, await tables(bearer(await agentToken({}, { kid: "rsa-2" }))), 401, "token_key_unknown");
  assert.equal(issuer.state.jwksFetches, afterFlood);
});

// Identity only from verified claims: one test per finding of issue 9.
const as = async (claims) => ({ authorization: `Bearer ${await issuer.token(claims, { audience: AUDIENCE })}` });

test("an OIDC email maps to roles only with email_verified: true", async () => {
  for (const unverified of [{ email_verified: false }, {}, { email_verified: "true" }]) {
    const headers = await as({ sub: "mallory", email: "oncall@acme-data.com", ...unverified });
    const answer = await gateway.send("GET", "/v1/admin/users", { headers });
    expectProblem(assert, answer, 403, "role_not_allowed");
    assert.deepEqual(answer.log.roles, []);
  }
  const verified = await as({ sub: "oncall-1", email: "oncall@acme-data.com", email_verified: true });
  assert.equal((await gateway.send("GET", "/v1/admin/users", { headers: verified })).status, 200);
});

test("a person's token naming a client in azp or client_id is not that client's role", async () => {
  for (const claims of [{ sub: "u-7", azp: "ai-agent" }, { sub: "u-7", client_id: "ai-agent" }, { sub: "u-7", cid: "ai-agent" }]) {
    const answer = await tables(await as(claims));
    expectProblem(assert, answer, 403, "role_not_allowed");
    assert.deepEqual(answer.log.roles, []);
  }
});

test("a person whose sub equals a client id is not that client", async () => {
  const answer = await gateway.send("GET", "/v1/tables/revenue", { headers: await as({ sub: "ai-agent", client_id: "airgate-cli" }) });
  expectProblem(assert, answer, 403, "role_not_allowed");
  // The client itself (client_id equal to sub: a client-credentials token) is.
  assert.equal((await tables(await as({ sub: "ai-agent", client_id: "ai-agent" }))).status, 200);
});

test("revocation covers every identifier that grants a role: sub, verified email, client id", async () => {
  const byEmail = await as({ sub: "oncall-2", email: "OnCall@acme-data.com", email_verified: true });
  const client = await as({ sub: "ai-agent", client_id: "ai-agent" });
  try {
    await gateway.kv.put("control", JSON.stringify({ revoked_subjects: ["oncall@acme-data.com"] }));
    expectProblem(assert, await gateway.send("GET", "/v1/admin/users", { headers: byEmail }), 403, "subject_revoked");
    await gateway.kv.put("control", JSON.stringify({ revoked_subjects: ["OnCall@Acme-Data.com"] }));
    expectProblem(assert, await gateway.send("GET", "/v1/admin/users", { headers: byEmail }), 403, "subject_revoked");
    await gateway.kv.put("control", JSON.stringify({ revoked_subjects: ["oncall-2"] }));
    expectProblem(assert, await gateway.send("GET", "/v1/admin/users", { headers: byEmail }), 403, "subject_revoked");
    await gateway.kv.put("control", JSON.stringify({ revoked_subjects: ["ai-agent"] }));
    expectProblem(assert, await tables(client), 403, "subject_revoked");
    // Exact comparison: a prefix or another case of a client id revokes nothing.
    await gateway.kv.put("control", JSON.stringify({ revoked_subjects: ["ai-agen", "AI-AGENT"] }));
    assert.equal((await tables(client)).status, 200);
  } finally {
    await gateway.kv.delete("control");
  }
});

test("a token without a usable subject → 401 (no shared 'unknown' caller)", async () => {
  // A subject the x-airgate-subject header cannot carry as it is counts as none: the runtime would
  // refuse a control character (the answer would read as an upstream failure) and trim the spaces.
  const uncarried = [" ai-agent", "ai-agent ", "a\nb", "a\rb", "a\u0000b", "a\u007fb", "a\tb"].map((sub) => ({ sub }));
  for (const claims of [{}, { sub: "" }, { sub: 42 }, { email: "x@acme-data.com", email_verified: true }, ...uncarried]) {
    const token = await issuer.token({ groups: ["analytics"], ...claims }, { audience: AUDIENCE });
    const answer = await tables(bearer(token));
    expectProblem(assert, answer, 401, "token_subject_missing");
  }
});

test("the wire never tells which check failed; the decision line does", async () => {
  const forged = await agentToken({ iss: "http://127.0.0.1:1/other" });
  const answer = await tables(bearer(forged));
  expectProblem(assert, answer, 401, "token_issuer_mismatch");
  assert.ok(!answer.text.includes("issuer") && !answer.text.includes("mismatch"), answer.text);
  const wrongKey = await tables(bearer((await agentToken()).replace(/\.[^.]+$/, ".AAAA")));
  assert.equal(wrongKey.text.replace(/"request_id":"[^"]+"/, ""), answer.text.replace(/"request_id":"[^"]+"/, ""));
});
