"""Custom domains, zone routes and DNS records through the official client: one Worker per hostname,
one script per route pattern, CNAMEs that do not clash, and lookups of the seeded zone and account."""

from __future__ import annotations

from cloudflare import Cloudflare

from local_services.cloudflare_api.testing import RunningEmulator
from tests.emulator.conftest import ACCOUNT, NO_ROUTE, ZONE, ZONE_NAME, refused, unchanged
from tests.emulator.test_workers import upload


def test_a_hostname_serves_one_worker(cf: Cloudflare, emulator: RunningEmulator) -> None:
    upload(cf, "one")
    upload(cf, "two")
    hostname = f"gw.{ZONE_NAME}"
    domain = cf.workers.domains.update(account_id=ACCOUNT, hostname=hostname, service="one", zone_id=ZONE)
    assert (domain.zone_name, domain.service, domain.environment) == (ZONE_NAME, "one", "production")
    refused(
        409,
        100117,
        cf.workers.domains.update,
        account_id=ACCOUNT,
        hostname=hostname,
        service="two",
        zone_id=ZONE,
    )
    # Attaching it again to the same Worker is the same domain.
    again = cf.workers.domains.update(account_id=ACCOUNT, hostname=hostname, service="one", zone_id=ZONE)
    assert again.id == domain.id
    assert [d.hostname for d in cf.workers.domains.list(account_id=ACCOUNT, service="one")] == [hostname]
    assert list(cf.workers.domains.list(account_id=ACCOUNT, service="two")) == []
    assert cf.workers.domains.get(domain.id, account_id=ACCOUNT).service == "one"
    same = unchanged(emulator)
    refused(
        404, 10007, cf.workers.domains.update, account_id=ACCOUNT, hostname=f"x.{ZONE_NAME}", service="none"
    )
    refused(
        400, 10021, cf.workers.domains.update, account_id=ACCOUNT, hostname="gw.elsewhere.test", service="one"
    )
    same()
    cf.workers.domains.delete(domain.id, account_id=ACCOUNT)
    refused(404, 100114, cf.workers.domains.get, domain.id, account_id=ACCOUNT)
    assert emulator.state()["accounts"][ACCOUNT]["worker_domains"] == {}


def test_a_route_pattern_is_taken_once(cf: Cloudflare, emulator: RunningEmulator) -> None:
    upload(cf, "gw")
    route = cf.workers.routes.create(zone_id=ZONE, pattern=f"gw.{ZONE_NAME}/*", script="gw")
    refused(409, 10020, cf.workers.routes.create, zone_id=ZONE, pattern=f"gw.{ZONE_NAME}/*", script="gw")
    moved = cf.workers.routes.update(route.id, zone_id=ZONE, pattern=f"api.{ZONE_NAME}/*", script="gw")
    assert moved.pattern == f"api.{ZONE_NAME}/*"
    assert [r.pattern for r in cf.workers.routes.list(zone_id=ZONE)] == [f"api.{ZONE_NAME}/*"]
    assert cf.workers.routes.get(route.id, zone_id=ZONE).script == "gw"
    refused(400, 10021, cf.workers.routes.create, zone_id=ZONE, pattern="gw.elsewhere.test/*", script="gw")
    # A route with no script (as the provider sends an unset one: "") turns Workers off for the pattern.
    off = cf.workers.routes.create(zone_id=ZONE, pattern=f"static.{ZONE_NAME}/*", script="")
    assert off.script is None and cf.workers.routes.get(off.id, zone_id=ZONE).script is None
    cf.workers.routes.delete(off.id, zone_id=ZONE)
    cf.workers.routes.delete(route.id, zone_id=ZONE)
    refused(404, 10005, cf.workers.routes.get, route.id, zone_id=ZONE)
    refused(400, NO_ROUTE, cf.workers.routes.list, zone_id="0" * 32)
    assert emulator.state()["zones"][ZONE]["worker_routes"] == {}


def test_dns_records(cf: Cloudflare, emulator: RunningEmulator) -> None:
    record = cf.dns.records.create(
        zone_id=ZONE, name="airflow", type="CNAME", content="abc.cfargotunnel.com", proxied=True, ttl=1
    )
    assert record is not None and record.name == f"airflow.{ZONE_NAME}" and record.proxied is True
    a_record = {"zone_id": ZONE, "name": "airflow", "type": "A", "content": "192.0.2.1", "ttl": 1}
    refused(400, 81054, cf.dns.records.create, **a_record)
    refused(
        400, 81053, cf.dns.records.create, zone_id=ZONE, name="airflow", type="CNAME", content="x.test", ttl=1
    )
    txt = {"zone_id": ZONE, "name": "airflow", "type": "TXT", "content": "v=1", "ttl": 1}
    # Only A, AAAA and CNAME clash with a CNAME (records-with-same-name, hostnames.py): a TXT is accepted.
    txt_record = cf.dns.records.create(**txt)
    assert txt_record is not None
    refused(400, 81057, cf.dns.records.create, **txt)
    refused(400, 1004, cf.dns.records.create, zone_id=ZONE, name="x", type="CNAME", content="y.test", ttl=5)
    edited = cf.dns.records.edit(
        record.id,
        zone_id=ZONE,
        comment="airgate",
        type="CNAME",
        name="airflow",
        content="def.cfargotunnel.com",
        ttl=1,
    )
    assert edited is not None and edited.content == "def.cfargotunnel.com" and edited.comment == "airgate"
    listed = cf.dns.records.list(zone_id=ZONE, type="CNAME", name=f"airflow.{ZONE_NAME}")
    assert [r.id for r in listed] == [record.id]
    cf.dns.records.delete(record.id, zone_id=ZONE)
    cf.dns.records.delete(txt_record.id, zone_id=ZONE)
    refused(404, 81044, cf.dns.records.get, record.id, zone_id=ZONE)
    assert emulator.state()["zones"][ZONE]["dns_records"] == {}


def test_the_seeded_zone_and_account_are_found(cf: Cloudflare) -> None:
    zones = list(cf.zones.list(name=ZONE_NAME))
    assert [(z.id, z.account.id) for z in zones] == [(ZONE, ACCOUNT)]
    assert cf.zones.get(zone_id=ZONE) is not None
    assert [a.id for a in cf.accounts.list()] == [ACCOUNT]
    account = cf.accounts.get(account_id=ACCOUNT)
    assert account is not None and account.id == ACCOUNT
    assert cf.user.tokens.verify() is not None
    refused(400, NO_ROUTE, cf.accounts.get, account_id="0" * 32)
