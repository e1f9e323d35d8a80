"""Whatever body arrives, the emulator answers as the API does: a refusal with a code (never a 500),
and a refusal changes nothing. Hypothesis writes the bodies; every write route gets them."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudflare import Cloudflare
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_services.cloudflare_api.testing import RunningEmulator, running_emulator
from tests.emulator.conftest import ACCOUNT, TOKEN, ZONE, ZONE_NAME, client
from tests.emulator.test_workers import upload

KEYS = [
    "base64",
    "client_secret_version",
    "config",
    "config_src",
    "content",
    "dataset",
    "decision",
    "destination_conf",
    "domain",
    "duration",
    "enabled",
    "exclude",
    "expiration",
    "expiration_ttl",
    "filter",
    "hostname",
    "include",
    "key",
    "keys",
    "logpush",
    "metadata",
    "name",
    "output_options",
    "ownership_challenge",
    "pattern",
    "policies",
    "previous_client_secret_expires_at",
    "proxied",
    "require",
    "script",
    "service",
    "tags",
    "title",
    "ttl",
    "tunnel_secret",
    "type",
    "value",
    "zone_id",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=8,
)
bodies = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), values, max_size=6) | values


def seeded(cf: Cloudflare) -> dict[str, str]:
    """One object of every kind, so routes with an id in the path reach a real object."""
    namespace = cf.kv.namespaces.create(account_id=ACCOUNT, title="ns").id
    upload(cf, "gw")
    token = cf.zero_trust.access.service_tokens.create(account_id=ACCOUNT, name="t")
    policy = cf.zero_trust.access.policies.create(
        account_id=ACCOUNT, name="p", decision="allow", include=[{"everyone": {}}]
    )
    app = cf.zero_trust.access.applications.create(
        account_id=ACCOUNT, type="self_hosted", domain=f"a.{ZONE_NAME}"
    )
    tunnel = cf.zero_trust.tunnels.cloudflared.create(account_id=ACCOUNT, name="t", config_src="cloudflare")
    job = cf.logpush.jobs.create(
        account_id=ACCOUNT, dataset="workers_trace_events", destination_conf="https://l.test"
    )
    record = cf.dns.records.create(zone_id=ZONE, name="r", type="A", content="192.0.2.1", ttl=1)
    route = cf.workers.routes.create(zone_id=ZONE, pattern=f"r.{ZONE_NAME}/*", script="gw")
    assert token and policy and app and job and record
    return {
        "namespace": namespace,
        "token": token.id or "",
        "policy": policy.id or "",
        "app": app.to_dict()["id"],
        "tunnel": tunnel.id or "",
        "job": str(job.id),
        "record": record.id,
        "route": route.id or "",
    }


def write_routes(ids: dict[str, str]) -> list[tuple[str, str]]:
    a, z, ns = (
        f"/accounts/{ACCOUNT}",
        f"/zones/{ZONE}",
        f"/accounts/{ACCOUNT}/storage/kv/namespaces/{ids['namespace']}",
    )
    return [
        ("POST", f"{a}/storage/kv/namespaces"),
        ("PUT", ns),
        ("PUT", f"{ns}/bulk"),
        ("POST", f"{ns}/bulk/delete"),
        ("POST", f"{ns}/bulk/get"),
        ("PUT", f"{ns}/values/k?expiration_ttl=x"),
        ("PATCH", f"{a}/workers/scripts/gw/script-settings"),
        ("PUT", f"{a}/workers/domains"),
        ("POST", f"{z}/workers/routes"),
        ("PUT", f"{z}/workers/routes/{ids['route']}"),
        ("POST", f"{z}/dns_records"),
        ("PATCH", f"{z}/dns_records/{ids['record']}"),
        ("POST", f"{a}/access/identity_providers"),
        ("POST", f"{a}/access/groups"),
        ("POST", f"{a}/access/policies"),
        ("PUT", f"{a}/access/policies/{ids['policy']}"),
        ("POST", f"{a}/access/apps"),
        ("PUT", f"{a}/access/apps/{ids['app']}"),
        ("POST", f"{a}/access/service_tokens"),
        ("PUT", f"{a}/access/service_tokens/{ids['token']}"),
        ("POST", f"{a}/cfd_tunnel"),
        ("PATCH", f"{a}/cfd_tunnel/{ids['tunnel']}"),
        ("PUT", f"{a}/cfd_tunnel/{ids['tunnel']}/configurations"),
        ("POST", f"{a}/logpush/ownership"),
        ("POST", f"{a}/logpush/ownership/validate"),
        ("POST", f"{a}/logpush/jobs"),
        ("PUT", f"{a}/logpush/jobs/{ids['job']}"),
    ]


@pytest.mark.slow  # 300 requests: a few seconds, so it runs with the slow tier
def test_any_json_body_gets_an_answer_with_a_code_and_a_refusal_writes_nothing(state_path: Path) -> None:
    with running_emulator(state_path, TOKEN, ACCOUNT, {ZONE: ZONE_NAME}) as api, client(api) as cf:
        routes = write_routes(seeded(cf))
        with httpx.Client(base_url=api.base_url, headers={"authorization": f"Bearer {TOKEN}"}) as http:

            @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
            @given(st.sampled_from(routes), bodies)
            def check(route: tuple[str, str], body: Any) -> None:
                before = api.state_path.read_bytes()
                answer = http.request(route[0], route[1], content=json.dumps(body))
                document = answer.json()
                assert answer.status_code < 500, (route, body, document)
                if answer.status_code >= 400:
                    assert document["success"] is False and isinstance(document["errors"][0]["code"], int)
                    assert api.state_path.read_bytes() == before, (route, body)
                else:
                    assert document["success"] is True

            check()


def test_a_body_that_cannot_be_read_is_refused(emulator: RunningEmulator) -> None:
    port = int(emulator.base_url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(
            f"POST /client/v4/accounts/{ACCOUNT}/storage/kv/namespaces HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: many\r\n\r\n".encode()
        )
        status_line = raw.recv(4096).split(b"\r\n")[0]
    assert status_line == b"HTTP/1.1 400 Bad Request"
