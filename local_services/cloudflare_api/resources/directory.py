"""What the clients look up before they change anything: accounts, zones, and the token check.
Accounts and zones are seeded when the emulator starts, as an account has them before any deploy."""

from __future__ import annotations

from typing import Any

from local_services.cloudflare_api.request import Answer, Request, paged
from local_services.cloudflare_api.router import account, route, zone
from local_services.cloudflare_api.store import State, Store

# No public source names the code for a malformed listing query; 1001 stands in.
INVALID = 1001


def _account(account_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": account_id,
        "name": entry["name"],
        "type": "standard",
        "created_on": entry["created_on"],
        "settings": {"enforce_twofactor": False, "abuse_contact_email": None},
    }


def _zone(state: State, zone_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    owner = state["accounts"].get(entry["account_id"], {"name": entry["account_id"]})
    return {
        "id": zone_id,
        "name": entry["name"],
        "status": "active",
        "paused": False,
        "type": "full",
        "development_mode": 0,
        "account": {"id": entry["account_id"], "name": owner["name"]},
        "owner": {"id": None, "name": None, "type": None},
        "plan": {
            "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            "name": "Free Website",
            "price": 0,
            "currency": "USD",
        },
        "meta": {"phishing_detected": False, "custom_certificate_quota": 0, "page_rule_quota": 3},
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": None,
        "original_registrar": None,
        "original_dnshost": None,
        "created_on": entry["created_on"],
        "modified_on": entry["created_on"],
        "activated_on": entry["created_on"],
    }


@route("GET", "/accounts")
def list_accounts(request: Request, store: Store) -> Answer:
    accounts = store.read(lambda state: [_account(i, a) for i, a in sorted(state["accounts"].items())])
    return paged(accounts, request, INVALID, per_page_default=20, high=50)


@route("GET", "/accounts/{account_id}")
def get_account(request: Request, store: Store) -> Answer:
    return store.read(lambda state: Answer(_account(request.params["account_id"], account(state, request))))


@route("GET", "/zones")
def list_zones(request: Request, store: Store) -> Answer:
    name, account_id = request.query_value("name"), request.query_value("account.id")

    def look(state: State) -> list[dict[str, Any]]:
        return [
            _zone(state, i, z)
            for i, z in sorted(state["zones"].items(), key=lambda pair: (pair[1]["name"], pair[0]))
            if (name is None or z["name"] == name) and (account_id is None or z["account_id"] == account_id)
        ]

    return paged(store.read(look), request, INVALID, per_page_default=20, high=50)


@route("GET", "/zones/{zone_id}")
def get_zone(request: Request, store: Store) -> Answer:
    return store.read(lambda state: Answer(_zone(state, request.params["zone_id"], zone(state, request))))


def _verified(request: Request, store: Store) -> Answer:
    # Authentication already passed; the token is active (the API's answer shape for /tokens/verify).
    return Answer({"id": "emulator-token", "status": "active"})


route("GET", "/user/tokens/verify")(_verified)
route("GET", "/accounts/{account_id}/tokens/verify")(_verified)
