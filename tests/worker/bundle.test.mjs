// The bundle the build pipeline produces: within the 64 KiB budget (minified, jose's jwtVerify and createLocalJWKSet included) for every
// gateway of every mode, and the manifest describes exactly those bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { buildStack, readArtifacts } from "./helpers.mjs";

const BUDGET = 64 * 1024;

for (const stack of ["local", "dev"]) {
  for (const gateway of ["ingest", "warehouse", "trigger"]) {
    test(`${stack}/${gateway}: bundle ≤ 64 KiB, carries jose's verifier, and matches its manifest`, () => {
      const { bundle, manifest, wrangler } = readArtifacts(buildStack(stack), gateway);
      assert.ok(bundle.length <= BUDGET, `${bundle.length} bytes > ${BUDGET}`);
      assert.equal(manifest.bundle_bytes, bundle.length);
      assert.equal(manifest.bundle_sha256, createHash("sha256").update(bundle).digest("hex"));
      const text = bundle.toString("utf8");
      assert.ok(!text.includes("{{") && !text.includes("{%"), "no template syntax left");
      assert.match(text, /export\s*\{[^}]*RateLimiter/);
      assert.match(text, /export\s*\{[^}]*IdempotencyStore/);
      assert.equal(wrangler.main, "gateway.js");
      // Messages only jose's jwtVerify and createLocalJWKSet carry: the token check is jose's.
      assert.ok(text.includes("JSON Web Key Set malformed"), "jose's createLocalJWKSet");
      assert.ok(text.includes("JWTs MUST NOT use unencoded payload"), "jose's jwtVerify");
    });
  }
}
