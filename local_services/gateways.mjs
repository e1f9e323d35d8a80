// Hosts every gateway Worker of the local stack in workerd, through Miniflare, one port each.
// The Workers are the bundles `airgate build` produced (the same bytes as a deploy would upload);
// their bindings come from each build's wrangler.json, with the local targets (issuer, upstream)
// and secrets laid over them. KV and Durable Object state persist in the state folder.
//
// Usage: node gateways.mjs <config.json>   (written by `airgate up`, see infra/local/)
import { readFileSync, writeFileSync, renameSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { timingSafeEqual, createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));

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
    host: "127.0.0.1",
    port: gateway.port,
    cf: false,
    log: new Log(LogLevel.WARN),
  };
}

const running = [];
const namespaces = []; // each gateway's POLICY KV namespace: the admin endpoint writes to them all
for (const gateway of config.gateways) {
  const mf = new Miniflare(optionsFor(gateway));
  const url = await mf.ready;
  const kv = await mf.getKVNamespace("POLICY");
  const policy = readFileSync(join(gateway.dir, "policy.json"), "utf8").trim();
  const manifest = JSON.parse(readFileSync(join(gateway.dir, "manifest.json"), "utf8"));
  // Immutable, versioned entry: the Worker is bound to exactly this version.
  await kv.put(manifest.policy_kv_key, policy);
  running.push(mf);
  namespaces.push(kv);
  console.log(JSON.stringify({ event: "ready", gateway: gateway.name, url: url.href }));
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
  console.log(JSON.stringify({ event: "admin", url: `http://127.0.0.1:${server.address().port}` }));
  return server;
}
if (config.admin) await serveAdmin();

async function stop() {
  await Promise.allSettled(running.map((mf) => mf.dispose()));
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
