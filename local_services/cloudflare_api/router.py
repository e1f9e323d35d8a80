"""The table of `/client/v4` paths: each resource module registers its handlers here with the
path template the API documents (`/accounts/{account_id}/...`)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_services.cloudflare_api.errors import ApiError, method_not_allowed, no_route, unknown_identifier
from local_services.cloudflare_api.request import Answer, Request
from local_services.cloudflare_api.store import State, Store

Handler = Callable[[Request, Store], Answer]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


ROUTES: list[Route] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    pattern = re.compile(f"^{regex}$")

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, pattern, handler))
        return handler

    return register


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    allowed = False
    for candidate in ROUTES:
        found = candidate.pattern.match(path)
        if found is None:
            continue
        if candidate.method == method:
            return candidate.handler, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        allowed = True
    raise method_not_allowed() if allowed else no_route(path)


def account(state: State, request: Request) -> dict[str, Any]:
    """The path's account, as seeded at start: an account the token does not reach is not routed."""
    found = state["accounts"].get(request.params["account_id"])
    if found is None:
        raise unknown_identifier(request.path)
    assert isinstance(found, dict)
    return found


def zone(state: State, request: Request) -> dict[str, Any]:
    found = state["zones"].get(request.params["zone_id"])
    if found is None:
        raise unknown_identifier(request.path)
    assert isinstance(found, dict)
    return found


def in_zone(hostname: str, zone_name: str) -> bool:
    return hostname == zone_name or hostname.endswith("." + zone_name)


def item(collection: dict[str, Any], key: str, status: int, code: int, message: str) -> dict[str, Any]:
    found = collection.get(key)
    if found is None:
        raise ApiError(status, code, message)
    assert isinstance(found, dict)
    return found
