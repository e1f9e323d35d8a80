// Fairness under a flood in the local environment, as issue 19 measured it: one client (ai-agent)
// floods the warehouse gateway's 600/min `tables` route with wrk (16 connections, nearly all 429)
// at about RATE requests a second (default 2300, the flood; each connection paced by a wrk
// `delay`, since an unpaced flood simply takes all the one runtime thread has, however cheap it is),
// while another client (airflow-worker) sends one request at a time, first on a new connection
// per request, then on one kept-alive connection. Prints each client kind's p50 alone and during
// the flood, their ratio (goal ≤ 3×), the flood's rate and the load average. A report, not a test.
//
// Usage: bench/noisy_neighbour [seconds-per-phase] [--state-dir .state/local] [--rate 2300]
// Needs a running local environment and `wrk` (apt-get install wrk). Loopback only; ends by itself.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const args = process.argv.slice(2);
const stateAt = args.indexOf("--state-dir");
const STATE = stateAt >= 0 ? args.splice(stateAt, 2)[1] : join(ROOT, ".state", "local");
const rateAt = args.indexOf("--rate");
const RATE = rateAt >= 0 ? Number(args.splice(rateAt, 2)[1]) : 2300;
const SECONDS = Math.min(Math.max(Number(args[0] || 6), 2), 60);
const PATH = "/v1/tables/revenue";
const GAP_MS = 50; // the neighbour's pace: 20 requests a second, within its own 600/min bucket

const ports = JSON.parse(readFileSync(join(STATE, "ports.json"), "utf8"));
const port = ports.gateways.warehouse;
const token = (client) =>
  execFileSync(join(ROOT, ".venv", "bin", "airgate"), ["token", "--client", client, "--state-dir", STATE], { encoding: "utf8" }).trim();
const flooder = token("ai-agent");
const neighbour = token("airflow-worker");

function once(agent) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request({ host: "127.0.0.1", port, path: PATH, agent, headers: { authorization: `Bearer ${neighbour}` } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    });
    req.setTimeout(10000, () => req.destroy(new Error("no answer in 10 s")));
    // A kept-alive socket the server closed as it was reused: retried once, as Node's docs advise.
    req.on("error", (error) => (req.reusedSocket && error.code === "ECONNRESET" ? once(agent).then(resolve, reject) : reject(error)));
    req.end();
  });
}

// The neighbour's p50 over `seconds`, one request at a time, GAP_MS apart.
async function p50(keepAlive, seconds) {
  const agent = new Agent({ keepAlive, maxSockets: 1 });
  const times = [];
  const until = Date.now() + seconds * 1000;
  try {
    while (Date.now() < until) {
      const { status, ms } = await once(agent);
      if (status !== 200) throw new Error(`the neighbour got ${status}: its own bucket should never run dry`);
      times.push(ms);
      await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    }
  } finally {
    agent.destroy();
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length / 2)], n: times.length };
}

function flood(seconds) {
  const script = join(mkdtempSync(join(tmpdir(), "airgate-flood-")), "pace.lua");
  // Each connection waits `delay` ms after an answer; ~2 ms of answer time come on top of it.
  writeFileSync(script, `function delay() return ${Math.max(0, Math.round(16000 / RATE) - 2)} end\n`);
  const child = spawn("wrk", ["-t2", "-c16", `-d${seconds}s`, "--timeout", "5s", "-s", script, "-H", `Authorization: Bearer ${flooder}`, `http://127.0.0.1:${port}${PATH}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const done = new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`wrk: ${error.message} (apt-get install wrk)`)));
    child.on("exit", () => resolve(out));
  });
  // SIGINT: wrk stops and prints its summary.
  return { done, stop: () => child.kill("SIGINT") };
}

// Where the time goes: CPU per process of this local environment (the tree under its supervisord,
// so other users' processes on a shared machine are not counted), of wrk and of this bench, over the
// flood, from /proc (utime + stime of all threads, in ticks of 1/100 s).
const SUPERVISORD = readFileSync(join(STATE, "supervisord.pid"), "utf8").trim();
function cpuByProcess() {
  const seen = new Map();
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      seen.set(pid, { ppid: fields[1], ticks: Number(fields[11]) + Number(fields[12]), args });
    } catch {}
  }
  const ours = (pid) => {
    for (let at = pid, hops = 0; at && at !== "0" && hops < 20; at = seen.get(at)?.ppid, hops++) {
      if (at === SUPERVISORD || at === String(process.pid)) return true;
    }
    return false;
  };
  return new Map([...seen].filter(([pid]) => ours(pid)));
}
const KINDS = [
  ["wrk (the flood itself)", (a) => /(^|\/)wrk$/.test(a[0] || "")],
  ["workerd (Workers runtime)", (a) => /workerd/.test(a[0] || "")],
  ["gateways.mjs (Miniflare host, Node)", (a) => a.some((x) => x.endsWith("gateways.mjs"))],
  ["supervisord (reads every log pipe)", (a) => a.some((x) => x.endsWith("supervisord"))],
  ["echo upstreams (Python)", (a) => a.some((x) => x.endsWith("echo_upstream.py"))],
  ["OpenID provider, Airflow, others", () => true],
];
function cpuReport(before, after, seconds) {
  const totals = new Map(KINDS.map(([name]) => [name, 0]));
  for (const [pid, now] of after) {
    if (pid === String(process.pid)) continue;
    const kind = KINDS.find(([, match]) => match(now.args));
    totals.set(kind[0], totals.get(kind[0]) + now.ticks - (before.get(pid)?.ticks ?? 0));
  }
  return [...totals].map(([name, ticks]) => `  ${name.padEnd(38)} ${((ticks / 100 / seconds) * 100).toFixed(0).padStart(4)} % of a core`);
}

const fmt = (value) => value.toFixed(1).padStart(7);
await once(new Agent({ keepAlive: false })); // warm: isolate, key set, policy
const quiet = { fresh: await p50(false, SECONDS), kept: await p50(true, SECONDS) };
const load = loadavg();
const running = flood(SECONDS * 2 + 10);
await new Promise((resolve) => setTimeout(resolve, 1000)); // let the flood reach its rate and drain the bucket
let during, cpu;
const cpuBefore = cpuByProcess();
const floodStart = Date.now();
try {
  during = { fresh: await p50(false, SECONDS), kept: await p50(true, SECONDS) };
} finally {
  cpu = cpuReport(cpuBefore, cpuByProcess(), (Date.now() - floodStart) / 1000);
  running.stop();
}
const out = await running.done;
const rate = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? "?";
const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? "0";
console.log(`noisy neighbour, warehouse gateway (port ${port}), ${SECONDS} s per phase`);
console.log(`load average before the flood: ${load.map((v) => v.toFixed(2)).join(" ")}`);
console.log(`flood: ai-agent, wrk 16 connections paced for ~${RATE} req/s: ${rate} req/s (${non2xx} non-2xx)`);
console.log("neighbour (airflow-worker)     quiet p50   flood p50   ratio   goal");
console.log(`CPU during the flood (2 cores = 200 %):\n${cpu.join("\n")}`);
for (const [name, key] of [["new connection per request", "fresh"], ["one kept-alive connection", "kept"]]) {
  const ratio = during[key].p50 / quiet[key].p50;
  console.log(`${name.padEnd(28)} ${fmt(quiet[key].p50)} ms ${fmt(during[key].p50)} ms ${ratio.toFixed(1).padStart(6)}×   ≤ 3× ${ratio <= 3 ? "met" : "NOT met"}   (n=${quiet[key].n}/${during[key].n})`);
}
