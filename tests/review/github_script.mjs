// Runs an actions/github-script `script:` outside GitHub, against a stand-in that keeps the state
// the scripts rely on: open pull requests (with head repository and SHA), issue comments, labels and
// the review decision; it records every write. github-script runs the script as the body of an async
// function given `require`, `github`, `context` and `core`
// (https://github.com/actions/github-script#usage); this does the same.
// Input (stdin, JSON): {script, env, payload, repo, pulls, comments, reviewDecision}.
// Output (stdout, JSON): {failed, notices, writes}.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const input = JSON.parse(readFileSync(0, "utf8"));
Object.assign(process.env, input.env ?? {});
const state = { failed: null, notices: [], writes: [] };
const comments = input.comments ?? [];
const page = (items) => ({ data: items });
const github = {
  paginate: async (method, params) => (await method(params)).data,
  graphql: async () => ({ repository: { pullRequest: { reviewDecision: input.reviewDecision ?? null } } }),
  rest: {
    pulls: {
      list: async ({ state: wanted }) => page((input.pulls ?? []).filter((p) => wanted !== "open" || p.state === "open")),
      get: async ({ pull_number }) => page((input.pulls ?? []).find((p) => p.number === pull_number)),
    },
    issues: {
      listComments: async ({ issue_number }) => page(comments.filter((c) => c.issue_number === issue_number)),
      updateComment: async (args) => { state.writes.push({ kind: "update", ...args }); return page({}); },
      createComment: async (args) => { state.writes.push({ kind: "create", ...args }); return page({}); },
    },
  },
};
const core = {
  setFailed: (message) => { state.failed = String(message); },
  notice: (message) => { state.notices.push(String(message)); },
  setOutput: () => {},
};
const context = { repo: input.repo, payload: input.payload ?? {} };
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const body = new AsyncFunction("require", "github", "context", "core", input.script);
await body(createRequire(import.meta.url), github, context, core);
process.stdout.write(JSON.stringify(state));
