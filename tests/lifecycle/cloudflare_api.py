"""A stateful stand-in for the parts of the Cloudflare API the airgate program relies on.

It keeps objects across deploys, keyed as the API keys them (script name per account, KV namespace
title per account, custom-domain hostname per zone, Access application domain, tunnel name per
account), and refuses what the API refuses, each rule with its source. It is a test fixture, not a
product: only the semantics the program relies on are here (docs/design/migrations.md lists what it
does not model).

Inputs arrive as Pulumi's mocks see them: the provider's camelCase property names, secrets unwrapped.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

# Workers limits (https://developers.cloudflare.com/workers/platform/limits/): a script of at most
# 10 MB after compression on the paid plan; the stand-in applies it to the uncompressed upload.
SCRIPT_SIZE_LIMIT = 10 * 1024 * 1024
# Workers KV limits (https://developers.cloudflare.com/kv/platform/limits/): key ≤ 512 bytes,
# value ≤ 25 MiB.
KV_KEY_LIMIT = 512
KV_VALUE_LIMIT = 25 * 1024 * 1024
# Logpush destinations that need an ownership challenge (cloudflare/terraform-provider-cloudflare
# #1019; https://developers.cloudflare.com/logs/logpush/logpush-job/api-configuration/).
STORAGE_SCHEMES = ("s3://", "gs://", "azure://")


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{message} ({code})")


@dataclass
class Script:
    account: str
    name: str
    content: str
    bindings: list[dict[str, Any]]
    migration_tag: str | None = None
    classes: set[str] = field(default_factory=set)
    """Durable Object classes the script's migrations created and did not delete."""
    uploads: int = 0


@dataclass
class ServiceToken:
    account: str
    name: str
    client_id: str
    version: int
    secrets: dict[int, str]
    previous_expires_at: str | None


@dataclass
class CloudflareApi:
    scripts: dict[tuple[str, str], Script] = field(default_factory=dict)
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    """namespace id → {account, title}"""
    kv: dict[tuple[str, str], str] = field(default_factory=dict)
    domains: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(zone, hostname) → {id, service}"""
    routes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Access application id → {domain, policies, aud}"""
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, ServiceToken] = field(default_factory=dict)
    idps: dict[str, dict[str, Any]] = field(default_factory=dict)
    tunnels: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    logpush_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    challenges: dict[str, str] = field(default_factory=dict)
    """destination (without query) → the token Cloudflare wrote into it"""
    lost_durable_object_state: list[str] = field(default_factory=list)
    """Scripts deleted with Durable Object classes alive: their stored state is gone."""
    fail_next: dict[str, str] = field(default_factory=dict)
    """`Kind` or `Kind:name` → message: the next call for it fails (a deploy failing half-way)."""
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- helpers -------------------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        return hashlib.sha256(f"{kind}:{next(self._ids)}".encode()).hexdigest()[:32]

    def request_ownership_challenge(self, destination_conf: str) -> str:
        """What POST /accounts/{id}/logpush/ownership does: Cloudflare writes a token into a file in
        the destination; the caller reads it from there."""
        token = f"challenge-{self.new_id('challenge')}"
        self.challenges[destination_conf.split("?")[0]] = token
        return token

    def script_tags(self, account: str) -> list[dict[str, Any]]:
        """GET /accounts/{id}/workers/scripts: each script with its `migration_tag`."""
        return [
            {"id": s.name, "migrationTag": s.migration_tag or ""}
            for (acct, _), s in sorted(self.scripts.items())
            if acct == account
        ]

    def valid_token_secrets(self, token_id: str, now: str) -> set[str]:
        token = self.tokens[token_id]
        valid = {token.secrets[token.version]}
        if token.previous_expires_at is not None and now < token.previous_expires_at:
            valid |= {secret for version, secret in token.secrets.items() if version == token.version - 1}
        return valid

    def is_empty(self) -> bool:
        return not any(
            (
                self.scripts,
                self.namespaces,
                self.kv,
                self.domains,
                self.routes,
                self.apps,
                self.policies,
                self.tokens,
                self.idps,
                self.tunnels,
                self.records,
                self.logpush_jobs,
            )
        )

    @staticmethod
    def recomputed(kind: str, old: dict[str, Any], new: dict[str, Any]) -> frozenset[str]:
        """Outputs an update gives a new value that a preview cannot know: a service token's
        secret when its `client_secret_version` goes up (the API issues the new secret)."""
        if kind == "ZeroTrustAccessServiceToken" and old.get("clientSecretVersion") != new.get(
            "clientSecretVersion"
        ):
            return frozenset({"clientSecret"})
        return frozenset()

    # --- the one entry point the engine uses --------------------------------------------------

    def put(self, kind: str, object_id: str | None, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Create (object_id None) or update one object; returns its id and computed outputs."""
        self.calls.append(("put", kind, object_id or "(new)"))
        for key in (f"{kind}:{inputs.get('scriptName') or inputs.get('name')}", kind):
            if key in self.fail_next:
                raise ApiError(500, self.fail_next.pop(key))
        handler = getattr(self, f"_put_{kind}", None)
        if handler is None:
            return object_id or self.new_id(kind), {}
        result: tuple[str, dict[str, Any]] = handler(object_id, inputs)
        return result

    def delete(self, kind: str, object_id: str, inputs: dict[str, Any]) -> None:
        self.calls.append(("delete", kind, object_id))
        handler = getattr(self, f"_delete_{kind}", None)
        if handler is not None:
            handler(object_id, inputs)

    # --- Workers scripts ----------------------------------------------------------------------

    def _put_WorkersScript(self, object_id: str | None, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        account, name = inputs["accountId"], inputs["scriptName"]
        content = inputs.get("content") or ""
        if len(content.encode()) > SCRIPT_SIZE_LIMIT:
            raise ApiError(10027, f"script {name} exceeds the size limit")
        bindings = list(inputs.get("bindings") or [])
        names = [b["name"] for b in bindings]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            # Binding names share one namespace per script: the Worker sees them as `env.<NAME>`.
            raise ApiError(10021, f"binding name {duplicated[0]!r} is used more than once")
        for binding in bindings:
            if binding["type"] == "kv_namespace" and binding.get("namespaceId") not in self.namespaces:
                raise ApiError(10041, f"KV namespace {binding.get('namespaceId')!r} not found")

        # PUT /workers/scripts/{name} creates or replaces by name: a script left behind (retained)
        # is taken over, migration tag and Durable Objects included.
        existing = self.scripts.get((account, name))
        tag = existing.migration_tag if existing else None
        classes = set(existing.classes) if existing else set()
        migrations = inputs.get("migrations")
        if migrations:
            old_tag = migrations.get("oldTag")
            # The API checks old_tag against the script's current migration tag and refuses a
            # mismatch; old_tag may be omitted only while the script has no tag
            # (cloudflare/wrangler-legacy#1992; pulumi/pulumi-cloudflare#1215: "Actor migration
            # tag precondition failed, got tag 'v0' when expected tag is 'v1'"; cloudflare/
            # workers-sdk#6953: "Migration tag precondition failed; current tag is 'v1'").
            if (old_tag or None) != tag:
                raise ApiError(
                    10079,
                    f"Migration tag precondition failed; current tag is {tag!r}, got {old_tag!r}",
                )
            for step in migrations.get("steps") or [migrations]:
                for cls in step.get("newSqliteClasses") or []:
                    if cls in classes:
                        raise ApiError(10074, f"class {cls!r} already has a Durable Object namespace")
                    classes.add(cls)
                for cls in step.get("deletedClasses") or []:
                    classes.discard(cls)
            tag = migrations.get("newTag") or tag
        for binding in bindings:
            # A Durable Object binding needs its class created by a migration first (the API:
            # "Cannot create binding for class ... Did you forget to apply a migration?").
            if binding["type"] == "durable_object_namespace" and binding.get("className") not in classes:
                raise ApiError(
                    10061,
                    f"Cannot create binding for class {binding.get('className')!r}: no migration created it",
                )
        script = existing or Script(account, name, content, bindings)
        script.content, script.bindings, script.migration_tag, script.classes = (
            content,
            bindings,
            tag,
            classes,
        )
        script.uploads += 1
        self.scripts[(account, name)] = script
        return name, {"migrationTag": tag or ""}

    def _delete_WorkersScript(self, object_id: str, inputs: dict[str, Any]) -> None:
        key = (inputs["accountId"], inputs["scriptName"])
        script = self.scripts.pop(key, None)
        if script is not None and script.classes:
            self.lost_durable_object_state.append(script.name)

    # --- Workers KV -----------------------------------------------------------------------------

    def _put_WorkersKvNamespace(
        self, object_id: str | None, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        account, title = inputs["accountId"], inputs["title"]
        for other_id, other in self.namespaces.items():
            # A namespace title is unique per account (API code 10014 "a namespace with this
            # account ID and title already exists").
            if other_id != object_id and other["account"] == account and other["title"] == title:
                raise ApiError(10014, f"a namespace titled {title!r} already exists in this account")
        namespace_id = object_id or self.new_id("kv")
        self.namespaces[namespace_id] = {"account": account, "title": title}
        return namespace_id, {}

    def _delete_WorkersKvNamespace(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.namespaces.pop(object_id, None)
        for key in [k for k in self.kv if k[0] == object_id]:
            del self.kv[key]

    def _put_WorkersKv(self, object_id: str | None, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        namespace, key, value = inputs["namespaceId"], inputs["keyName"], inputs.get("value") or ""
        if namespace not in self.namespaces:
            raise ApiError(10013, f"KV namespace {namespace!r} not found")
        if len(key.encode()) > KV_KEY_LIMIT:
            raise ApiError(10033, f"KV key longer than {KV_KEY_LIMIT} bytes")
        if len(value.encode()) > KV_VALUE_LIMIT:
            raise ApiError(10033, "KV value larger than 25 MiB")
        self.kv[(namespace, key)] = value
        return f"{namespace}/{key}", {}

    def _delete_WorkersKv(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.kv.pop((inputs["namespaceId"], inputs["keyName"]), None)

    # --- hostnames ------------------------------------------------------------------------------

    def _put_WorkersCustomDomain(
        self, object_id: str | None, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        zone, hostname, service = inputs["zoneId"], inputs["hostname"], inputs["service"]
        if (inputs["accountId"], service) not in self.scripts:
            raise ApiError(10007, f"Worker {service!r} not found")
        bound = self.domains.get((zone, hostname))
        # One hostname serves one Worker: attaching a hostname another Worker holds is refused
        # (https://developers.cloudflare.com/workers/configuration/routing/custom-domains/).
        if bound is not None and bound["id"] != object_id and bound["service"] != service:
            raise ApiError(100117, f"{hostname} is already attached to Worker {bound['service']!r}")
        domain_id = object_id or (bound["id"] if bound else self.new_id("domain"))
        self.domains[(zone, hostname)] = {"id": domain_id, "service": service}
        return domain_id, {}

    def _delete_WorkersCustomDomain(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.domains = {k: v for k, v in self.domains.items() if v["id"] != object_id}

    def _put_WorkersRoute(self, object_id: str | None, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        key = (inputs["zoneId"], inputs["pattern"])
        bound = self.routes.get(key)
        if bound is not None and bound["id"] != object_id:
            raise ApiError(10020, f"route {inputs['pattern']} already exists")
        route_id = object_id or self.new_id("route")
        self.routes = {k: v for k, v in self.routes.items() if v["id"] != route_id}
        self.routes[key] = {"id": route_id, "script": inputs.get("script")}
        return route_id, {}

    def _delete_WorkersRoute(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.routes = {k: v for k, v in self.routes.items() if v["id"] != object_id}

    # --- Access -----------------------------------------------------------------------------------

    def _put_ZeroTrustAccessApplication(
        self, object_id: str | None, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        domain = inputs["domain"]
        for other_id, other in self.apps.items():
            # One self-hosted application per domain in an account.
            if other_id != object_id and other["domain"] == domain:
                raise ApiError(12130, f"an application for {domain} already exists")
        for policy in inputs.get("policies") or []:
            # A reusable policy an application names must exist
            # (https://developers.cloudflare.com/cloudflare-one/policies/access/#reusable-policies).
            if policy["id"] not in self.policies:
                raise ApiError(12005, f"access.api.error.policy_not_found: {policy['id']}")
        app_id = object_id or self.new_id("app")
        aud = self.apps[app_id]["aud"] if app_id in self.apps else self.new_id("aud") + self.new_id("aud")
        self.apps[app_id] = {"domain": domain, "policies": [p["id"] for p in inputs.get("policies") or []]}
        self.apps[app_id]["aud"] = aud
        return app_id, {"aud": aud}

    def _delete_ZeroTrustAccessApplication(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.apps.pop(object_id, None)

    def _put_ZeroTrustAccessPolicy(
        self, object_id: str | None, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        for include in inputs.get("includes") or []:
            token = (include.get("serviceToken") or {}).get("tokenId")
            if token is not None and token not in self.tokens:
                raise ApiError(12005, f"service token {token!r} not found")
        policy_id = object_id or self.new_id("policy")
        self.policies[policy_id] = {"name": inputs.get("name"), "decision": inputs.get("decision")}
        return policy_id, {}

    def _delete_ZeroTrustAccessPolicy(self, object_id: str, inputs: dict[str, Any]) -> None:
        users = [app["domain"] for app in self.apps.values() if object_id in app["policies"]]
        if users:
            # A reusable policy in use by an application cannot be deleted.
            raise ApiError(12009, f"policy {inputs.get('name')} is used by {', '.join(users)}")
        self.policies.pop(object_id, None)

    def _put_ZeroTrustAccessServiceToken(
        self, object_id: str | None, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        version = inputs.get("clientSecretVersion")
        expires = inputs.get("previousClientSecretExpiresAt")
        # The provider's schema: client_secret_version AlsoRequires previous_client_secret_expires_at
        # (and the reverse); "incrementing it triggers a rotation; the previous secret will still be
        # accepted until the time indicated by previous_client_secret_expires_at".
        if (version is None) != (expires is None):
            raise ApiError(
                400,
                'Attribute "client_secret_version" and "previous_client_secret_expires_at" must be '
                "specified together",
            )
        wanted = int(version or 1)
        if object_id is None:
            token_id = self.new_id("token")
            token = ServiceToken(
                inputs["accountId"],
                inputs["name"],
                f"{self.new_id('client')}.access",
                wanted,
                {wanted: self.new_id("secret")},
                expires,
            )
            self.tokens[token_id] = token
        else:
            token_id, token = object_id, self.tokens[object_id]
            if wanted < token.version:
                raise ApiError(400, "client_secret_version can only increase")
            if wanted > token.version:
                token.secrets[wanted] = self.new_id("secret")
                token.version = wanted
            token.previous_expires_at = expires
            token.name = inputs["name"]
        return token_id, {
            "clientId": token.client_id,
            "clientSecret": token.secrets[token.version],
        }

    def _delete_ZeroTrustAccessServiceToken(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.tokens.pop(object_id, None)

    def _put_ZeroTrustAccessIdentityProvider(
        self, object_id: str | None, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        idp_id = object_id or self.new_id("idp")
        self.idps[idp_id] = {"name": inputs.get("name")}
        return idp_id, {}

    def _delete_ZeroTrustAccessIdentityProvider(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.idps.pop(object_id, None)

    # --- tunnels and DNS --------------------------------------------------------------------------

    def _put_ZeroTrustTunnelCloudflared(
        self, object_id: str | None, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        for other_id, other in self.tunnels.items():
            # A tunnel name is unique per account (API: "tunnel with name already exists").
            if (
                other_id != object_id
                and other["account"] == inputs["accountId"]
                and other["name"] == inputs["name"]
            ):
                raise ApiError(1013, f"a tunnel named {inputs['name']!r} already exists")
        tunnel_id = object_id or self.new_id("tunnel")
        self.tunnels[tunnel_id] = {"account": inputs["accountId"], "name": inputs["name"]}
        return tunnel_id, {}

    def _delete_ZeroTrustTunnelCloudflared(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.tunnels.pop(object_id, None)

    def _put_DnsRecord(self, object_id: str | None, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        record_id = object_id or self.new_id("dns")
        self.records[record_id] = {"name": inputs.get("name")}
        return record_id, {}

    def _delete_DnsRecord(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.records.pop(object_id, None)

    # --- Logpush ----------------------------------------------------------------------------------

    def _put_LogpushJob(self, object_id: str | None, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        destination = inputs["destinationConf"]
        if destination.startswith(STORAGE_SCHEMES):
            # Storage destinations need the token Cloudflare wrote into them
            # (cloudflare/terraform-provider-cloudflare#1019: "incorrect ownership challenge (1002)").
            expected = self.challenges.get(destination.split("?")[0])
            if expected is None or inputs.get("ownershipChallenge") != expected:
                raise ApiError(1002, "incorrect ownership challenge")
        job_id = object_id or str(next(self._ids))
        self.logpush_jobs[job_id] = {"name": inputs.get("name"), "destination": destination}
        return job_id, {}

    def _delete_LogpushJob(self, object_id: str, inputs: dict[str, Any]) -> None:
        self.logpush_jobs.pop(object_id, None)
