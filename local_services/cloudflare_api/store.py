"""The emulator's state file: loaded at start, replaced atomically after every accepted change.

A request works on a copy of the state; only when it succeeds does the copy become the state and
get written (temporary file in the same folder, fsync, rename), so a refused or crashed request
leaves both the file and the memory as they were."""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

FORMAT = "airgate-cloudflare-emulator/1"

T = TypeVar("T")
State = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def empty_account(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "created_on": now(),
        "scripts": {},
        "worker_domains": {},
        "kv_namespaces": {},
        "access": {
            "identity_providers": {},
            "applications": {},
            "policies": {},
            "groups": {},
            "service_tokens": {},
        },
        "tunnels": {},
        "logpush_jobs": {},
        "ownership_challenges": {},
        "next_logpush_job_id": 1,
    }


def empty_zone(name: str, account_id: str) -> dict[str, Any]:
    return {
        "name": name,
        "account_id": account_id,
        "created_on": now(),
        "worker_routes": {},
        "dns_records": {},
    }


class Store:
    """The state and its file. `read` for answers that change nothing, `change` for the rest."""

    def __init__(self, path: Path, accounts: dict[str, str], zones: dict[str, tuple[str, str]]) -> None:
        self.path = path
        self._lock = threading.Lock()
        # A process stopped in the middle of a write leaves its temporary file, never a torn state file.
        for leftover in path.parent.glob(f".{path.name}.*"):
            leftover.unlink()
        state: State = (
            json.loads(path.read_text()) if path.exists() else {"format": FORMAT, "accounts": {}, "zones": {}}
        )
        if state.get("format") != FORMAT:
            raise ValueError(f"{path}: not an emulator state file (format {state.get('format')!r})")
        # Seeding adds what an account has before any deploy; it never resets what a deploy made.
        for account_id, name in accounts.items():
            state["accounts"].setdefault(account_id, empty_account(name))
        for zone_id, (name, account_id) in zones.items():
            state["zones"].setdefault(zone_id, empty_zone(name, account_id))
        self._state = state
        self._write(state)

    def read(self, look: Callable[[State], T]) -> T:
        with self._lock:
            return look(self._state)

    def change(self, apply: Callable[[State], T]) -> T:
        with self._lock:
            draft = copy.deepcopy(self._state)
            result = apply(draft)
            self._write(draft)
            self._state = draft
            return result

    def _write(self, state: State) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(state, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
