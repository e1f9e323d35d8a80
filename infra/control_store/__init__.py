"""Writers of a stack's `control` KV document (infra/policy/control.py holds its schema): through
the Cloudflare API for a deployed stack, through the local gateways' loopback endpoint for `local`.
Each gateway has its own KV namespace, so a change is a read-modify-write on every one."""

CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
"""The Cloudflare API base URL (`airgate revoke|kill-switch --api-url` overrides it). This module
imports nothing, so the command line reads it without loading the stores."""
