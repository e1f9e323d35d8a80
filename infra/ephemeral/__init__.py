"""Ephemeral per-pull-request stacks: derivation, TTL, guard and caps (pure, in `model`), the
Automation API slice they use (`workspace`) and the commands' orchestration (`service`).

Tested here with a recording stand-in for the workspace (no Pulumi CLI on this machine). What only
a real backend and Cloudflare account can show:

- that stack tags (`airgate:expires-at`, ...) are stored by the chosen backend (Pulumi Cloud
  does; check a self-managed backend before relying on it: without tags `sweep` skips the stack,
  it never guesses);
- the real counts behind the caps (`CloudflareUsage` reads them from the API with
  CLOUDFLARE_API_TOKEN; without it, `StateUsage` counts only what this project's stacks hold), and
  whether the account's limits are still 50 service tokens / 50 IdPs / 500 Access apps;
- that `pr-<n>-<label>.<zone>` hostnames get a certificate and DNS in time (one label under the
  zone is covered by Universal SSL; Access apps and custom domains are created by `up`);
- that `destroy` really removes everything (a provider error leaves the stack, tagged and
  dated, for the next `sweep`), and how long a create/destroy round takes;
- Pulumi's own protection: `destroy` fails on any `protect`ed resource even if our guard passed.
"""
