"""Cloudflare Tunnels (`cfd_tunnel`): name unique per account, and the remotely managed
configuration (ingress rules), versioned on every change."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Request, paged
from local_services.cloudflare_api.router import account, item, route
from local_services.cloudflare_api.store import State, Store, now

# "tunnel with name already exists" (code 1013, as the lifecycle stand-in has it). No public source names
# the codes for a malformed tunnel request or an unknown tunnel: 1056 and 1003 stand in.
NAME_TAKEN = 1013
INVALID = 1056
NOT_FOUND = 1003


def _tunnel(state: State, request: Request) -> dict[str, Any]:
    return item(
        account(state, request)["tunnels"], request.params["tunnel_id"], 404, NOT_FOUND, "Tunnel not found"
    )


def _answer(tunnel_id: str, tunnel: dict[str, Any], account_id: str) -> dict[str, Any]:
    return {
        "id": tunnel_id,
        "account_tag": account_id,
        "name": tunnel["name"],
        "created_at": tunnel["created_at"],
        "deleted_at": None,
        "connections": [],
        "conns_active_at": None,
        "conns_inactive_at": tunnel["created_at"],
        "config_src": tunnel["config_src"],
        "remote_config": tunnel["config_src"] == "cloudflare",
        "status": "inactive",
        "tun_type": "cfd_tunnel",
        "metadata": {},
    }


def _unique(state: State, request: Request, name: str, tunnel_id: str | None) -> None:
    for other_id, other in account(state, request)["tunnels"].items():
        if other_id != tunnel_id and other["name"] == name:
            raise ApiError(409, NAME_TAKEN, "tunnel with name already exists")


def _secret(fields: Fields) -> str | None:
    secret = fields.text("tunnel_secret")
    if secret is not None:
        # The secret is base64 of at least 32 bytes (https://developers.cloudflare.com/api/resources/zero_trust/
        # subresources/tunnels/subresources/cloudflared/methods/create/).
        try:
            if len(base64.b64decode(secret, validate=True)) < 32:
                raise ValueError
        except ValueError:
            raise fields.refuse("tunnel_secret must be base64 of at least 32 bytes") from None
    return secret


@route("POST", "/accounts/{account_id}/cfd_tunnel")
def create(request: Request, store: Store) -> Answer:
    fields = Fields(request.json_object(INVALID), INVALID, "tunnel")
    name = fields.need_text("name")
    config_src = fields.text("config_src") or "local"
    if config_src not in {"local", "cloudflare"}:
        raise fields.refuse("config_src must be local or cloudflare")
    secret = _secret(fields) or base64.b64encode(secrets.token_bytes(32)).decode()

    def apply(state: State) -> Answer:
        _unique(state, request, name, None)
        tunnel_id = str(uuid.uuid4())
        tunnel = {
            "name": name,
            "config_src": config_src,
            "secret": secret,
            "created_at": now(),
            "configuration": None,
        }
        account(state, request)["tunnels"][tunnel_id] = tunnel
        return Answer(_answer(tunnel_id, tunnel, request.params["account_id"]))

    return store.change(apply)


@route("GET", "/accounts/{account_id}/cfd_tunnel")
def list_tunnels(request: Request, store: Store) -> Answer:
    name = request.query_value("name")

    def look(state: State) -> list[dict[str, Any]]:
        tunnels = sorted(
            account(state, request)["tunnels"].items(), key=lambda pair: (pair[1]["created_at"], pair[0])
        )
        return [
            _answer(i, t, request.params["account_id"])
            for i, t in tunnels
            if name is None or t["name"] == name
        ]

    return paged(store.read(look), request, INVALID, per_page_default=20, high=1000)


@route("GET", "/accounts/{account_id}/cfd_tunnel/{tunnel_id}")
def get(request: Request, store: Store) -> Answer:
    return store.read(
        lambda state: Answer(
            _answer(request.params["tunnel_id"], _tunnel(state, request), request.params["account_id"])
        )
    )


@route("PATCH", "/accounts/{account_id}/cfd_tunnel/{tunnel_id}")
def edit(request: Request, store: Store) -> Answer:
    fields = Fields(request.json_object(INVALID), INVALID, "tunnel")
    name, secret = fields.text("name"), _secret(fields)

    def apply(state: State) -> Answer:
        tunnel = _tunnel(state, request)
        if name is not None:
            _unique(state, request, name, request.params["tunnel_id"])
            tunnel["name"] = name
        if secret is not None:
            tunnel["secret"] = secret
        return Answer(_answer(request.params["tunnel_id"], tunnel, request.params["account_id"]))

    return store.change(apply)


@route("DELETE", "/accounts/{account_id}/cfd_tunnel/{tunnel_id}")
def delete(request: Request, store: Store) -> Answer:
    def apply(state: State) -> Answer:
        tunnel = _tunnel(state, request)
        del account(state, request)["tunnels"][request.params["tunnel_id"]]
        return Answer(
            {
                **_answer(request.params["tunnel_id"], tunnel, request.params["account_id"]),
                "deleted_at": now(),
            }
        )

    return store.change(apply)


def _ingress(config: dict[str, Any]) -> None:
    rules = Fields(config, INVALID, "config").objects("ingress") or []
    for rule in rules:
        if not isinstance(rule.get("service"), str) or not rule["service"]:
            raise ApiError(400, INVALID, "every ingress rule needs a service")
    # The last rule matches everything: the API refuses "Bad Configuration: Validation failed: The last
    # ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"
    # (cloudflare/terraform-provider-cloudflare#2327), and answers that rule without a hostname
    # (STRRL/cloudflare-tunnel-ingress-controller#77 shows the configuration cloudflared receives).
    if rules and (rules[-1].get("hostname") or rules[-1].get("path")):
        raise ApiError(
            400,
            INVALID,
            "Validation failed: The last ingress rule must match all URLs "
            "(i.e. it should not have a hostname or path filter)",
        )


def _configuration(tunnel_id: str, tunnel: dict[str, Any], account_id: str) -> dict[str, Any]:
    stored = tunnel["configuration"] or {"config": None, "version": 0, "created_at": tunnel["created_at"]}
    return {
        "account_id": account_id,
        "tunnel_id": tunnel_id,
        "config": stored["config"],
        "version": stored["version"],
        "created_at": stored["created_at"],
        "source": "cloudflare",
    }


@route("PUT", "/accounts/{account_id}/cfd_tunnel/{tunnel_id}/configurations")
def configure(request: Request, store: Store) -> Answer:
    config = Fields(request.json_object(INVALID), INVALID, "configuration").mapping("config", required=True)
    assert config is not None
    _ingress(config)

    def apply(state: State) -> Answer:
        tunnel = _tunnel(state, request)
        if tunnel["config_src"] != "cloudflare":
            raise ApiError(
                400, INVALID, "this tunnel is locally managed (config_src local): no remote configuration"
            )
        version = (tunnel["configuration"] or {"version": 0})["version"] + 1
        tunnel["configuration"] = {"config": config, "version": version, "created_at": now()}
        return Answer(_configuration(request.params["tunnel_id"], tunnel, request.params["account_id"]))

    return store.change(apply)


@route("GET", "/accounts/{account_id}/cfd_tunnel/{tunnel_id}/configurations")
def configuration(request: Request, store: Store) -> Answer:
    return store.read(
        lambda state: Answer(
            _configuration(request.params["tunnel_id"], _tunnel(state, request), request.params["account_id"])
        )
    )
