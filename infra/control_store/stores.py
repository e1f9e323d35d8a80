"""Two stores with one interface (`read_control`, `write_control`): the Workers KV REST API and the
local environment's loopback endpoint (local_services/gateways.mjs)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from infra.control_store import CLOUDFLARE_API
from infra.policy.control import CONTROL_KEY


class StoreError(RuntimeError):
    """The store could not be read or written; the message says which and why."""


class ControlStore(Protocol):
    label: str

    def read_control(self) -> str | None: ...

    def write_control(self, text: str) -> None: ...


def _call(request: urllib.request.Request, what: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - https or loopback
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError as error:
        raise StoreError(f"{what}: {error}") from None


@dataclass(frozen=True)
class CloudflareKV:
    """One KV namespace through the REST API. Read: GET …/values/{key} answers the raw value, 404 when
    absent. Write: PUT …/values/{key} with a multipart/form-data `value` part. Key names are
    URL-encoded in the path. Source: https://developers.cloudflare.com/api/resources/kv/subresources/
    namespaces/subresources/values/methods/get/ and …/methods/update/."""

    account_id: str
    namespace_id: str
    token: str
    api_url: str = CLOUDFLARE_API
    gateway: str = ""

    @property
    def label(self) -> str:
        return f"gateway {self.gateway} (KV namespace {self.namespace_id})"

    def _url(self, key: str) -> str:
        return (
            f"{self.api_url.rstrip('/')}/accounts/{self.account_id}/storage/kv/namespaces/"
            f"{self.namespace_id}/values/{urllib.parse.quote(key, safe='')}"
        )

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def read_control(self) -> str | None:
        request = urllib.request.Request(self._url(CONTROL_KEY), headers=self._headers())  # noqa: S310
        status, body = _call(request, f"reading {CONTROL_KEY} of {self.label}")
        if status == 404 and _error_code(body) == 10009:  # "key not found"
            return None
        if status != 200:
            raise StoreError(f"reading {CONTROL_KEY} of {self.label}: HTTP {status} {_errors(body)}")
        return body.decode()

    def write_control(self, text: str) -> None:
        boundary = uuid.uuid4().hex
        part = f'Content-Disposition: form-data; name="value"\r\n\r\n{text}\r\n'
        body = f"--{boundary}\r\n{part}--{boundary}--\r\n".encode()
        headers = {**self._headers(), "content-type": f"multipart/form-data; boundary={boundary}"}
        request = urllib.request.Request(self._url(CONTROL_KEY), data=body, method="PUT", headers=headers)  # noqa: S310
        status, answer = _call(request, f"writing {CONTROL_KEY} of {self.label}")
        if status != 200:
            raise StoreError(f"writing {CONTROL_KEY} of {self.label}: HTTP {status} {_errors(answer)}")


def _envelope(body: bytes) -> dict[str, object]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_code(body: bytes) -> int | None:
    errors = _envelope(body).get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        return code if isinstance(code, int) else None
    return None


def _errors(body: bytes) -> str:
    errors = _envelope(body).get("errors")
    return json.dumps(errors) if errors else body[:200].decode(errors="replace")


@dataclass(frozen=True)
class LocalKV:
    """The local gateways' loopback endpoint: it writes every gateway's (Miniflare) KV namespace."""

    url: str
    token: str
    label: str = "the local gateways"

    @classmethod
    def from_state(cls, state_dir: Path) -> LocalKV:
        """The endpoint's URL (written by the running gateways) and its admin token (a local secret)."""
        from infra.local.plan import LOCAL_ADMIN_SECRET

        try:
            token = json.loads((state_dir / "secrets.json").read_text())[LOCAL_ADMIN_SECRET]
        except (OSError, ValueError, KeyError):
            raise StoreError(f"no local environment in {state_dir}: run `airgate up` first") from None
        admin = state_dir / "workers" / "admin.json"
        if not admin.exists():
            raise StoreError(f"the local gateways are not running ({admin} is missing): run `airgate up`")
        return cls(json.loads(admin.read_text())["url"], token)

    def _request(self, method: str, data: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/kv/{CONTROL_KEY}",
            data=data,
            method=method,
            headers={"authorization": f"Bearer {self.token}"},
        )
        return _call(request, f"{self.label} at {self.url} (is the local environment up?)")

    def read_control(self) -> str | None:
        status, body = self._request("GET")
        if status == 404:
            return None
        if status != 200:
            raise StoreError(f"reading {CONTROL_KEY} from {self.label}: HTTP {status}")
        return body.decode()

    def write_control(self, text: str) -> None:
        status, body = self._request("PUT", text.encode())
        if status != 204:
            raise StoreError(f"writing {CONTROL_KEY} to {self.label}: HTTP {status} {body[:200]!r}")
