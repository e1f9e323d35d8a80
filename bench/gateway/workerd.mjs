// Runs a Worker in workerd directly (the npm `workerd` binary), without Miniflare's front end: a
// Cap'n Proto config generated from a gateway's wrangler.json (the same vars, KV namespace and
// Durable Object bindings), an in-memory KV service seeded by the caller, in-memory Durable Object
// storage, and an outbound network limited to loopback. Config format:
// https://github.com/cloudflare/workerd/blob/main/src/workerd/server/workerd.capnp
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, copyFileSync, rmSync, openSync, closeSync, readFileSync, existsSync } from "node:fs";
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
export async function startWorkerd({ script, bundle, wrangler = null, vars = {}, kv = {}, compatibilityDate, wrap = [] }) {
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
  // Its output (the decision lines) goes to a file, as to a log collector: a pipe read by this
  // process would add a reader's wake-up per line to the 2 cores the servers and wrk share.
  const log = join(dir, "output.log");
  const sink = openSync(log, "w");
  const [command, ...prefix] = [...wrap, WORKERD];
  const proc = spawn(command, [...prefix, "serve", join(dir, "config.capnp")], { stdio: ["ignore", sink, sink] });
  closeSync(sink);
  // Read from the file while workerd runs (its stdio may hold a last partial buffer until it
  // exits), and kept once it has stopped and its folder is gone.
  let kept = null;
  const output = () => kept ?? (existsSync(log) ? readFileSync(log, "utf8") : "");
  const lines = {
    get count() {
      const text = output();
      let count = 0;
      for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) count++;
      return count;
    },
    get output() {
      return output().slice(0, 4000);
    },
  };
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      await new Promise((resolve) => proc.once("exit", resolve));
    }
    kept ??= output();
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
  const failure = output().slice(-2000);
  throw new Error(`workerd did not start: ${failure}`);
}
