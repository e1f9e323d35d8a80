"""Ephemeral per-pull-request stacks: derivation, TTL, guard and caps (pure, in `model`), the
Automation API slice they use (`workspace`) and the commands' orchestration (`service`).

The real Pulumi CLI runs them in the engine tier (`tests/engine/test_test_stacks.py`: create from
dev, deploy into the Cloudflare API emulator, list, refuse, expire, sweep), which showed that a
self-managed (`file://`) backend stores the stack tags `sweep` relies on, that `destroy` then
`stack rm` leave the account as it was, and that a resource protected in the state stops the
guard. The decisions are also tested over a recording stand-in for what the CLI cannot reach
quickly. What only a real Cloudflare account can show:

- the real counts behind the caps (`CloudflareUsage` reads them from the API with
  CLOUDFLARE_API_TOKEN; without it, `StateUsage` counts only what this project's stacks hold), and
  whether the account's limits are still 50 service tokens / 50 IdPs / 500 Access apps;
- that `pr-<n>-<label>.<zone>` hostnames get a certificate and DNS in time (one label under the
  zone is covered by Universal SSL; Access apps and custom domains are created by `up`);
- how long a create/destroy round takes there, and a provider error part-way through a destroy
  (the stack is left, tagged and dated, for the next `sweep`);
- Pulumi's own protection: `destroy` fails on any `protect`ed resource even if our guard passed.
"""
