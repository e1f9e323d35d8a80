"""How a hostname reaches a Worker: custom domains (account level, one Worker per hostname) and zone
routes (one script per pattern). DNS records are in dns.py."""

from __future__ import annotations

import uuid
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Request, whole
from local_services.cloudflare_api.router import account, in_zone, item, route, zone
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
            and in_zone(hostname, z["name"])
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
    if not in_zone(pattern.split("/")[0].lstrip("*.").lower(), home["name"]):
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
