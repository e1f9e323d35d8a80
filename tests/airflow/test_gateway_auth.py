"""airflow-gateway-auth: tokens are fetched once, reused, refreshed before expiry, dropped on 401;
and the `airgate_gateway` hook sends a bearer token and nothing of its OAuth2 settings as headers."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from airflow.models.connection import Connection
from airflow_gateway_auth.hooks import GatewayHttpHook
from airflow_gateway_auth.oauth2 import ClientCredentialsAuth, TokenCache, TokenError
from airflow_gateway_auth.provider import get_provider_info

from tests.airflow.conftest import Scripted, StandIn


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def auth(stand_in: StandIn, cache: TokenCache, **kwargs: Any) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        "airflow-worker",
        "client-secret",
        token_url=f"{stand_in.url}/token",
        audience="http://airgate.localhost",
        cache=cache,
        **kwargs,
    )


def test_token_is_fetched_once_and_sent_as_bearer(stand_in: StandIn) -> None:
    cache = TokenCache()
    client = auth(stand_in, cache)
    for _ in range(3):
        assert requests.get(f"{stand_in.url}/v1/tables/x", auth=client, timeout=5).status_code == 200
    assert stand_in.tokens_issued == 1
    assert [seen.headers["Authorization"] for seen in stand_in.to("/v1/tables/x")] == ["Bearer token-1"] * 3
    [token_request] = stand_in.to("/token")
    assert token_request.method == "POST"
    form = dict(pair.split("=", 1) for pair in token_request.body.decode().split("&"))
    assert form["grant_type"] == "client_credentials"
    assert form["resource"] == "http%3A%2F%2Fairgate.localhost"
    assert token_request.headers["Authorization"].startswith("Basic ")  # client_secret_basic


def test_token_is_refreshed_before_it_expires(stand_in: StandIn) -> None:
    clock = Clock()
    cache = TokenCache(clock)
    stand_in.token_ttl = 600
    client = auth(stand_in, cache, refresh_margin_seconds=60)
    assert client.token() == "token-1"
    clock.now += 539  # 61 s left: still good
    assert client.token() == "token-1"
    clock.now += 2  # inside the 60 s margin: refreshed although not yet expired
    assert client.token() == "token-2"


def test_short_lived_tokens_are_still_used(stand_in: StandIn) -> None:
    clock = Clock()
    cache = TokenCache(clock)
    stand_in.token_ttl = 30  # shorter than the margin: refresh at half-life instead of every call
    client = auth(stand_in, cache, refresh_margin_seconds=60)
    assert client.token() == client.token() == "token-1"
    clock.now += 16
    assert client.token() == "token-2"


def test_a_401_drops_the_cached_token(stand_in: StandIn) -> None:
    cache = TokenCache()
    client = auth(stand_in, cache)
    stand_in.scripts["/v1/x"] = [Scripted(401, {"title": "invalid token"}), Scripted(200, {})]
    assert requests.get(f"{stand_in.url}/v1/x", auth=client, timeout=5).status_code == 401
    assert requests.get(f"{stand_in.url}/v1/x", auth=client, timeout=5).status_code == 200
    assert stand_in.tokens_issued == 2


def test_concurrent_callers_share_one_fetch(stand_in: StandIn) -> None:
    cache = TokenCache()
    client = auth(stand_in, cache)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(client.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["token-1"] * 8 and stand_in.tokens_issued == 1


def test_a_refusing_token_endpoint_is_a_clear_error(stand_in: StandIn) -> None:
    client = ClientCredentialsAuth(
        "airflow-worker", "wrong", token_url=f"{stand_in.url}/denied", cache=TokenCache()
    )
    stand_in.scripts["/denied"] = [Scripted(401, {"error": "invalid_client"})]
    with pytest.raises(TokenError, match=r"answered 401 for client 'airflow-worker'.*invalid_client"):
        client.token()
    assert "wrong" not in repr(client)


def test_provider_registers_the_connection_type() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-gateway-auth"
    assert info["connection-types"] == [
        {
            "connection-type": "airgate_gateway",
            "hook-class-name": "airflow_gateway_auth.hooks.GatewayHttpHook",
        }
    ]


def test_hook_sends_bearer_and_keeps_oauth2_settings_out_of_headers(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.airflow.connections import (
        ConnectionCredentials,
        ConnectionPlan,
        OAuth2Endpoint,
        connection_json,
    )

    plan = ConnectionPlan(
        "gw_warehouse", "warehouse", "airflow-worker", "oidc", False, None, "airflow-worker"
    )
    text = connection_json(
        plan,
        ConnectionCredentials(stand_in.url, oauth2_client_id="airflow-worker", oauth2_client_secret="s3"),
        OAuth2Endpoint(f"{stand_in.url}/token", "http://airgate.localhost", "resource", None, 60),
    )
    monkeypatch.setenv("AIRFLOW_CONN_GW_WAREHOUSE", text)
    assert Connection.from_json(text, conn_id="x").conn_type == GatewayHttpHook.conn_type
    hook = GatewayHttpHook(method="GET", http_conn_id="gw_warehouse")
    response = hook.run("/v1/tables/a", headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    assert response.status_code == 200
    [seen] = stand_in.to("/v1/tables/a")
    assert seen.headers["Authorization"].startswith("Bearer token-")
    assert "oauth2" not in {key.lower() for key in seen.headers}
    assert not any(value == "s3" for value in seen.headers.values())
