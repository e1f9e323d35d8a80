// The bundle the build pipeline produces: within the 32 KiB budget (minified, with jose) for every
// gateway of every mode, and the manifest describes exactly those bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { buildStack, readArtifacts } from "./helpers.mjs";

const BUDGET = 32 * 1024;

for (const stack of ["local", "dev"]) {
  for (const gateway of ["ingest", "warehouse", "trigger"]) {
    test(`${stack}/${gateway}: bundle ≤ 32 KiB and matches its manifest`, () => {
      const { bundle, manifest, wrangler } = readArtifacts(buildStack(stack), gateway);
      assert.ok(bundle.length <= BUDGET, `${bundle.length} bytes > ${BUDGET}`);
      assert.equal(manifest.bundle_bytes, bundle.length);
      assert.equal(manifest.bundle_sha256, createHash("sha256").update(bundle).digest("hex"));
      const text = bundle.toString("utf8");
      assert.ok(!text.includes("{{") && !text.includes("{%"), "no template syntax left");
      assert.match(text, /export\s*\{[^}]*RateLimiter/);
      assert.match(text, /export\s*\{[^}]*IdempotencyStore/);
      assert.equal(wrangler.main, "gateway.js");
    });
  }
}
