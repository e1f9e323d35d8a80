"""How a hostname reaches a Worker: custom domains (account level, one Worker per hostname), zone
routes (one script per pattern), and the zone's DNS records (the tunnel's CNAMEs)."""

from __future__ import annotations

import uuid
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Request, paged, whole
from local_services.cloudflare_api.router import account, item, route, zone
from local_services.cloudflare_api.store import State, Store, now

# No public source names the Workers API's code for a malformed custom domain or route; 10021 (the
# Workers validation code, scripts.py) stands in. Attaching a hostname another Worker holds is 100117, as
# the lifecycle stand-in has it (https://developers.cloudflare.com/workers/configuration/routing/custom-domains/:
# one hostname serves one Worker); a route pattern that exists is 10020. No source gives the HTTP status
# of these two conflicts: 409 stands in, as for every name conflict here.
INVALID = 10021
HOSTNAME_TAKEN = 100117
DOMAIN_NOT_FOUND = 100114
ROUTE_TAKEN = 10020
ROUTE_NOT_FOUND = 10005
# DNS records (https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/):
# a CNAME where an A, AAAA or CNAME of that name exists is 81053 "An A, AAAA, or CNAME record with that host
# already exists." (cloudflare/terraform-provider-cloudflare#1247); an A or AAAA where a CNAME exists is
# 81054 "A CNAME record with that host already exists." (favonia/cloudflare-ddns#990); the same record
# twice is 81057 "Record already exists." (aaPanel/aaPanel#112); an unknown id is 81044 "Record does not
# exist." (zanjie1999/cloudflare-api-v4-ddns#5). For a malformed record, 1004 ("DNS Validation Error")
# stands in.
DNS_INVALID = 1004
CNAME_CLASH = 81053
CNAME_EXISTS = 81054
DNS_DUPLICATE = 81057
DNS_NOT_FOUND = 81044


def _in_zone(hostname: str, zone_name: str) -> bool:
    return hostname == zone_name or hostname.endswith("." + zone_name)


# --- custom domains ------------------------------------------------------------------------------------


def _domain_answer(domain_id: str, domain: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": domain_id,
        "cert_id": domain["cert_id"],
        "environment": domain["environment"],
        **{key: domain[key] for key in ("hostname", "service", "zone_id", "zone_name")},
    }


@route("PUT", "/accounts/{account_id}/workers/domains")
def attach_domain(request: Request, store: Store) -> Answer:
    fields = Fields(request.json_object(INVALID), INVALID, "custom domain")
    hostname, service = fields.need_text("hostname").lower(), fields.need_text("service")
    zone_id, zone_name = fields.text("zone_id"), fields.text("zone_name")
    environment = fields.text("environment") or "production"

    def apply(state: State) -> Answer:
        home = account(state, request)
        if service not in home["scripts"]:
            raise ApiError(404, 10007, f"Worker {service!r} not found")
        zones = [
            (zid, z)
            for zid, z in state["zones"].items()
            if z["account_id"] == request.params["account_id"]
            and (zid == zone_id or z["name"] == zone_name or (zone_id is None and zone_name is None))
            and _in_zone(hostname, z["name"])
        ]
        if not zones:
            raise ApiError(400, INVALID, f"{hostname} is not in a zone of this account")
        found_zone_id, found_zone = zones[0]
        for domain_id, domain in home["worker_domains"].items():
            if domain["hostname"] == hostname:
                if domain["service"] != service:
                    raise ApiError(
                        409, HOSTNAME_TAKEN, f"{hostname} is already attached to Worker {domain['service']!r}"
                    )
                domain["environment"] = environment
                return Answer(_domain_answer(domain_id, domain))
        domain_id = uuid.uuid4().hex
        domain = {
            "hostname": hostname,
            "service": service,
            "environment": environment,
            "zone_id": found_zone_id,
            "zone_name": found_zone["name"],
            "cert_id": uuid.uuid4().hex,
            "created_on": now(),
        }
        home["worker_domains"][domain_id] = domain
        return Answer(_domain_answer(domain_id, domain))

    return store.change(apply)


@route("GET", "/accounts/{account_id}/workers/domains")
def list_domains(request: Request, store: Store) -> Answer:
    wanted = {
        key: request.query_value(key)
        for key in ("hostname", "service", "zone_id", "zone_name", "environment")
    }

    def look(state: State) -> Answer:
        domains = [
            _domain_answer(domain_id, domain)
            for domain_id, domain in sorted(account(state, request)["worker_domains"].items())
            if all(value is None or domain[key] == value for key, value in wanted.items())
        ]
        return whole(domains)

    return store.read(look)


def _domain(state: State, request: Request) -> dict[str, Any]:
    return item(
        account(state, request)["worker_domains"],
        request.params["domain_id"],
        404,
        DOMAIN_NOT_FOUND,
        "Domain not found",
    )


@route("GET", "/accounts/{account_id}/workers/domains/{domain_id}")
def get_domain(request: Request, store: Store) -> Answer:
    return store.read(
        lambda state: Answer(_domain_answer(request.params["domain_id"], _domain(state, request)))
    )


@route("DELETE", "/accounts/{account_id}/workers/domains/{domain_id}")
def detach_domain(request: Request, store: Store) -> Answer:
    def apply(state: State) -> Answer:
        _domain(state, request)
        del account(state, request)["worker_domains"][request.params["domain_id"]]
        return Answer(None)

    return store.change(apply)


# --- zone routes -------------------------------------------------------------------------------------


def _route_fields(request: Request) -> tuple[str, str | None]:
    fields = Fields(request.json_object(INVALID), INVALID, "route")
    # A route without a script (absent, null or "") turns Workers off for the pattern
    # (https://developers.cloudflare.com/workers/configuration/routing/routes/).
    return fields.need_text("pattern"), fields.text("script", empty=True) or None


def _put_route(state: State, request: Request, route_id: str, pattern: str, script: str | None) -> Answer:
    home = zone(state, request)
    if not _in_zone(pattern.split("/")[0].lstrip("*.").lower(), home["name"]):
        raise ApiError(400, INVALID, f"route pattern {pattern} is not in zone {home['name']}")
    for other_id, other in home["worker_routes"].items():
        if other_id != route_id and other["pattern"] == pattern:
            raise ApiError(409, ROUTE_TAKEN, f"route {pattern} already exists")
    home["worker_routes"][route_id] = {"pattern": pattern, "script": script}
    return Answer({"id": route_id, "pattern": pattern, "script": script})


@route("POST", "/zones/{zone_id}/workers/routes")
def create_route(request: Request, store: Store) -> Answer:
    pattern, script = _route_fields(request)
    return store.change(lambda state: _put_route(state, request, uuid.uuid4().hex, pattern, script))


def _route(state: State, request: Request) -> dict[str, Any]:
    return item(
        zone(state, request)["worker_routes"],
        request.params["route_id"],
        404,
        ROUTE_NOT_FOUND,
        "Route not found",
    )


@route("PUT", "/zones/{zone_id}/workers/routes/{route_id}")
def update_route(request: Request, store: Store) -> Answer:
    pattern, script = _route_fields(request)

    def apply(state: State) -> Answer:
        _route(state, request)
        return _put_route(state, request, request.params["route_id"], pattern, script)

    return store.change(apply)


@route("GET", "/zones/{zone_id}/workers/routes")
def list_routes(request: Request, store: Store) -> Answer:
    return store.read(
        lambda state: whole(
            [{"id": i, **r} for i, r in sorted(zone(state, request)["worker_routes"].items())]
        )
    )


@route("GET", "/zones/{zone_id}/workers/routes/{route_id}")
def get_route(request: Request, store: Store) -> Answer:
    return store.read(lambda state: Answer({"id": request.params["route_id"], **_route(state, request)}))


@route("DELETE", "/zones/{zone_id}/workers/routes/{route_id}")
def delete_route(request: Request, store: Store) -> Answer:
    def apply(state: State) -> Answer:
        _route(state, request)
        del zone(state, request)["worker_routes"][request.params["route_id"]]
        return Answer({"id": request.params["route_id"]})

    return store.change(apply)


# --- DNS records ---------------------------------------------------------------------------------------

RECORD_FIELDS = ("type", "name", "content", "proxied", "ttl", "comment", "tags")


def _record_body(request: Request, zone_name: str, partial: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {**(partial or {}), **request.json_object(DNS_INVALID)}
    fields = Fields(body, DNS_INVALID, "DNS record")
    kind, name, content = (
        fields.need_text("type").upper(),
        fields.need_text("name").lower(),
        fields.need_text("content"),
    )
    if kind not in {"A", "AAAA", "CNAME", "TXT", "MX", "NS", "CAA", "SRV"}:
        raise ApiError(400, DNS_INVALID, f"DNS Validation Error: unsupported record type {kind}")
    if name == "@":
        name = zone_name
    if not _in_zone(name, zone_name):
        name = f"{name}.{zone_name}"
    ttl = fields.number("ttl") or 1
    # TTL 1 means automatic; otherwise 30 to 86400 seconds (https://developers.cloudflare.com/dns/manage-dns-records/reference/ttl/).
    if ttl != 1 and not 30 <= ttl <= 86400:
        raise ApiError(400, DNS_INVALID, "DNS Validation Error: ttl must be 1 (automatic) or 30 to 86400")
    proxied = bool(fields.flag("proxied"))
    return {
        "type": kind,
        "name": name,
        "content": content,
        "proxied": proxied,
        "ttl": ttl,
        "comment": fields.text("comment", empty=True),
        "tags": fields.texts("tags") or [],
    }


def _record_answer(record_id: str, record: dict[str, Any], zone_id: str, zone_name: str) -> dict[str, Any]:
    return {
        "id": record_id,
        **{key: record[key] for key in RECORD_FIELDS},
        "proxiable": True,
        "settings": {},
        "meta": {},
        "created_on": record["created_on"],
        "modified_on": record["modified_on"],
        "zone_id": zone_id,
        "zone_name": zone_name,
    }


def _store_record(state: State, request: Request, record_id: str, body: dict[str, Any]) -> Answer:
    home = zone(state, request)
    for other_id, other in home["dns_records"].items():
        if other_id == record_id or other["name"] != body["name"]:
            continue
        if body["type"] == "CNAME" and other["type"] in {"A", "AAAA", "CNAME"}:
            raise ApiError(400, CNAME_CLASH, "An A, AAAA, or CNAME record with that host already exists.")
        if body["type"] in {"A", "AAAA"} and other["type"] == "CNAME":
            raise ApiError(400, CNAME_EXISTS, "A CNAME record with that host already exists.")
        if (other["type"], other["content"]) == (body["type"], body["content"]):
            raise ApiError(400, DNS_DUPLICATE, "Record already exists.")
    existing = home["dns_records"].get(record_id)
    stamp = now()
    record = {**body, "created_on": existing["created_on"] if existing else stamp, "modified_on": stamp}
    home["dns_records"][record_id] = record
    return Answer(_record_answer(record_id, record, request.params["zone_id"], home["name"]))


def _zone_name(store: Store, request: Request) -> str:
    return store.read(lambda state: str(zone(state, request)["name"]))


@route("POST", "/zones/{zone_id}/dns_records")
def create_record(request: Request, store: Store) -> Answer:
    body = _record_body(request, _zone_name(store, request))
    return store.change(lambda state: _store_record(state, request, uuid.uuid4().hex, body))


def _record(state: State, request: Request) -> dict[str, Any]:
    return item(
        zone(state, request)["dns_records"],
        request.params["record_id"],
        404,
        DNS_NOT_FOUND,
        "Record does not exist.",
    )


@route("PUT", "/zones/{zone_id}/dns_records/{record_id}")
def replace_record(request: Request, store: Store) -> Answer:
    body = _record_body(request, _zone_name(store, request))

    def apply(state: State) -> Answer:
        _record(state, request)
        return _store_record(state, request, request.params["record_id"], body)

    return store.change(apply)


@route("PATCH", "/zones/{zone_id}/dns_records/{record_id}")
def edit_record(request: Request, store: Store) -> Answer:
    current = store.read(lambda state: {k: _record(state, request)[k] for k in RECORD_FIELDS})
    body = _record_body(request, _zone_name(store, request), current)

    def apply(state: State) -> Answer:
        _record(state, request)
        return _store_record(state, request, request.params["record_id"], body)

    return store.change(apply)


@route("GET", "/zones/{zone_id}/dns_records")
def list_records(request: Request, store: Store) -> Answer:
    name, kind = request.query_value("name"), request.query_value("type")

    def look(state: State) -> list[dict[str, Any]]:
        home = zone(state, request)
        return [
            _record_answer(i, r, request.params["zone_id"], home["name"])
            for i, r in sorted(home["dns_records"].items(), key=lambda pair: (pair[1]["name"], pair[0]))
            if (name is None or r["name"] == name.lower()) and (kind is None or r["type"] == kind.upper())
        ]

    return paged(store.read(look), request, DNS_INVALID, per_page_default=100, high=5_000_000)


@route("GET", "/zones/{zone_id}/dns_records/{record_id}")
def get_record(request: Request, store: Store) -> Answer:
    return store.read(
        lambda state: Answer(
            _record_answer(
                request.params["record_id"],
                _record(state, request),
                request.params["zone_id"],
                zone(state, request)["name"],
            )
        )
    )


@route("DELETE", "/zones/{zone_id}/dns_records/{record_id}")
def delete_record(request: Request, store: Store) -> Answer:
    def apply(state: State) -> Answer:
        _record(state, request)
        del zone(state, request)["dns_records"][request.params["record_id"]]
        return Answer({"id": request.params["record_id"]})

    return store.change(apply)
