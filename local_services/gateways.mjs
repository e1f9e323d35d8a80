// Hosts every gateway Worker of the local stack in workerd, through Miniflare, one port each.
// The Workers are the bundles `airgate build` produced (the same bytes as a deploy would upload);
// their bindings come from each build's wrangler.json, with the local targets (issuer, upstream)
// and secrets laid over them. KV and Durable Object state persist in the state folder.
//
// Usage: node gateways.mjs <config.json>   (written by `airgate up`, see infra/local/)
import { readFileSync } from "node:fs";
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
for (const gateway of config.gateways) {
  const mf = new Miniflare(optionsFor(gateway));
  const url = await mf.ready;
  const kv = await mf.getKVNamespace("POLICY");
  const policy = readFileSync(join(gateway.dir, "policy.json"), "utf8").trim();
  const manifest = JSON.parse(readFileSync(join(gateway.dir, "manifest.json"), "utf8"));
  // Immutable, versioned entry: the Worker is bound to exactly this version.
  await kv.put(manifest.policy_kv_key, policy);
  running.push(mf);
  console.log(JSON.stringify({ event: "ready", gateway: gateway.name, url: url.href }));
}

async function stop() {
  await Promise.allSettled(running.map((mf) => mf.dispose()));
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
