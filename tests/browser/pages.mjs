// What a person does and sees in a real browser: Chromium from Debian's packages driven by
// playwright-core (nothing downloads a browser), signing in to the local Airflow through the
// OpenID provider's own pages. Every step leaves a screenshot under .state/browser/screenshots/.
import { mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
// As root, without a sandbox; the rest keep Chromium from calling Google's hosts (this machine has
// no network but the package registries, and each refused call would only slow it down).
export const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
// Airflow's UI on two shared cores can take a while to render a page; no step waits longer.
const STEP_TIMEOUT_MS = 90_000;

/** A fresh browser (its own empty profile in `dir`), as someone opening Airflow for the first time. */
export async function freshBrowser(dir) {
  mkdirSync(dir, { recursive: true });
  const context = await chromium.launchPersistentContext(mkdtempSync(join(dir, "profile-")), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  return context;
}

export class Steps {
  constructor(page, dir, person) {
    this.page = page;
    this.dir = dir;
    this.person = person;
    this.taken = [];
  }

  /** A screenshot named `<person>-<n>-<what>.png`; returns its file name. */
  async shot(what) {
    const name = `${this.person}-${this.taken.length + 1}-${what}.png`;
    await this.page.screenshot({ path: join(this.dir, name), fullPage: true });
    this.taken.push(name);
    return name;
  }
}

/** Opens Airflow, chooses the provider, signs in on its login and consent pages, and returns once
 * the browser is back at Airflow (signed in or not). */
export async function signIn(steps, airflow, issuer) {
  const { page, person } = steps;
  await page.goto(`${airflow}/`);
  const provider = page.getByText("Sign In with airgate");
  await provider.waitFor();
  await steps.shot("airflow-sign-in");
  await provider.click();
  const login = page.locator('input[name="login"]');
  await login.waitFor();
  if (!page.url().startsWith(`${issuer}/interaction/`)) {
    throw new Error(`expected the provider's sign-in page, got ${page.url()}`);
  }
  await login.fill(person);
  // The provider's development pages take any password for a known test user.
  await page.locator('input[name="password"]').fill("any password");
  await steps.shot("provider-sign-in");
  await page.getByRole("button", { name: "Sign-in" }).click();
  const consent = page.getByRole("button", { name: "Continue" });
  await consent.waitFor();
  await steps.shot("provider-consent");
  const back = page.waitForURL((url) => url.href.startsWith(airflow), { waitUntil: "load" });
  await consent.click();
  await back;
}

/** Each badge of the home page's Health section and what its tooltip says ("Status: Healthy"). */
export async function healthBadges(page) {
  const heading = page.getByRole("heading", { name: "Health" });
  const badges = page.getByTestId("state-badge");
  // The innermost block holding both the heading and badges: the Health section itself.
  const section = page.locator("div").filter({ has: heading }).filter({ has: badges }).last();
  await heading.waitFor();
  // The badges replace their loading placeholders once the health query answers.
  await section.getByTestId("state-badge").filter({ hasText: "Dag Processor" }).waitFor();
  const found = {};
  for (const badge of await section.getByTestId("state-badge").all()) {
    const name = (await badge.innerText()).trim();
    await badge.hover();
    const tip = page.getByRole("tooltip").filter({ hasText: "Status:" });
    await tip.waitFor();
    found[name] = (await tip.innerText()).split("\n")[0].replace("Status:", "").trim();
    await page.mouse.move(0, 0);
    await tip.waitFor({ state: "hidden" });
  }
  return found;
}
