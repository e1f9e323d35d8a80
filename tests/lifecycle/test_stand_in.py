"""The Cloudflare API stand-in refuses what the API refuses: each documented precondition the
program relies on, tested on its own so a lifecycle test that passes means something."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lifecycle.cloudflare_api import SCRIPT_SIZE_LIMIT, ApiError, CloudflareApi
from tests.lifecycle.kubernetes_api import ClusterApi, ClusterError

ACCOUNT = "a" * 32
ZONE = "z" * 32


def script(name: str = "gw", **extra: Any) -> dict[str, Any]:
    return {"accountId": ACCOUNT, "scriptName": name, "content": "export default {}", "bindings": [], **extra}


def refused(code: int, call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.code == code, caught.value
    return caught.value


DO_BINDING = {"name": "RATE_LIMITER", "type": "durable_object_namespace", "className": "RateLimiter"}
V1 = {"newTag": "v1", "steps": [{"newSqliteClasses": ["RateLimiter"]}]}


def test_migration_tags_must_match_the_live_script() -> None:
    api = CloudflareApi()
    api.put("WorkersScript", None, script(bindings=[DO_BINDING], migrations=V1))
    assert api.script_tags(ACCOUNT) == [{"id": "gw", "migrationTag": "v1"}]
    # The provider re-sends the first upload's migrations: no old_tag on a tagged script.
    error = refused(10079, api.put, "WorkersScript", "gw", script(bindings=[DO_BINDING], migrations=V1))
    assert "precondition failed" in error.message
    wrong = {"oldTag": "v0", "newTag": "v2", "steps": [{"newSqliteClasses": ["Audit"]}]}
    refused(10079, api.put, "WorkersScript", "gw", script(bindings=[DO_BINDING], migrations=wrong))
    right = {**wrong, "oldTag": "v1"}
    api.put("WorkersScript", "gw", script(bindings=[DO_BINDING], migrations=right))
    api.put("WorkersScript", "gw", script(bindings=[DO_BINDING]))  # no migrations: the tag stays
    assert api.script_tags(ACCOUNT) == [{"id": "gw", "migrationTag": "v2"}]


def test_old_tag_on_a_script_without_a_tag_is_refused() -> None:
    api = CloudflareApi()
    refused(10079, api.put, "WorkersScript", None, script(migrations={**V1, "oldTag": "v0"}))


def test_a_durable_object_binding_needs_a_migration() -> None:
    api = CloudflareApi()
    refused(10061, api.put, "WorkersScript", None, script(bindings=[DO_BINDING]))
    deleted = {
        "newTag": "v1",
        "steps": [{"newSqliteClasses": ["RateLimiter"]}, {"deletedClasses": ["RateLimiter"]}],
    }
    refused(10061, api.put, "WorkersScript", None, script(bindings=[DO_BINDING], migrations=deleted))


def test_a_class_is_created_once() -> None:
    api = CloudflareApi()
    api.put("WorkersScript", None, script(migrations=V1))
    again = {"oldTag": "v1", "newTag": "v2", "steps": [{"newSqliteClasses": ["RateLimiter"]}]}
    refused(10074, api.put, "WorkersScript", "gw", script(migrations=again))


def test_binding_names_are_unique_per_script() -> None:
    api = CloudflareApi()
    twice = [{"name": "GATEWAY", "type": "plain_text", "text": "a"}] * 2
    refused(10021, api.put, "WorkersScript", None, script(bindings=twice))


def test_script_size_limit() -> None:
    api = CloudflareApi()
    refused(10027, api.put, "WorkersScript", None, script(content="x" * (SCRIPT_SIZE_LIMIT + 1)))


def test_kv_titles_keys_and_values() -> None:
    api = CloudflareApi()
    namespace, _ = api.put("WorkersKvNamespace", None, {"accountId": ACCOUNT, "title": "policy"})
    refused(10014, api.put, "WorkersKvNamespace", None, {"accountId": ACCOUNT, "title": "policy"})
    entry = {"accountId": ACCOUNT, "namespaceId": namespace, "keyName": "k", "value": "v"}
    api.put("WorkersKv", None, entry)
    refused(10033, api.put, "WorkersKv", None, {**entry, "keyName": "k" * 513})
    refused(10033, api.put, "WorkersKv", None, {**entry, "value": "v" * (25 * 1024 * 1024 + 1)})
    refused(10013, api.put, "WorkersKv", None, {**entry, "namespaceId": "missing"})


def test_a_hostname_serves_one_worker() -> None:
    api = CloudflareApi()
    for name in ("one", "two"):
        api.put("WorkersScript", None, script(name))
    domain = {"accountId": ACCOUNT, "zoneId": ZONE, "hostname": "gw.example.com", "service": "one"}
    domain_id, _ = api.put("WorkersCustomDomain", None, domain)
    refused(100117, api.put, "WorkersCustomDomain", None, {**domain, "service": "two"})
    api.put("WorkersCustomDomain", domain_id, domain)


def test_service_token_rotation_keeps_the_previous_secret_until_it_expires() -> None:
    api = CloudflareApi()
    base = {"accountId": ACCOUNT, "name": "ai-agent"}
    refused(400, api.put, "ZeroTrustAccessServiceToken", None, {**base, "clientSecretVersion": 1.0})
    token_id, first = api.put("ZeroTrustAccessServiceToken", None, base)
    rotation = {**base, "clientSecretVersion": 2.0, "previousClientSecretExpiresAt": "2026-12-15T00:00:00Z"}
    same_id, second = api.put("ZeroTrustAccessServiceToken", token_id, rotation)
    assert same_id == token_id and second["clientId"] == first["clientId"]
    assert second["clientSecret"] != first["clientSecret"]
    assert api.valid_token_secrets(token_id, "2026-12-01T00:00:00Z") == {
        first["clientSecret"],
        second["clientSecret"],
    }
    assert api.valid_token_secrets(token_id, "2026-12-16T00:00:00Z") == {second["clientSecret"]}
    back = {**rotation, "clientSecretVersion": 1.0}
    refused(400, api.put, "ZeroTrustAccessServiceToken", token_id, back)


def test_access_applications_need_their_policies_and_own_their_domain() -> None:
    api = CloudflareApi()
    app = {"accountId": ACCOUNT, "domain": "gw.example.com", "policies": [{"id": "nope", "precedence": 1}]}
    refused(12005, api.put, "ZeroTrustAccessApplication", None, app)
    policy_id, _ = api.put(
        "ZeroTrustAccessPolicy", None, {"accountId": ACCOUNT, "name": "p", "decision": "allow"}
    )
    app["policies"] = [{"id": policy_id, "precedence": 1}]
    api.put("ZeroTrustAccessApplication", None, app)
    refused(12130, api.put, "ZeroTrustAccessApplication", None, app)
    refused(12009, api.delete, "ZeroTrustAccessPolicy", policy_id, {"name": "p"})


def test_a_storage_logpush_destination_needs_the_ownership_challenge() -> None:
    api = CloudflareApi()
    job = {"accountId": ACCOUNT, "destinationConf": "s3://bucket/prod?region=eu-west-1", "name": "j"}
    refused(1002, api.put, "LogpushJob", None, job)
    token = api.request_ownership_challenge(job["destinationConf"])
    refused(1002, api.put, "LogpushJob", None, {**job, "ownershipChallenge": "guess"})
    api.put("LogpushJob", None, {**job, "ownershipChallenge": token})
    api.put("LogpushJob", None, {**job, "destinationConf": "https://logs.example.com/ingest"})


def test_tunnel_names_are_unique_per_account() -> None:
    api = CloudflareApi()
    api.put("ZeroTrustTunnelCloudflared", None, {"accountId": ACCOUNT, "name": "airflow"})
    refused(1013, api.put, "ZeroTrustTunnelCloudflared", None, {"accountId": ACCOUNT, "name": "airflow"})


def test_a_kubernetes_object_name_is_taken_per_cluster_kind_and_namespace() -> None:
    cluster = ClusterApi()
    secret = {"metadata": {"name": "airflow-fernet-key", "namespace": "airflow"}}
    first = cluster.put("acme-dev", "Secret", None, secret)
    with pytest.raises(ClusterError, match="already exists"):
        cluster.put("acme-dev", "Secret", None, secret)
    assert cluster.put("acme-dev", "Secret", first, secret) == first  # an update keeps it
    cluster.put("acme-dev", "Secret", None, {"metadata": {**secret["metadata"], "namespace": "airflow-pr-7"}})
    cluster.put("acme-prod", "Secret", None, secret)
    cluster.put("acme-dev", "Service", None, secret)
    release = {"name": "airflow", "namespace": "airflow"}
    cluster.put("acme-dev", "Release", None, release)
    with pytest.raises(ClusterError, match="still in use"):
        cluster.put("acme-dev", "Release", None, release)
    cluster.delete("acme-dev", "Secret", secret)
    cluster.put("acme-dev", "Secret", None, secret)  # free again once deleted


def test_a_token_rotation_gives_a_secret_a_preview_cannot_know() -> None:
    old = {"clientSecretVersion": 1.0}
    assert CloudflareApi.recomputed("ZeroTrustAccessServiceToken", old, {"clientSecretVersion": 2.0}) == {
        "clientSecret"
    }
    assert CloudflareApi.recomputed("ZeroTrustAccessServiceToken", old, {**old, "name": "x"}) == set()
