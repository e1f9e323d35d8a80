"""Two stores with one interface (`read_control`, `write_control`): the Workers KV REST API through
the official `cloudflare` client, and the local environment's loopback endpoint
(local_services/gateways.mjs)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cloudflare
from cloudflare import Cloudflare

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
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError as error:
        raise StoreError(f"{what}: {error}") from None


@dataclass(frozen=True)
class CloudflareKV:
    """One KV namespace through the official `cloudflare` client: `kv.namespaces.values.get` answers
    the raw value (404 with code 10009 "key not found" when absent), `values.update` writes it as the
    multipart `value` part. The client retries connection errors, 429 and 5xx twice, with backoff."""

    account_id: str
    namespace_id: str
    token: str
    api_url: str = CLOUDFLARE_API
    gateway: str = ""

    @property
    def label(self) -> str:
        return f"gateway {self.gateway} (KV namespace {self.namespace_id})"

    def _client(self) -> Cloudflare:
        return Cloudflare(api_token=self.token, base_url=self.api_url, timeout=30)

    def read_control(self) -> str | None:
        what = f"reading {CONTROL_KEY} of {self.label}"
        with self._client() as client:
            try:
                value = client.kv.namespaces.values.get(
                    CONTROL_KEY, account_id=self.account_id, namespace_id=self.namespace_id
                )
            except cloudflare.NotFoundError as error:
                if [e.code for e in error.errors] == [KEY_NOT_FOUND]:
                    return None
                raise StoreError(f"{what}: {_refusal(error)}") from None
            except cloudflare.APIError as error:
                raise StoreError(f"{what}: {_refusal(error)}") from None
            return value.text()

    def write_control(self, text: str) -> None:
        with self._client() as client:
            try:
                # bytes: the client's multipart encoder refuses a str `value` (it wants file content).
                client.kv.namespaces.values.update(
                    CONTROL_KEY,
                    account_id=self.account_id,
                    namespace_id=self.namespace_id,
                    value=text.encode(),
                )
            except cloudflare.APIError as error:
                raise StoreError(f"writing {CONTROL_KEY} of {self.label}: {_refusal(error)}") from None


KEY_NOT_FOUND = 10009
"""The KV API's code for "get: 'key not found'"."""


def _refusal(error: cloudflare.APIError) -> str:
    if isinstance(error, cloudflare.APIStatusError):
        codes = "; ".join(f"{e.code} {e.message}" for e in error.errors) or str(error.body)[:200]
        return f"HTTP {error.status_code} {codes}"
    return str(error)


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
