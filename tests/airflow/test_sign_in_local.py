"""People sign in to the local Airflow the way they sign in on Kubernetes: FAB's OAuth login against
the stack's OpenID provider (here the local one, started by `airgate up --free-ports`), following
the real redirects and forms of Airflow and of the provider's login and consent pages. Roles come
from the IdP groups (`airflow.ui_roles`); someone in no mapped group gets no session."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.airflow.sign_in import CALLBACK_PATH
from infra.config.loader import PROJECT_ROOT

pytestmark = pytest.mark.slow
AIRGATE = PROJECT_ROOT / ".venv" / "bin" / "airgate"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Browser:
    """Cookies and manual redirects, so each hop is seen (and none is skipped)."""

    jar: http.cookiejar.CookieJar
    opener: urllib.request.OpenerDirector
    visited: list[str]
    answer: tuple[int, str] = (0, "")
    """Status and body of the page the sign-in ended on, where it ended without a redirect."""

    @classmethod
    def new(cls) -> Browser:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
        return cls(jar, opener, [])

    def call(self, url: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        self.visited.append(url)
        try:
            with self.opener.open(request, timeout=30) as answer:
                return answer.status, answer.headers.get("location", ""), answer.read().decode()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers.get("location", ""), answer.read().decode(errors="replace")

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


def sign_in(airflow: str, issuer: str, user: str) -> Browser:
    """Opens Airflow's OAuth login, signs `user` in on the provider's pages, and follows every
    redirect back to Airflow. Returns the browser wherever it ends."""
    browser = Browser.new()
    url = f"{airflow}/auth/login/airgate?next={urllib.parse.quote(airflow + '/')}"
    for _ in range(16):
        status, location, body = browser.call(url)
        if location:
            url = urllib.parse.urljoin(url, location)
            if not url.startswith(issuer) and not url.startswith(f"{airflow}{CALLBACK_PATH}"):
                browser.visited.append(url)
                return browser  # back in Airflow, past the callback
            continue
        if url.startswith(f"{airflow}{CALLBACK_PATH}"):
            browser.answer = (status, body)
            return browser  # Airflow answered the callback with a page of its own
        prompt = re.search(r'name="prompt" value="(\w+)"', body)
        assert status == 200 and prompt is not None, (status, url, body[:500])
        # The provider's development pages: a login form (the test user's name), then consent.
        status, location, body = browser.call(url, {"prompt": prompt.group(1), "login": user, "password": ""})
        assert status in (302, 303) and location, (status, body[:500])
        url = urllib.parse.urljoin(url, location)
    raise AssertionError(f"the sign-in did not finish: {browser.visited}")


@dataclass
class Local:
    airflow: str
    issuer: str


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    state_dir = tmp_path_factory.mktemp("sign-in-state")
    result = subprocess.run(
        # No sample DAG run: signing in needs only the environment up.
        [str(AIRGATE), "up", "--state-dir", str(state_dir), "--free-ports", "--no-demo"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=400,
        check=False,
    )
    try:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        ports = json.loads(Path(state_dir / "ports.json").read_text())
        yield Local(f"http://127.0.0.1:{ports['airflow']}", f"http://127.0.0.1:{ports['oidc']}")
    finally:
        subprocess.run([str(AIRGATE), "down", "--state-dir", str(state_dir)], timeout=120, check=False)


def api(browser: Browser, url: str) -> tuple[int, Any]:
    status, _, body = browser.call(url)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def test_a_data_engineer_signs_in_through_the_provider_and_lists_the_dags(local: Local) -> None:
    browser = sign_in(local.airflow, local.issuer, "data-engineer-person")
    assert any(url.startswith(local.issuer + "/interaction/") for url in browser.visited)  # real pages
    assert any(url.startswith(local.airflow + CALLBACK_PATH) for url in browser.visited)
    assert browser.visited[-1] == local.airflow + "/"
    assert browser.cookie("_token")
    status, body = api(browser, f"{local.airflow}/api/v2/dags")
    assert status == 200, body
    assert {"ingest_events", "refresh_dashboards"} <= {dag["dag_id"] for dag in body["dags"]}
    # Mapped to User (data-engineering): may not manage accounts.
    assert api(browser, f"{local.airflow}/auth/fab/v1/users")[0] == 403


def test_a_platform_admin_gets_admin(local: Local) -> None:
    browser = sign_in(local.airflow, local.issuer, "platform-admin-person")
    status, body = api(browser, f"{local.airflow}/auth/fab/v1/users")
    assert status == 200, body
    people = {user["username"]: user for user in body["users"]}
    assert [role["name"] for role in people["platform-admin-person"]["roles"]] == ["Admin"]
    # Accounts made at sign-in have no password: the password login refuses people.
    assert people["platform-admin-person"]["email"].startswith("platform-admin-person@")
    request = urllib.request.Request(
        f"{local.airflow}/auth/token",
        data=json.dumps({"username": "platform-admin-person", "password": "anything"}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401


def test_someone_in_no_mapped_group_is_refused_and_told_which_groups_would_do(local: Local) -> None:
    browser = sign_in(local.airflow, local.issuer, "analyst-person")  # group analytics: not mapped
    status, page = browser.answer
    assert status == 403
    assert "No Airflow role for your groups" in page and "Invalid login" not in page
    assert "analyst-person@airgate.localhost" in page and "your groups (analytics)" in page
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", page)
    assert rows == [("data-engineering", "User"), ("platform", "Admin")]
    assert browser.cookie("_token") is None
    assert api(browser, f"{local.airflow}/api/v2/dags")[0] == 401
