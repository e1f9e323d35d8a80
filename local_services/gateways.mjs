// Hosts every gateway Worker of the local stack in workerd, through Miniflare, one port each.
// The Workers are the bundles `airgate build` produced (the same bytes as a deploy would upload);
// their bindings come from each build's wrangler.json, with the local targets (issuer, upstream)
// and secrets laid over them. KV and Durable Object state persist in the state folder.
//
// Usage: node gateways.mjs <config.json>   (written by `airgate up`, see infra/local/)
//
// Output: workerd's stdout and stderr (the decision lines) are forwarded whole lines at a time and
// written without blocking (say). Miniflare's default prints each line with console.log, a blocking
// write into the pipe supervisord reads: when supervisord falls behind (a busy machine, ~2k lines a
// second under a flood) this process blocks, stops reading workerd's output, and workerd then blocks
// on its own log writes, stalling every client of the gateway. (A way to stall, removed; not shown
// here to be the cause of the 0.3-0.9 s.)
import { readFileSync, writeFileSync, renameSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { timingSafeEqual, createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));

// Whole lines to our stdout, written without blocking: Node makes a stdout pipe blocking, so it is
// switched back (libuv then queues what the reader has not taken yet). If the reader falls more than
// MAX_QUEUED bytes behind, lines are dropped (and counted in one note line once it catches up)
// rather than held without bound: a log collector's choice, never the gateways'.
const MAX_QUEUED = 8 * 1024 * 1024;
process.stdout._handle?.setBlocking?.(false);
let dropped = 0;
function say(lines) {
  const text = typeof lines === "string" ? Buffer.from(lines) : lines;
  if (process.stdout.writableLength > MAX_QUEUED) {
    for (let i = text.indexOf(10); i !== -1; i = text.indexOf(10, i + 1)) dropped++;
    return;
  }
  if (dropped) {
    process.stdout.write(JSON.stringify({ event: "log_lines_dropped", lines: dropped }) + "\n");
    dropped = 0;
  }
  process.stdout.write(text);
}
function forwardLines(stream) {
  let partial = null;
  stream.on("data", (chunk) => {
    const data = partial ? Buffer.concat([partial, chunk]) : chunk;
    const end = data.lastIndexOf(10) + 1;
    partial = end < data.length ? data.subarray(end) : null;
    if (end) say(data.subarray(0, end));
  });
}

function optionsFor(gateway) {
  const wrangler = JSON.parse(readFileSync(join(gateway.dir, "wrangler.json"), "utf8"));
  const vars = { ...wrangler.vars, ...gateway.vars };
  const bindings = {};
  for (const [name, value] of Object.entries(vars)) {
    // Miniflare passes strings as text bindings and objects as JSON bindings, as Cloudflare does.
    bindings[name] = value;
  }
  Object.assign(bindings, gateway.secrets);
  // The key-set MAC secret a deploy makes per Worker (EdgeGateway): here one per run, so a KV copy
  // left in the state folder by an earlier run is not trusted and the key set is fetched again.
  bindings.JWKS_KV_MAC_KEY ??= randomBytes(32).toString("base64url");
  return {
    name: wrangler.name,
    modules: true,
    scriptPath: join(gateway.dir, wrangler.main),
    modulesRoot: gateway.dir,
    compatibilityDate: wrangler.compatibility_date,
    bindings,
    kvNamespaces: Object.fromEntries(wrangler.kv_namespaces.map((kv) => [kv.binding, kv.id])),
    durableObjects: Object.fromEntries(
      wrangler.durable_objects.bindings.map((d) => [d.name, d.class_name]),
    ),
    kvPersist: join(config.persist_dir, "kv"),
    durableObjectsPersist: join(config.persist_dir, "do"),
    // The gateway's port is a socket straight to its Worker (workerd's own HTTP server), not
    // Miniflare's entry Worker, which runs a second Worker invocation per request (routing, error
    // pages, request logs): a ~1.8k req/s flood took 62-68 % of a core through it and 39-41 % without
    // (bench/noisy_neighbour), and every other client queues behind that work on the one runtime
    // thread. Miniflare's entry socket gets a free port.
    unsafeDirectSockets: [{ host: "127.0.0.1", port: gateway.port }],
    host: "127.0.0.1",
    port: 0,
    cf: false,
    log: new Log(LogLevel.WARN),
    handleRuntimeStdio(stdout, stderr) {
      forwardLines(stdout);
      forwardLines(stderr);
    },
  };
}

const running = [];
const namespaces = []; // each gateway's POLICY KV namespace: the admin endpoint writes to them all
for (const gateway of config.gateways) {
  const mf = new Miniflare(optionsFor(gateway));
  await mf.ready;
  const url = await mf.unsafeGetDirectURL();
  const kv = await mf.getKVNamespace("POLICY");
  const policy = readFileSync(join(gateway.dir, "policy.json"), "utf8").trim();
  const manifest = JSON.parse(readFileSync(join(gateway.dir, "manifest.json"), "utf8"));
  // Immutable, versioned entry: the Worker is bound to exactly this version.
  await kv.put(manifest.policy_kv_key, policy);
  running.push(mf);
  namespaces.push(kv);
  say(JSON.stringify({ event: "ready", gateway: gateway.name, url: url.href }) + "\n");
}

// The local writer of the `control` KV document (`airgate revoke` / `airgate kill-switch`): a
// loopback-only HTTP endpoint on a free port, behind a bearer token from the state folder. Each
// gateway has its own KV namespace (as at Cloudflare), so a write goes to every one of them.
// GET /kv/control → 200 text (404 if unset); PUT /kv/control → 204. No other key is writable.
const digest = (text) => createHash("sha256").update(text).digest();
async function serveAdmin() {
  const server = createServer(async (request, response) => {
    const given = digest(request.headers.authorization || "");
    if (!timingSafeEqual(given, digest(`Bearer ${config.admin.token}`))) {
      response.writeHead(401).end();
      return;
    }
    if (request.url !== "/kv/control") {
      response.writeHead(404).end();
      return;
    }
    try {
      if (request.method === "GET") {
        const value = await namespaces[0].get("control");
        if (value === null) response.writeHead(404).end();
        else response.writeHead(200, { "content-type": "application/json" }).end(value);
      } else if (request.method === "PUT") {
        let body = "";
        for await (const chunk of request) body += chunk;
        JSON.parse(body); // the writer validates the schema; refuse non-JSON outright
        await Promise.all(namespaces.map((kv) => kv.put("control", body)));
        response.writeHead(204).end();
      } else {
        response.writeHead(405).end();
      }
    } catch (error) {
      response.writeHead(400, { "content-type": "text/plain" }).end(String(error));
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  mkdirSync(config.persist_dir, { recursive: true });
  const file = join(config.persist_dir, "admin.json");
  writeFileSync(`${file}.tmp`, JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
  renameSync(`${file}.tmp`, file);
  say(JSON.stringify({ event: "admin", url: `http://127.0.0.1:${server.address().port}` }) + "\n");
  return server;
}
if (config.admin) await serveAdmin();

async function stop() {
  await Promise.allSettled(running.map((mf) => mf.dispose()));
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
