// Runs a Worker in workerd directly (the npm `workerd` binary), without Miniflare's front end: a
// Cap'n Proto config generated from a gateway's wrangler.json (the same vars, KV namespace and
// Durable Object bindings), an in-memory KV service seeded by the caller, in-memory Durable Object
// storage, and an outbound network limited to loopback. Config format:
// https://github.com/cloudflare/workerd/blob/main/src/workerd/server/workerd.capnp
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, copyFileSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../tests/worker/helpers.mjs";

export const WORKERD = join(ROOT, "node_modules", ".bin", "workerd");

// The KV binding's wire protocol as workerd speaks it: GET/PUT/DELETE https://…/<urlencoded key>.
const KV_SERVICE = `
let store;
export default {
  async fetch(request, env) {
    store ??= new Map(Object.entries(env.SEED));
    const key = decodeURIComponent(new URL(request.url).pathname.slice(1));
    if (request.method === "GET") return store.has(key) ? new Response(store.get(key)) : new Response(null, { status: 404 });
    if (request.method === "PUT") {
      store.set(key, await request.text());
      return new Response(null);
    }
    if (request.method === "DELETE") {
      store.delete(key);
      return new Response(null);
    }
    return new Response(null, { status: 405 });
  },
};`;

const text = (value) => JSON.stringify(String(value));

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function binding(name, value) {
  if (value && typeof value === "object") return `(name = ${text(name)}, json = ${text(JSON.stringify(value))})`;
  return `(name = ${text(name)}, text = ${text(value)})`;
}

/**
 * Starts workerd with one worker. `script` (source text) or `bundle` (a file) is the main module;
 * `wrangler` (a gateway's wrangler.json) gives vars, KV and Durable Object bindings, overridden
 * by `vars`; `kv` seeds the KV namespace. Resolves {url, pid, lines, stop}.
 */
export async function startWorkerd({ script, bundle, wrangler = null, vars = {}, kv = {}, compatibilityDate, args = [], wrap = [] }) {
  const dir = mkdtempSync(join(tmpdir(), "airgate-workerd-"));
  if (bundle) copyFileSync(bundle, join(dir, "main.js"));
  else writeFileSync(join(dir, "main.js"), script);
  writeFileSync(join(dir, "kv.js"), KV_SERVICE);
  const port = await freePort();
  const bindings = Object.entries({ ...(wrangler?.vars || {}), ...vars }).map(([k, v]) => binding(k, v));
  for (const namespace of wrangler?.kv_namespaces || []) bindings.push(`(name = ${text(namespace.binding)}, kvNamespace = "kv")`);
  const classes = (wrangler?.durable_objects?.bindings || []).map((d) => d.class_name);
  for (const d of wrangler?.durable_objects?.bindings || []) {
    bindings.push(`(name = ${text(d.name)}, durableObjectNamespace = (className = ${text(d.class_name)}))`);
  }
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = (
      modules = [(name = "main.js", esModule = embed "main.js")],
      compatibilityDate = ${text(compatibilityDate)},
      bindings = [${bindings.join(", ")}],
      durableObjectNamespaces = [${classes.map((c) => `(className = ${text(c)}, uniqueKey = ${text(`bench-${c}`)})`).join(", ")}],
      durableObjectStorage = (inMemory = void),
      globalOutbound = "loopback",
    )),
    (name = "kv", worker = (
      modules = [(name = "kv.js", esModule = embed "kv.js")],
      compatibilityDate = ${text(compatibilityDate)},
      bindings = [(name = "SEED", json = ${text(JSON.stringify(kv))})],
    )),
    (name = "loopback", network = (allow = ["local", "private"])),
  ],
  sockets = [(name = "http", address = ${text(`127.0.0.1:${port}`)}, http = (), service = "main")],
);
`;
  writeFileSync(join(dir, "config.capnp"), config);
  const [command, ...prefix] = [...wrap, WORKERD];
  const proc = spawn(command, [...prefix, "serve", join(dir, "config.capnp"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines = { count: 0, output: "" };
  const count = (chunk) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines.count++;
    if (lines.output.length < 4000) lines.output += chunk;
  };
  proc.stdout.on("data", count);
  proc.stderr.on("data", count);
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      await new Promise((resolve) => proc.once("exit", resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready when the socket accepts a connection (polling a starting server's port).
  for (let i = 0; i < (wrap.length ? 2000 : 200); i++) {
    if (proc.exitCode !== null) break;
    const open = await new Promise((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return { url: `http://127.0.0.1:${port}`, pid: proc.pid, lines, stop };
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await stop();
  throw new Error(`workerd did not start: ${lines.output.slice(-2000)}`);
}
