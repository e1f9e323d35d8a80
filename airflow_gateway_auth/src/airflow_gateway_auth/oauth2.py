"""`ClientCredentialsAuth`: a `requests` auth that sends `Authorization: Bearer <token>`, fetching
tokens with the OAuth2 client-credentials grant and caching them for the whole process.

Why a process-wide cache: every task attempt builds a new hook and session, and a token endpoint is
a shared, rate-limited service. Tokens are refreshed `refresh_margin_seconds` before `expires_in`
runs out, so a request never leaves with a token about to expire in flight; one lock per cache key
makes concurrent callers wait for a single refresh instead of stampeding the endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from requests.auth import AuthBase

DEFAULT_EXPIRES_IN = 300
"""Used when the token response omits `expires_in` (RFC 6749 makes it optional)."""


class TokenError(RuntimeError):
    """The token endpoint refused or answered something that is not a token. Not retried here:
    the task's own retry policy decides."""


@dataclass(frozen=True)
class TokenKey:
    token_url: str
    client_id: str
    audience: str | None
    audience_parameter: str
    scope: str | None


@dataclass
class _Cached:
    token: str
    refresh_at: float
    expires_at: float


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[TokenKey, _Cached] = {}
        self._locks: dict[TokenKey, threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetches = 0

    def _lock(self, key: TokenKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(
        self,
        key: TokenKey,
        client_secret: str,
        refresh_margin_seconds: float,
        timeout: float,
        session: requests.Session | None = None,
    ) -> str:
        cached = self._tokens.get(key)
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.token
        with self._lock(key):
            cached = self._tokens.get(key)  # another thread may have refreshed while we waited
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.token
            token, expires_in = _fetch(key, client_secret, timeout, session)
            self.fetches += 1
            now = self._clock()
            margin = min(refresh_margin_seconds, expires_in / 2)  # short-lived tokens still get used
            self._tokens[key] = _Cached(token, now + expires_in - margin, now + expires_in)
            return token

    def forget(self, key: TokenKey, token: str) -> None:
        """Drops a token the server refused, unless it was already replaced."""
        with self._guard:
            cached = self._tokens.get(key)
            if cached is not None and cached.token == token:
                del self._tokens[key]


def _fetch(
    key: TokenKey, client_secret: str, timeout: float, session: requests.Session | None
) -> tuple[str, float]:
    form = {"grant_type": "client_credentials"}
    if key.audience and key.audience_parameter in ("resource", "audience"):
        form[key.audience_parameter] = key.audience
    if key.scope:
        form["scope"] = key.scope
    poster = session or requests
    try:
        response = poster.post(
            key.token_url,
            data=form,
            auth=(key.client_id, client_secret),  # client_secret_basic, the default method
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except requests.RequestException as error:
        raise TokenError(f"token endpoint {key.token_url} unreachable: {error}") from error
    if response.status_code != 200:
        # The body of an OAuth2 error names the problem (invalid_client, invalid_target, ...).
        raise TokenError(
            f"token endpoint {key.token_url} answered {response.status_code} for client "
            f"{key.client_id!r}: {response.text[:300]}"
        )
    try:
        body = response.json()
        token = body["access_token"]
    except (ValueError, KeyError, TypeError) as error:
        raise TokenError(f"token endpoint {key.token_url} returned no access_token") from error
    if not isinstance(token, str) or not token:
        raise TokenError(f"token endpoint {key.token_url} returned an empty access_token")
    expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        seconds = DEFAULT_EXPIRES_IN
    return token, max(seconds, 1.0)


CACHE = TokenCache()


class ClientCredentialsAuth(AuthBase):
    """`requests` auth for one OAuth2 client. Usable as Airflow's `auth_type` through
    `GatewayHttpHook`, which reads the token endpoint from the connection."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str,
        audience: str | None = None,
        audience_parameter: str = "resource",
        scope: str | None = None,
        refresh_margin_seconds: float = 60,
        timeout: float = 10,
        cache: TokenCache | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise TokenError("the connection has no OAuth2 client id/secret (login/password)")
        self.key = TokenKey(token_url, client_id, audience, audience_parameter, scope)
        self._secret = client_secret
        self.refresh_margin_seconds = refresh_margin_seconds
        self.timeout = timeout
        self.cache = cache or CACHE

    def __repr__(self) -> str:  # never show the secret in logs
        return f"ClientCredentialsAuth(client_id={self.key.client_id!r}, token_url={self.key.token_url!r})"

    def token(self) -> str:
        return self.cache.get(self.key, self._secret, self.refresh_margin_seconds, self.timeout)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        request.register_hook("response", self._forget_on_401(token))
        return request

    def _forget_on_401(self, token: str) -> Callable[..., requests.Response]:
        def hook(response: requests.Response, *args: object, **kwargs: object) -> requests.Response:
            if response.status_code == 401:
                # Revoked or rotated early: the next attempt must not reuse it.
                self.cache.forget(self.key, token)
            return response

        return hook
