"""An emulator of the Cloudflare API (`/client/v4`) for the parts airgate deploys, so the real Pulumi
engine, a provider and the official `cloudflare` client can run against it on this machine.

It answers as Cloudflare does: the envelope (`success`, `errors[{code, message}]`, `messages`,
`result`, `result_info` for lists), a bearer token on every request, and the API's refusals with
their codes, each rule with its source at the place it is enforced (resources/*.py). A request is
checked completely before anything changes; a refused request changes nothing.

Run it: `python -m local_services.cloudflare_api --state PATH --token TOKEN --account ID
[--zone ID=name ...] --port 0` prints `{"url": "http://127.0.0.1:PORT/client/v4"}` when ready.
Tests use `local_services.cloudflare_api.testing.running_emulator`. Beside the state file it appends
the request journal (`PATH.requests.jsonl`: one line per request but GETs, with status and code), and
`/__emulator/faults` makes chosen requests fail (faults.py), for deploys that fail half-way.

The state file (JSON, replaced atomically after every accepted change; survives a restart; keys that
start with `_` are the emulator's own bookkeeping):

    {
      "format": "airgate-cloudflare-emulator/1",
      "accounts": {
        "<account id>": {
          "name": str, "created_on": str,
          "scripts": {"<script name>": {
              "main_module": str | null, "body_part": str | null,
              "modules": {"<file name>": {"content_type", "size", "sha256", "text" | "base64"}},
              "etag": str, "compatibility_date": str | null, "compatibility_flags": [str],
              "bindings": [ {as uploaded: "name", "type", "namespace_id", "class_name", "text", ...} ],
              "migration_tag": str | null, "durable_object_classes": [str],
              "logpush": bool, "usage_model": str, "tags": [str], "tail_consumers": [...],
              "placement": {...} | null, "observability": {...} | null,
              "created_on": str, "modified_on": str, "uploads": int}},
          "lost_durable_object_data": [{"script", "classes", "deleted_on"}],   (once a script with
              Durable Object classes was deleted)
          "worker_domains": {"<id>": {"hostname", "service", "environment", "zone_id", "zone_name",
              "cert_id", "created_on"}},
          "kv_namespaces": {"<id>": {"title": str, "values": {"<key>": {"text" | "base64",
              "metadata": any, "expiration": int | null}}}},
          "access": {
            "identity_providers": {"<uuid>": {"name", "type", "config", "scim_config", "created_at", ...}},
            "policies": {"<uuid>": {"name", "decision", "include", "exclude", "require", ...}},
            "groups": {"<uuid>": {"name", "include", "exclude", "require", ...}},
            "applications": {"<uuid>": {"type", "name", "domain", "policies": [{"id", "precedence"}],
                "allowed_idps", "session_duration", "_aud", ...}},
            "service_tokens": {"<uuid>": {"name", "client_id", "duration", "enabled", "expires_at",
                "client_secret_version", "previous_client_secret_expires_at",
                "secrets": {"<version>": str}, ...}}},
          "tunnels": {"<uuid>": {"name", "config_src", "secret", "created_at",
              "configuration": {"config": {"ingress": [...]}, "version": int, "created_at"} | null}},
          "logpush_jobs": {"<int id>": {"dataset", "destination_conf", "name", "enabled", "filter",
              "output_options", ...}},
          "ownership_challenges": {"<destination without query>": "<token written there>"},
          "next_logpush_job_id": int}},
      "zones": {
        "<zone id>": {"name": str, "account_id": str, "created_on": str,
          "worker_routes": {"<id>": {"pattern", "script": str | null}},
          "dns_records": {"<id>": {"type", "name", "content", "proxied", "ttl", "comment", "tags",
              "created_on", "modified_on"}}}}
    }

What it does not model: paths outside the ones above (400 with 7003/7000); zone-level Access and
Logpush; Workers versions, deployments, assets, secrets and subdomain endpoints, `bindings_inherit`, and
binding changes through a settings edit (only an upload changes bindings); whether uploaded code
runs; Durable Object storage itself (only which classes exist, and that deleting the script loses
them); KV's eventual consistency (a write is read back at once); certificates for custom domains;
tunnel connections (every tunnel is `inactive`) and Logpush delivery; token permissions (the one
token reaches every seeded account and zone); rate limits; account caps on Access objects.
Where no public source gives the code or status of a refusal, the comment at its raise site says so.
"""
