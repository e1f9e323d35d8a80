"""Tunnels and their remote configuration, Logpush jobs and the ownership challenge, through the
official client."""

from __future__ import annotations

import base64

from cloudflare import Cloudflare

from local_services.cloudflare_api.testing import RunningEmulator
from tests.emulator.conftest import ACCOUNT, ZONE_NAME, client, refused, unchanged

INGRESS = [
    {"hostname": f"airflow.{ZONE_NAME}", "service": "http://airflow-api:8080"},
    {"service": "http_status:404"},
]


def test_tunnel_names_are_unique_and_the_configuration_is_versioned(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    tunnels = cf.zero_trust.tunnels.cloudflared
    secret = base64.b64encode(b"s" * 32).decode()
    tunnel = tunnels.create(account_id=ACCOUNT, name="airflow", config_src="cloudflare", tunnel_secret=secret)
    assert tunnel.id and tunnel.name == "airflow"
    refused(409, 1013, tunnels.create, account_id=ACCOUNT, name="airflow", config_src="cloudflare")
    refused(400, 1056, tunnels.create, account_id=ACCOUNT, name="x", tunnel_secret="c2hvcnQ=")
    # The client's published type requires a hostname on every ingress rule, yet the API answers the
    # catch-all without one (local_services/cloudflare_api/resources/tunnels.py): these answers are read
    # with the client's default, non-strict parsing.
    with client(emulator, strict=False) as loose:
        configurations = loose.zero_trust.tunnels.cloudflared.configurations
        first = configurations.update(tunnel.id, account_id=ACCOUNT, config={"ingress": INGRESS})
        assert first is not None and first.version == 1
        second = configurations.update(tunnel.id, account_id=ACCOUNT, config={"ingress": INGRESS})
        assert second is not None and second.version == 2
        got = configurations.get(tunnel.id, account_id=ACCOUNT)
    assert got is not None and got.config is not None and got.config.ingress is not None
    assert [rule.service for rule in got.config.ingress] == ["http://airflow-api:8080", "http_status:404"]
    assert got.config.ingress[0].hostname == f"airflow.{ZONE_NAME}"
    same = unchanged(emulator)
    # cloudflared's rule: the last ingress rule matches everything.
    error = refused(
        400,
        1056,
        tunnels.configurations.update,
        tunnel.id,
        account_id=ACCOUNT,
        config={"ingress": INGRESS[:1]},
    )
    assert "The last ingress rule must match all URLs" in error.errors[0].message
    same()
    assert [t.name for t in tunnels.list(account_id=ACCOUNT)] == ["airflow"]
    assert tunnels.edit(tunnel.id, account_id=ACCOUNT, name="airflow-2").name == "airflow-2"
    tunnels.delete(tunnel.id, account_id=ACCOUNT)
    refused(404, 1003, tunnels.get, tunnel.id, account_id=ACCOUNT)
    assert emulator.state()["accounts"][ACCOUNT]["tunnels"] == {}


def test_a_storage_destination_needs_its_ownership_challenge(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    destination = "s3://airgate-logs/prod?region=eu-west-1"
    job = {
        "account_id": ACCOUNT,
        "dataset": "workers_trace_events",
        "destination_conf": destination,
        "name": "gw",
    }
    same = unchanged(emulator)
    refused(400, 1002, cf.logpush.jobs.create, **job)
    same()
    challenge = cf.logpush.ownership.create(account_id=ACCOUNT, destination_conf=destination)
    assert (
        challenge is not None and challenge.filename and challenge.filename.startswith("airgate-logs/prod/")
    )
    # Cloudflare wrote the token into that file; the emulator's state is where a test reads it.
    token = emulator.state()["accounts"][ACCOUNT]["ownership_challenges"]["s3://airgate-logs/prod"]
    refused(400, 1002, cf.logpush.jobs.create, **job, ownership_challenge="guess")
    valid = cf.logpush.ownership.validate(
        account_id=ACCOUNT, destination_conf=destination, ownership_challenge=token
    )
    assert valid is not None and valid.valid is True
    created = cf.logpush.jobs.create(**job, ownership_challenge=token, enabled=True, filter='{"where": {}}')
    assert created is not None and created.id == 1 and created.enabled is True
    # The same destination needs no new challenge for an update; another one does.
    updated = cf.logpush.jobs.update(created.id, account_id=ACCOUNT, enabled=False)
    assert updated is not None and updated.enabled is False and updated.destination_conf == destination
    refused(
        400,
        1002,
        cf.logpush.jobs.update,
        created.id,
        account_id=ACCOUNT,
        destination_conf="gs://other/bucket",
    )
    https = cf.logpush.jobs.create(
        account_id=ACCOUNT, dataset="workers_trace_events", destination_conf="https://logs.acme.test/ingest"
    )
    assert https is not None and https.id == 2
    refused(
        400,
        1004,
        cf.logpush.jobs.create,
        account_id=ACCOUNT,
        dataset="http_requests",
        destination_conf="https://x.test",
    )
    assert [j.id for j in cf.logpush.jobs.list(account_id=ACCOUNT)] == [1, 2]
    assert cf.logpush.jobs.get(1, account_id=ACCOUNT).name == "gw"
    cf.logpush.jobs.delete(1, account_id=ACCOUNT)
    refused(404, 1003, cf.logpush.jobs.get, 1, account_id=ACCOUNT)
    assert list(emulator.state()["accounts"][ACCOUNT]["logpush_jobs"]) == ["2"]
