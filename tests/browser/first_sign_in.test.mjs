// A person's first hour, in a real browser: `airgate up` starts the local environment on free ports
// with a fresh state folder, then three people sign in to Airflow through the OpenID provider's
// pages, each in a fresh Chromium. Screenshots of every step stay in .state/browser/screenshots/.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { freshBrowser, healthBadges, signIn, Steps } from "./pages.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = join(ROOT, ".state", "browser");
const SHOTS = join(OUT, "screenshots");
const STATE = join(OUT, "local");
const AIRGATE = join(ROOT, ".venv", "bin", "airgate");
const run = promisify(execFile);

// The DAGs in dags/, as their files name them: what the DAG list must show.
const DAG_IDS = readdirSync(join(ROOT, "dags"))
  .filter((name) => name.endsWith(".py"))
  .flatMap((name) => [...readFileSync(join(ROOT, "dags", name), "utf8").matchAll(/dag_id="(\w+)"/g)])
  .map((match) => match[1])
  .sort();

let airflow;
let issuer;

async function down() {
  await run(AIRGATE, ["down", "--state-dir", STATE], { cwd: ROOT, timeout: 180_000 }).catch(() => {});
}

before(async () => {
  await down(); // an environment an interrupted run left behind, before its state folder goes
  rmSync(OUT, { recursive: true, force: true });
  // No sample DAG run: the first sign-in needs the environment, not a run in it.
  const up = await run(AIRGATE, ["up", "--free-ports", "--no-demo", "--state-dir", STATE], {
    cwd: ROOT,
    env: { ...process.env, COLUMNS: "200" },
    timeout: 600_000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((failure) => failure);
  assert.equal(up.code ?? 0, 0, `airgate up failed:\n${up.stdout}\n${up.stderr}`);
  const ports = JSON.parse(readFileSync(join(STATE, "ports.json"), "utf8"));
  airflow = `http://127.0.0.1:${ports.airflow}`;
  issuer = `http://127.0.0.1:${ports.oidc}`;
});

after(down);

async function asPerson(t, person, body) {
  const context = await freshBrowser(join(OUT, "profiles"));
  try {
    const page = await context.newPage();
    const steps = new Steps(page, SHOTS, person);
    try {
      await body(page, steps);
    } catch (failure) {
      await steps.shot("failed").catch(() => {});
      throw failure;
    } finally {
      t.diagnostic(`screenshots: ${steps.taken.join(", ")}`);
    }
  } finally {
    await context.close();
  }
}

test("data-engineer-person signs in, every component is healthy, and the DAG list shows the example DAGs", async (t) => {
  assert.deepEqual(DAG_IDS, ["ingest_events", "rebuild_warehouse", "refresh_dashboards"]);
  await asPerson(t, "data-engineer-person", async (page, steps) => {
    await signIn(steps, airflow, issuer);
    await page.getByRole("heading", { name: "Welcome" }).waitFor();
    const badges = await healthBadges(page);
    await steps.shot("home");
    const report = await (await page.request.get(`${airflow}/api/v2/monitor/health`)).json();
    const unhealthy = Object.entries(report).filter(([, entry]) => entry.status !== "healthy");
    assert.deepEqual(unhealthy, [], "Airflow's health endpoint reports a component not healthy");
    assert.equal(Object.keys(badges).length, Object.keys(report).length, JSON.stringify(badges));
    assert.deepEqual(
      Object.entries(badges).filter(([, status]) => status !== "Healthy"),
      [],
      "the home page shows a component not healthy",
    );

    await page.getByRole("link", { name: "Dags", exact: true }).click();
    for (const dagId of DAG_IDS) await page.getByRole("link", { name: dagId, exact: true }).waitFor();
    await steps.shot("dag-list");
    // Mapped to Airflow's User role: no Security menu (user administration).
    assert.equal(await page.getByRole("button", { name: "Security" }).count(), 0);
  });
});

test("platform-admin-person reaches the user administration", async (t) => {
  await asPerson(t, "platform-admin-person", async (page, steps) => {
    await signIn(steps, airflow, issuer);
    await page.getByRole("button", { name: "Security" }).click();
    await page.getByRole("menuitem", { name: "Users" }).click();
    // The React UI frames FAB's own user list.
    const users = page.frameLocator("iframe").first();
    const row = users.getByRole("row").filter({ hasText: "platform-admin-person" });
    await row.waitFor();
    await steps.shot("user-administration");
    assert.match(await users.getByText("List Users").innerText(), /List Users/);
    assert.match(await row.innerText(), /platform-admin-person@airgate\.localhost\s+True\s+\[Admin\]/);
  });
});

test("analyst-person is told they have no Airflow role for their groups, and which groups give one", async (t) => {
  await asPerson(t, "analyst-person", async (page, steps) => {
    const refusal = page.waitForResponse((answer) => answer.url().includes("/auth/oauth-authorized/"));
    await signIn(steps, airflow, issuer);
    assert.equal((await refusal).status(), 403);
    await page.getByRole("heading", { name: "No Airflow role for your groups" }).waitFor();
    await steps.shot("no-airflow-role");
    const text = await page.locator("body").innerText();
    assert.match(text, /You signed in as analyst-person@airgate\.localhost, but your groups \(analytics\) give no/);
    const rows = await page.locator("#airgate-role-groups tbody tr").allInnerTexts();
    assert.deepEqual(
      rows.map((row) => row.split("\t").map((cell) => cell.trim())),
      [
        ["data-engineering", "User"],
        ["platform", "Admin"],
      ],
    );
    assert.doesNotMatch(text, /Invalid login/);
    // Not signed in: the UI's API answers 401.
    assert.equal((await page.request.get(`${airflow}/api/v2/dags`)).status(), 401);
  });
});
