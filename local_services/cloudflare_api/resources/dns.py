"""A zone's DNS records (the tunnel's CNAMEs): names inside the zone, Cloudflare's TTL range, and its
refusals for records that cannot share a name."""

from __future__ import annotations

import uuid
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Request, paged
from local_services.cloudflare_api.router import in_zone, item, route, zone
from local_services.cloudflare_api.store import State, Store, now

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
    if not in_zone(name, zone_name):
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


def _overwrite_record(store: Store, request: Request, body: dict[str, Any]) -> Answer:
    """Writes `body` over the existing record the path names (404 if there is none)."""

    def apply(state: State) -> Answer:
        _record(state, request)
        return _store_record(state, request, request.params["record_id"], body)

    return store.change(apply)


@route("PUT", "/zones/{zone_id}/dns_records/{record_id}")
def replace_record(request: Request, store: Store) -> Answer:
    return _overwrite_record(store, request, _record_body(request, _zone_name(store, request)))


@route("PATCH", "/zones/{zone_id}/dns_records/{record_id}")
def edit_record(request: Request, store: Store) -> Answer:
    current = store.read(lambda state: {k: _record(state, request)[k] for k in RECORD_FIELDS})
    return _overwrite_record(store, request, _record_body(request, _zone_name(store, request), current))


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
