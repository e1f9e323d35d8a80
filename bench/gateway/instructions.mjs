// Instructions per request (valgrind's callgrind), where wrk's req/s varies by ±10 % from run to
// run: the pass-through Worker and the full gateway in workerd, each warmed up, then N requests over
// 4 keep-alive connections counted. Only workerd's main thread is counted (its C++ runtime, V8, the
// gateway's JavaScript; not the kernel, not V8's background GC and compiler threads): counting
// every thread, runs of one build varied by 10 %; the main thread alone, by about 5 %.
// Not a test; needs `apt-get install valgrind`.
//   bench/gateway/instructions [N]            pass-through and gateway
//   BASE_BUNDLE=old/gateway.js ...            also an earlier build of the gateway, for a change's effect
// Under callgrind V8 leaves most of the gateway's JavaScript in its baseline tier, so JavaScript
// weighs more here than in a real run; calls into the runtime (Headers, fetch, Response) weigh the same.
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Agent, request as httpRequest } from "node:http";
import { buildStack, readArtifacts, startIssuer } from "../../tests/worker/helpers.mjs";
import { PATH, callerToken, leanUpstream, workerdGateway, workerdPassThrough } from "./setup.mjs";

const N = Number(process.argv[2] || 800);
const WARM_UP = 800;

const artifacts = readArtifacts(buildStack("local"), "warehouse");
const issuer = await startIssuer();
const upstream = await leanUpstream();
const token = await callerToken(issuer, "ai-agent");
const agents = Array.from({ length: 4 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
const get = (url, agent) =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    // A kept-alive socket the server closed as it was reused: retried once, as Node's docs advise.
    req.on("error", (error) => (req.reusedSocket && error.code === "ECONNRESET" ? get(url, agent).then(resolve, reject) : reject(error)));
    req.end();
  });
const load = async (url, n) =>
  (await Promise.all(agents.map(async (agent) => {
    const codes = [];
    for (let i = 0; i < n / agents.length; i++) codes.push(await get(url, agent));
    return codes;
  }))).flat();

// `start(wrap)` starts the server under the given wrapper (startWorkerd's `wrap`).
async function count(name, start) {
  const out = mkdtempSync(join(tmpdir(), "airgate-callgrind-"));
  const worker = await start(["valgrind", "--tool=callgrind", "--smc-check=all-non-file", `--callgrind-out-file=${out}/cg.%p`, "--dump-instr=no", "--separate-threads=yes"]);
  try {
    const url = worker.url + PATH;
    await load(url, WARM_UP);
    execFileSync("callgrind_control", ["-z", String(worker.pid)], { stdio: "ignore" });
    const codes = await load(url, N);
    execFileSync("callgrind_control", ["-d", String(worker.pid)], { stdio: "ignore" });
    // One file per thread (cg.<pid>.<dump>-<thread>); thread 01 is the one that runs the Worker.
    const dump = readdirSync(out).find((f) => /^cg\.\d+\.\d+-01$/.test(f));
    const total = Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(join(out, dump), "utf8"))[1]);
    const refused = codes.filter((code) => code !== 200).length;
    console.log(`${name.padEnd(28)} ${(total / N / 1000).toFixed(1).padStart(7)} k instructions/request${refused ? ` (${refused} not 200!)` : ""}`);
    return total / N;
  } finally {
    await worker.stop();
    rmSync(out, { recursive: true, force: true });
  }
}

try {
  const pass = await count("pass-through Worker", (wrap) => workerdPassThrough(upstream, { wrap }));
  if (process.env.BASE_BUNDLE) {
    // The same stack's artifacts with an earlier build's bundle in place of this one.
    const dir = mkdtempSync(join(tmpdir(), "airgate-base-"));
    copyFileSync(process.env.BASE_BUNDLE, join(dir, "gateway.js"));
    await count("gateway (BASE_BUNDLE)", (wrap) => workerdGateway({ ...artifacts, dir }, issuer, upstream, { wrap }));
  }
  const full = await count("full gateway", (wrap) => workerdGateway(artifacts, issuer, upstream, { wrap }));
  console.log(`pass-through / full gateway = ${(pass / full).toFixed(2)} (instructions on the main thread only; the kernel and V8's background threads add more to the gateway, so bench/gateway/run's ratio is lower)`);
} finally {
  issuer.close();
  await upstream.close();
}
process.exit(0);
