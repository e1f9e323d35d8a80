"""`GatewayHttpHook`: the `airgate_gateway` connection type, an `HttpHook` whose auth is OAuth2
client credentials (`ClientCredentialsAuth`), configured from the connection itself:
login/password = client id/secret, `extra.oauth2` = token endpoint settings. The `oauth2` key is
removed before the remaining extras become headers, so nothing of it leaves as a header."""

from __future__ import annotations

from typing import Any

from airflow.providers.http.hooks.http import HttpHook

from airflow_gateway_auth.oauth2 import ClientCredentialsAuth, TokenError

OAUTH2_EXTRA = "oauth2"


class GatewayHttpHook(HttpHook):
    conn_name_attr = "http_conn_id"
    default_conn_name = "gw_default"
    conn_type = "airgate_gateway"
    hook_name = "airgate gateway (OAuth2 client credentials)"

    def _extract_auth(self, connection: Any) -> Any:
        if self._auth_type:  # an explicit auth_type still wins, as with HttpHook
            return super()._extract_auth(connection)
        settings = connection.extra_dejson.get(OAUTH2_EXTRA)
        if not isinstance(settings, dict) or not settings.get("token_url"):
            raise TokenError(
                f"connection {connection.conn_id!r} has no extra.oauth2.token_url; airgate writes it"
            )
        return ClientCredentialsAuth(
            connection.login or "",
            connection.password or "",
            token_url=str(settings["token_url"]),
            audience=settings.get("audience"),
            audience_parameter=str(settings.get("audience_parameter", "resource")),
            scope=settings.get("scope"),
            refresh_margin_seconds=float(settings.get("refresh_margin_seconds", 60)),
        )

    def _configure_session_from_extra(
        self, session: Any, connection: Any, extra_options: dict[str, Any]
    ) -> Any:
        session = super()._configure_session_from_extra(session, connection, extra_options)
        session.headers.pop(OAUTH2_EXTRA, None)
        return session
