// Query strings at the `warehouse` gateway (local stack): method overrides and a credential in the
// query are refused with 400 problem+json, unless the matched route opts the parameter in with
// `forward_query`; methods the runtime passes to the Worker but the gateway does not serve get 400.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import {
  buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem, withPolicy,
} from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream, gateway, optedIn;

before(async () => {
  const artifacts = readArtifacts(buildStack("local"), "warehouse");
  issuer = await startIssuer();
  upstream = await startUpstream("warehouse");
  gateway = await startGateway(artifacts, {
    vars: pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "t" },
  });
  // The same gateway with the `tables` route opting access_token and _method back in.
  const edited = withPolicy(artifacts, (policy) => {
    policy.routes.find((route) => route.name === "tables").forward_query = ["_method", "access_token"];
  });
  optedIn = await startGateway(edited, {
    vars: pointAt(edited.wrangler, { issuer, upstream, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "t" },
  });
});

after(async () => {
  await gateway?.dispose();
  await optedIn?.dispose();
  await issuer?.close();
  await upstream?.close();
});

const bearer = async () => ({ authorization: `Bearer ${await issuer.token({ sub: "ai-agent", client_id: "ai-agent" }, { audience: AUDIENCE })}` });

test("method overrides in the query are refused with 400, in every spelling", async () => {
  const headers = await bearer();
  for (const name of ["_method", "__method", "_METHOD", "X-HTTP-Method-Override", "x_http_method_override", "x-http-method", "X-Method-Override", "_HttpMethod", "x-original-url", "%5fmethod"]) {
    const before = upstream.state.requests.length;
    const answer = await gateway.send("GET", `/v1/tables/revenue?limit=1&${name}=DELETE`, { headers });
    expectProblem(assert, answer, 400, "override_refused");
    assert.equal(upstream.state.requests.length, before, name);
  }
});

test("a credential in the query (RFC 6750 §2.3 access_token) is refused with 400, even unauthenticated", async () => {
  const before = upstream.state.requests.length;
  const token = await issuer.token({ sub: "ai-agent", client_id: "ai-agent" }, { audience: AUDIENCE });
  expectProblem(assert, await gateway.send("GET", `/v1/tables/revenue?access_token=${token}`), 400, "credential_in_query");
  expectProblem(assert, await gateway.send("GET", `/v1/tables/revenue?Access_Token=x`, { headers: await bearer() }), 400, "credential_in_query");
  assert.equal(upstream.state.requests.length, before);
});

test("ordinary query parameters still reach the upstream unchanged", async () => {
  const answer = await gateway.send("GET", "/v1/tables/revenue?limit=10&method=GET&token=abc&q=a%20b", { headers: await bearer() });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(upstream.state.requests.at(-1).url, "/v1/tables/revenue?limit=10&method=GET&token=abc&q=a%20b");
});

test("a route's forward_query opts a named parameter back in, on that route only", async () => {
  const headers = await bearer();
  const answer = await optedIn.send("GET", "/v1/tables/revenue?access_token=upstream-own&_method=GET", { headers });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(upstream.state.requests.at(-1).url, "/v1/tables/revenue?access_token=upstream-own&_method=GET");
  // Not opted in: another parameter on that route, or the same one on another route.
  expectProblem(assert, await optedIn.send("GET", "/v1/tables/revenue?__method=GET", { headers }), 400, "override_refused");
  const other = await optedIn.send("POST", "/v1/query?access_token=x", { headers, body: "{}" });
  expectProblem(assert, other, 400, "credential_in_query");
});

test("a method workerd passes on but the gateway does not serve → 400 problem+json", async () => {
  const headers = await bearer();
  for (const method of ["PROPFIND", "TRACE", "PURGE", "QUERY"]) {
    expectProblem(assert, await gateway.send(method, "/v1/tables/revenue", { headers }), 400, "invalid_method");
  }
});

// What workerd answers itself, before any Worker code runs (README: "What workerd answers before the
// Worker runs"): no problem document and no decision line are possible for these.
function rawRequest(url, requestLine) {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), "127.0.0.1", () => socket.write(`${requestLine}\r\nHost: gateway.test\r\nConnection: close\r\n\r\n`));
    let data = "";
    socket.on("data", (chunk) => (data += chunk));
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
  });
}

test("workerd answers absolute-form targets (500) and unknown or lower-case methods (501), before the Worker", async () => {
  const lines = gateway.lines.length;
  for (const [line, status] of [
    ["GET http://evil.test/v1/tables/revenue HTTP/1.1", 500],
    ["OPTIONS * HTTP/1.1", 500],
    ["CONNECT gateway.test:443 HTTP/1.1", 500],
    ["get /v1/tables/revenue HTTP/1.1", 501],
    ["FOO /v1/tables/revenue HTTP/1.1", 501],
  ]) {
    const answer = await rawRequest(gateway.url, line);
    assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${line}: ${answer.slice(0, 80)}`);
    assert.doesNotMatch(answer, /problem\+json/i, line);
    if (status === 501) assert.match(answer.split("\r\n\r\n")[0], /content-type: text\/plain/i, line);
    else assert.match(answer, /\r\n\r\nInternal Server Error$/, line);
  }
  // The Worker ran for none of them (a known method and origin-form target still reaches it).
  expectProblem(assert, await gateway.send("PROPFIND", "/v1/tables/revenue"), 400, "invalid_method");
  assert.equal(gateway.lines.length, lines + 1, "one decision line: the PROPFIND's");
});
