"""One real emulator process per test (about 0.2 s to start and stop) with an empty account and zone,
and the official `cloudflare` client pointed at it. The client validates every answer against its own
types (`_strict_response_validation`), so an answer Cloudflare would not give fails the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudflare
import pytest
from cloudflare import Cloudflare

from local_services.cloudflare_api.testing import RunningEmulator, running_emulator

TOKEN = "emulator-test-token"  # the emulator's own token, not a credential
ACCOUNT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ZONE = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
ZONE_NAME = "acme-data.test"


def client(api: RunningEmulator, token: str = TOKEN, strict: bool = True) -> Cloudflare:
    return Cloudflare(
        api_token=token, base_url=api.base_url, max_retries=0, _strict_response_validation=strict
    )


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "cloudflare.json"


@pytest.fixture
def emulator(state_path: Path) -> Iterator[RunningEmulator]:
    with running_emulator(state_path, TOKEN, ACCOUNT, {ZONE: ZONE_NAME}) as api:
        yield api


@pytest.fixture
def cf(emulator: RunningEmulator) -> Iterator[Cloudflare]:
    with client(emulator) as connected:
        yield connected


NO_ROUTE = [7003, 7000]
"""What the API answers for a path, or an identifier in it, that it cannot route."""


def refused(
    status: int, code: int | list[int], call: Callable[..., Any], *args: Any, **kwargs: Any
) -> cloudflare.APIStatusError:
    """Calls through the library and expects Cloudflare's refusal: this HTTP status and error code(s)."""
    with pytest.raises(cloudflare.APIStatusError) as caught:
        call(*args, **kwargs)
    error = caught.value
    assert error.status_code == status, (error.status_code, error.body)
    assert [e.code for e in error.errors] == (code if isinstance(code, list) else [code]), error.body
    assert isinstance(error.body, dict) and error.body["success"] is False and error.body["result"] is None
    return error


def unchanged(emulator: RunningEmulator) -> Callable[[], None]:
    """Snapshot of the state file's bytes; calling the result asserts nothing was written since."""
    before = emulator.state_path.read_bytes()

    def check() -> None:
        assert emulator.state_path.read_bytes() == before

    return check
