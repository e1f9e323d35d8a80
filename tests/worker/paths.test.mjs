// Path handling at the `warehouse` gateway (local stack): a corpus of tricky paths and a generated
// fuzz. Whatever the path, nothing outside a route's grant reaches the upstream, the upstream sees
// exactly the normalised path, and every decision agrees with the Python reference evaluator
// (infra/policy/evaluate.py) on the normalised segments.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import fc from "fast-check";
import { ROOT, buildStack, readArtifacts, startIssuer, startUpstream, startGateway, pointAt, expectProblem } from "./helpers.mjs";

const AUDIENCE = "http://airgate.localhost";
let issuer, upstream, gateway, artifacts, agent, admin;
const decisions = []; // [method, normalised path, roles, logged reason]

before(async () => {
  artifacts = readArtifacts(buildStack("local"), "warehouse");
  issuer = await startIssuer();
  upstream = await startUpstream("warehouse");
  gateway = await startGateway(artifacts, {
    vars: pointAt(artifacts.wrangler, { issuer, upstream, audience: AUDIENCE }),
    secrets: { UPSTREAM_CREDENTIAL: "t" },
  });
  agent = { authorization: `Bearer ${await issuer.token({ sub: "ai-agent", client_id: "ai-agent" }, { audience: AUDIENCE })}` };
  admin = { authorization: `Bearer ${await issuer.token({ sub: "u-1", groups: ["platform"] }, { audience: AUDIENCE })}` };
});

after(async () => {
  await gateway?.dispose();
  await issuer?.close();
  await upstream?.close();
});

async function call(method, path, headers = agent) {
  const before = upstream.state.requests.length;
  const answer = await gateway.send(method, path, { headers, body: method === "POST" ? "{}" : undefined });
  const forwarded = upstream.state.requests.slice(before);
  if (answer.log?.path) decisions.push([method, answer.log.path, answer.log.roles, answer.log.reason]);
  return { answer, forwarded };
}

// [method, raw path, status, reason, path the upstream must see]
const CORPUS = [
  ["GET", "/v1/tables/revenue", 200, "allowed", "/v1/tables/revenue"],
  ["GET", "/v1/tables", 200, "allowed", "/v1/tables"],
  ["GET", "/v1/tables/", 200, "allowed", "/v1/tables"],
  ["GET", "/v1/tables/revenue/", 200, "allowed", "/v1/tables/revenue"],
  ["GET", "//v1//tables///revenue", 200, "allowed", "/v1/tables/revenue"],
  ["GET", "/v1/./tables/./revenue", 200, "allowed", "/v1/tables/revenue"],
  ["GET", "/../../v1/tables/revenue", 200, "allowed", "/v1/tables/revenue"],
  ["GET", "/v1/tables/x%20y", 200, "allowed", "/v1/tables/x%20y"],
  ["GET", "/v1/tables/%C3%A9t%C3%A9", 200, "allowed", "/v1/tables/%C3%A9t%C3%A9"],
  ["GET", "/v1/tables/%41", 200, "allowed", "/v1/tables/A"],
  ["GET", "/v1/tables/a%252Fb", 200, "allowed", "/v1/tables/a%252Fb"],
  ["GET", "/v1/tables/%252e%252e/admin", 200, "allowed", "/v1/tables/%252e%252e/admin"],
  ["GET", "/v1/tables/revenue?limit=5", 200, "allowed", "/v1/tables/revenue"],
  ["GET", "/v1/tables/../admin/users", 403, "role_not_allowed"],
  ["GET", "/v1/tables/%2e%2e/admin/users", 403, "role_not_allowed"],
  ["GET", "/v1/tables/%2E%2E/admin/users", 403, "role_not_allowed"],
  ["GET", "/v1/tables/.%2e/admin/users", 403, "role_not_allowed"],
  ["GET", "/v1/tables/%2e./%2e%2e/v1/admin", 403, "role_not_allowed"],
  ["GET", "/v1/tables/..\\admin", 403, "role_not_allowed"],
  ["GET", "/v1/tables/a%2Fb", 400, "invalid_path"],
  ["GET", "/v1/tables/a%2fb", 400, "invalid_path"],
  ["GET", "/v1/tables/..%2Fadmin", 400, "invalid_path"],
  ["GET", "/v1/tables/a%5Cb", 400, "invalid_path"],
  ["GET", "/v1/tables/%00", 400, "invalid_path"],
  ["GET", "/v1/tables/a%0Ab", 400, "invalid_path"],
  ["GET", "/v1/tables/%7F", 400, "invalid_path"],
  ["GET", "/v1/tables/%ZZ", 400, "invalid_path"],
  ["GET", "/v1/tables/%E9", 400, "invalid_path"],
  ["GET", "/v1/tables/..;/admin/users", 400, "invalid_path"],
  ["GET", "/v1/tables/.;x/admin", 400, "invalid_path"],
  ["GET", "/V1/tables/revenue", 404, "no_route"],
  ["GET", "/v1/TABLES/revenue", 404, "no_route"],
  ["GET", "/v1/tables;x=1/revenue", 404, "no_route"],
  ["GET", "/v1/admin;/users", 404, "no_route"],
  ["GET", "/v1/tablesX", 404, "no_route"],
  ["GET", "/", 404, "no_route"],
  ["GET", "/v1", 404, "no_route"],
  ["GET", "/v1/query", 405, "method_not_allowed"],
  ["GET", "/v1/query/", 405, "method_not_allowed"],
  ["POST", "/v1/query", 200, "allowed", "/v1/query"],
  ["POST", "/v1/query/", 200, "allowed", "/v1/query"],
  ["POST", "/v1//query", 200, "allowed", "/v1/query"],
  ["POST", "/v1/Query", 404, "no_route"],
  ["POST", "/v1/tables/x/../../query", 200, "allowed", "/v1/query"],
  ["POST", "/v1/tables/x", 405, "method_not_allowed"],
  ["DELETE", "/v1/admin/users", 403, "role_not_allowed"],
];

for (const [method, path, status, reason, seen] of CORPUS) {
  test(`${method} ${path} → ${status} ${reason}`, async () => {
    const { answer, forwarded } = await call(method, path);
    if (status === 200) {
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.log.reason, reason);
      assert.equal(forwarded.length, 1);
      assert.equal(forwarded[0].path, seen);
      assert.equal(answer.log.path, seen);
      if (path.includes("?")) assert.equal(forwarded[0].url, seen + "?" + path.split("?")[1]);
    } else {
      expectProblem(assert, answer, status, reason);
      assert.equal(forwarded.length, 0, "nothing reaches the upstream");
    }
  });
}

test("the platform admin reaches /v1/admin/** but not through encoded separators", async () => {
  let { answer, forwarded } = await call("DELETE", "/v1/tables/../admin/users/7", admin);
  assert.equal(answer.status, 200, answer.text);
  assert.equal(forwarded[0].path, "/v1/admin/users/7");
  ({ answer, forwarded } = await call("GET", "/v1/admin%2Fusers", admin));
  expectProblem(assert, answer, 400, "invalid_path");
  assert.equal(forwarded.length, 0);
});

const PIECES = [
  "v1", "v1", "tables", "tables", "query", "admin", "users", "x", "", ".", "..", "%2e", "%2e%2e", "%2E.",
  ".%2e", "%2f", "%2F", "%5c", "\\", ";", "a;b", "..;", "%00", "%0d", "%252e%252e", "%252f", "V1", "Tables",
  "%41", "%C3%A9", "%E9", "%", "%zz", "~", "%7e", "*", "**", "{id}", "?q=1", "#frag", "%3F", "%23", "@", ":",
];
const rawPath = fc
  .tuple(fc.array(fc.constantFrom(...PIECES), { minLength: 0, maxLength: 7 }), fc.boolean(), fc.boolean())
  .map(([pieces, leadingDouble, trailing]) => (leadingDouble ? "//" : "/") + pieces.join("/") + (trailing ? "/" : ""));

const AGENT_GRANT = {
  GET: (p) => p === "/v1/tables" || p.startsWith("/v1/tables/"),
  POST: (p) => p === "/v1/query",
  DELETE: () => false,
  PUT: () => false,
};

test("generated paths: nothing outside the grant reaches the upstream, which sees the normalised path", async () => {
  await fc.assert(
    fc.asyncProperty(rawPath, fc.constantFrom("GET", "POST", "DELETE", "PUT"), async (path, method) => {
      const { answer, forwarded } = await call(method, path);
      assert.ok(answer.status < 500, `${method} ${path}: ${answer.status} ${answer.text}`);
      assert.ok(answer.log, "one decision line");
      if (answer.status === 200) {
        assert.equal(forwarded.length, 1);
        const seen = forwarded[0].path;
        assert.ok(AGENT_GRANT[method](seen), `${method} ${path} reached ${seen}`);
        assert.equal(seen, answer.log.path);
        for (const segment of seen.split("/").slice(1)) {
          assert.ok(!/%2f|%5c/i.test(segment) || /%25/.test(segment), `${seen}: no encoded separator`);
          assert.ok(![".", ".."].includes(decodeURIComponent(segment)), `${seen}: no dot segment`);
        }
      } else {
        assert.equal(forwarded.length, 0, `${method} ${path} → ${answer.status} but reached the upstream`);
        assert.match(answer.headers["content-type"], /problem\+json/);
      }
    }),
    { numRuns: 1000, seed: Number(process.env.FUZZ_SEED ?? 20261129) },
  );
});

test("every decision agrees with the Python reference evaluator", () => {
  assert.ok(decisions.length > 400, `${decisions.length} decisions collected`);
  const script = `
import json, sys
from infra.policy.evaluate import evaluate
data = json.load(sys.stdin)
out = []
for method, path, roles in data["cases"]:
    segments = tuple(p for p in path.split("/") if p)
    out.append(evaluate(data["policy"], method, segments, frozenset(roles)).decision)
print(json.dumps(out))
`;
  // The reference evaluator works on decoded segments: decode the logged (re-encoded) path.
  const cases = decisions.map(([method, path, roles]) => [
    method,
    path.split("/").map((s) => decodeURIComponent(s)).join("/"),
    roles,
  ]);
  const slashFree = cases.every(([, path]) => !path.split("/").some((s) => s.includes("/")));
  assert.ok(slashFree);
  const verdicts = JSON.parse(
    execFileSync(join(ROOT, ".venv", "bin", "python"), ["-c", script], {
      cwd: ROOT,
      input: JSON.stringify({ policy: JSON.parse(artifacts.policyText), cases }),
    }).toString(),
  );
  const expected = { allow: "allowed" };
  decisions.forEach(([method, path, , reason], i) => {
    assert.equal(reason, expected[verdicts[i]] ?? verdicts[i], `${method} ${path}`);
  });
});
