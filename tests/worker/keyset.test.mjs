// Key material at the running `warehouse` gateway (local stack): the KV copy of the key set is
// trusted only under the deploy's MAC and never from the future; a key set with one bad entry is
// rejected whole (the previous set stays; never a 500); JWKS and discovery redirects are not followed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { exportJWK, generateKeyPair } from "jose";
import {
  startGatewaySetting, stopAll, startIssuer, startGateway, pointAt, expectProblem, jwksKey, keySetCopy, MAC_KEY,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream, artifacts;
const running = [];

before(async () => ({ artifacts, issuer, upstream } = await startGatewaySetting()));
after(() => stopAll(running, issuer, upstream));

async function gatewayWith({ macKey = MAC_KEY, identity = {}, from = issuer } = {}) {
  const secrets = { UPSTREAM_CREDENTIAL: "t", ...(macKey ? { JWKS_KV_MAC_KEY: macKey } : {}) };
  const gateway = await startGateway(artifacts, {
    vars: pointAt(artifacts.wrangler, { issuer: from, upstream, audience: AUDIENCE, identity }),
    secrets,
  });
  running.push(gateway);
  return gateway;
}

const claims = { sub: "ai-agent", client_id: "ai-agent" };
const call = async (gateway, options = {}, from = issuer) =>
  gateway.send("GET", "/v1/tables/revenue", {
    headers: { authorization: `Bearer ${await from.token(claims, { audience: AUDIENCE, ...options })}` },
  });

// A signing key the issuer never published, under a kid it does publish (what a planter would use).
async function plantedKey(kid = "rsa-1") {
  const pair = await generateKeyPair("RS256", { extractable: true });
  return { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: "RS256", use: "sig" } };
}

// Polls with requests (25 ms apart, for at most 10 s) until the issuer saw one more key-set fetch
// (the gateway refreshed), returning the answer to the request that caused it. The gateway spaces
// its attempts (1 s with nothing cached, the cooldown otherwise), so a few dozen polls suffice.
async function untilFetched(send, from = issuer) {
  const before = from.state.jwksFetches;
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const answer = await send();
    if (from.state.jwksFetches > before) return answer;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("the gateway never fetched the key set again");
}

test("a key set planted in KV without the deploy's MAC is never used", async () => {
  const planted = await plantedKey();
  const now = Math.floor(Date.now() / 1000);
  const forged = [
    JSON.stringify({ fetched_at: now, keys: { keys: [planted.jwk] } }), // the v2 gateway's format
    keySetCopy(issuer.url, { keys: [planted.jwk] }, now, "someone-elses-key-0123456789abcdef0123"),
    JSON.stringify({ ...JSON.parse(keySetCopy(issuer.url, await issuer.jwks(), now)), jwks: JSON.stringify({ keys: [planted.jwk] }) }),
  ];
  for (const value of forged) {
    const gateway = await gatewayWith();
    await gateway.kv.put(jwksKey(issuer.url), value);
    issuer.state.down = true;
    try {
      expectProblem(assert, await call(gateway, { key: planted.privateKey }), 503, "keys_unavailable");
    } finally {
      issuer.state.down = false;
    }
    // With the IdP back, its own keys decide: the planted key signs nothing.
    const answer = await untilFetched(() => call(gateway, { key: planted.privateKey }));
    expectProblem(assert, answer, 401, "token_signature_invalid");
    assert.equal((await call(gateway)).status, 200);
  }
});

test("an authentic copy with fetched_at in the future is refused; the IdP is asked instead", async () => {
  const gateway = await gatewayWith();
  const future = Math.floor(Date.now() / 1000) + 3600;
  await gateway.kv.put(jwksKey(issuer.url), keySetCopy(issuer.url, await issuer.jwks(), future));
  const fetches = issuer.state.jwksFetches;
  const answer = await call(gateway);
  assert.equal(answer.status, 200, answer.text);
  assert.equal(issuer.state.jwksFetches, fetches + 1, "the future copy was not used");
  const stored = await gateway.kv.get(jwksKey(issuer.url), "json");
  assert.ok(stored.fetched_at <= Date.now() / 1000 + 1, "the copy was replaced by a present one");
});

test("without the MAC secret bound, the KV copy is neither read nor written", async () => {
  const gateway = await gatewayWith({ macKey: null });
  const now = Math.floor(Date.now() / 1000);
  await gateway.kv.put(jwksKey(issuer.url), keySetCopy(issuer.url, await issuer.jwks(), now));
  const fetches = issuer.state.jwksFetches;
  assert.equal((await call(gateway)).status, 200);
  assert.equal(issuer.state.jwksFetches, fetches + 1);
  await gateway.kv.delete(jwksKey(issuer.url));
  const cold = await gatewayWith({ macKey: null });
  assert.equal((await call(cold)).status, 200);
  assert.equal(await cold.kv.get(jwksKey(issuer.url)), null);
});

const BAD_ENTRIES = {
  "a null entry": async () => null,
  "a 1024-bit RSA key": async () => {
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 });
    return { ...weak.publicKey.export({ format: "jwk" }), kid: "weak", alg: "RS256" };
  },
  'a kid of ""': async () => ({ ...(await issuer.jwks()).keys[0], kid: "" }),
  "a kid of 0": async () => ({ ...(await issuer.jwks()).keys[0], kid: 0 }),
  "a private member": async () => ({ ...(await issuer.jwks()).keys[1], kid: "leaky", d: "AAAA" }),
  "a P-256 key for ES384": async () => ({ ...(await issuer.jwks()).keys[1], kid: "odd", alg: "ES384" }),
  "a symmetric key": async () => ({ kty: "oct", k: "c2VjcmV0", kid: "hmac" }),
};

test("a key set with any invalid entry is rejected whole: 503 when nothing else is known, never 500", async () => {
  const other = await startIssuer();
  try {
    const gateway = await gatewayWith({ from: other });
    for (const [name, entry] of Object.entries(BAD_ENTRIES)) {
      const keys = [...(await other.jwks()).keys, await entry()];
      other.state.answers["/jwks"] = (req, res) => {
        other.state.jwksFetches++;
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
      };
      const answer = await untilFetched(() => call(gateway, {}, other), other);
      assert.equal(answer.status, 503, `${name}: ${answer.status} ${answer.text}`);
      expectProblem(assert, answer, 503, "keys_unavailable");
    }
    delete other.state.answers["/jwks"];
    const answer = await untilFetched(() => call(gateway, {}, other), other);
    assert.equal(answer.status, 200, "a good set is used as soon as it is published");
  } finally {
    await other.close();
  }
});

test("a refreshed set with a bad entry leaves the previous set in use", async () => {
  const gateway = await gatewayWith({ identity: { jwks_refresh_cooldown_seconds: 1 } });
  assert.equal((await call(gateway)).status, 200);
  const fresh = await issuer.addKey("rsa-new");
  const keys = [...(await issuer.jwks()).keys, { ...(await exportJWK(fresh.publicKey)), kid: "rsa-new", alg: "RS256" }, null];
  issuer.state.answers["/jwks"] = (req, res) => {
    issuer.state.jwksFetches++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
  };
  try {
    // A token with the new kid asks for a refresh; the refreshed set is refused as a whole.
    const answer = await untilFetched(() => call(gateway, { kid: "rsa-new" }));
    expectProblem(assert, answer, 401, "token_key_unknown");
    assert.equal((await call(gateway)).status, 200, "the previous set still verifies");
  } finally {
    delete issuer.state.answers["/jwks"];
  }
});

test("JWKS and discovery fetches do not follow redirects", async () => {
  for (const path of ["/jwks", "/.well-known/openid-configuration"]) {
    const other = await startIssuer();
    let followed = 0;
    other.state.answers[path] = (req, res) => res.writeHead(302, { location: `${other.url}/elsewhere` }).end();
    other.state.answers["/elsewhere"] = (req, res) => {
      followed++;
      const body = path === "/jwks" ? other.jwks() : Promise.resolve({ issuer: other.url, jwks_uri: `${other.url}/jwks` });
      body.then((value) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value)));
    };
    try {
      const gateway = await gatewayWith({ from: other });
      expectProblem(assert, await call(gateway, {}, other), 503, "keys_unavailable");
      assert.equal(followed, 0, `${path}: the redirect target was fetched`);
    } finally {
      await other.close();
    }
  }
});
