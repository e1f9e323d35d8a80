"""Access tokens from the local OpenID provider, for people trying the gateways by hand:
client credentials for a machine identity, or, for a human test user, the authorization-code flow
with PKCE through oidc-provider's development login pages (which take a test user's name)."""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from infra.local.demo import client_token
from infra.local.demo import http as http_call
from infra.local.plan import HUMAN_CLIENT_ID, HUMAN_REDIRECT_URI, LocalPlan


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def machine_token(plan: LocalPlan, client_id: str, client_secret: str, audience: str | None = None) -> str:
    return client_token(plan, client_id, client_secret, audience)


def user_token(plan: LocalPlan, user: str, audience: str | None = None) -> str:
    """Signs `user` in through the provider's login and consent pages and returns the access token."""
    resource = audience or plan.audience
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
    )
    query = urllib.parse.urlencode(
        {
            "client_id": HUMAN_CLIENT_ID,
            "response_type": "code",
            "redirect_uri": HUMAN_REDIRECT_URI,
            "scope": "openid email groups gateway",
            "resource": resource,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": secrets.token_urlsafe(8),
        }
    )
    url = f"{plan.issuer}/auth?{query}"
    for _ in range(12):  # auth → login page → resume → consent page → resume → callback
        status, location, body = _call(opener, url)
        if location.startswith(HUMAN_REDIRECT_URI):
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
            if "code" not in params:
                raise RuntimeError(f"sign-in of {user!r} refused: {params.get('error_description', params)}")
            return _exchange(plan, params["code"][0], verifier, resource)
        if location:
            url = urllib.parse.urljoin(url, location)
            continue
        prompt = re.search(r'name="prompt" value="(\w+)"', body)
        if status != 200 or prompt is None:
            raise RuntimeError(f"unexpected answer {status} from the sign-in pages at {url}")
        form = {"prompt": prompt.group(1), "login": user, "password": ""}
        status, location, body = _call(opener, url, urllib.parse.urlencode(form).encode())
        if not location:
            raise RuntimeError(f"the provider did not accept {user!r} (is it a test user?)")
        url = urllib.parse.urljoin(url, location)
    raise RuntimeError("the sign-in did not finish")


def _call(opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    try:
        with opener.open(request, timeout=15) as response:
            return response.status, response.headers.get("location", ""), response.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers.get("location", ""), answer.read().decode(errors="replace")


def _exchange(plan: LocalPlan, code: str, verifier: str, resource: str) -> str:
    answer = http_call(
        "POST",
        f"{plan.issuer}/token",
        form={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": HUMAN_REDIRECT_URI,
            "client_id": HUMAN_CLIENT_ID,
            "code_verifier": verifier,
            "resource": resource,
        },
    )
    if answer.status != 200:
        raise RuntimeError(f"the code exchange was refused: {answer.body}")
    return str(answer.body["access_token"])
