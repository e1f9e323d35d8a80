"""Failures on request, for tests that need the API to fail part-way through a deploy (the engine's
behaviour after a half-done `pulumi up` is what they check). Outside `/client/v4`, token required:

    POST /__emulator/faults {"method": "PUT", "path": "<regex over the path after /client/v4>",
                             "status": 500, "code": 10013, "message": "...", "times": 1}
    GET  /__emulator/faults  → the faults still pending

A matching request is answered with that error in Cloudflare's envelope and changes nothing; a fault
is used up after `times` matches. Faults live in memory: a restart clears them."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields

PATH = "/__emulator/faults"
INVALID = 10001


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    code: int
    message: str
    times: int

    def public(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path.pattern,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "times": self.times,
        }


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []

    def add(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        fields = Fields(body, INVALID, "fault")
        method = fields.need_text("method").upper()
        try:
            path = re.compile(fields.need_text("path"))
        except re.error as error:
            raise fields.refuse(f"path is not a regular expression: {error}") from None
        status = fields.number("status") or 500
        if not 400 <= status <= 599:
            raise fields.refuse("status must be 400 to 599")
        times = fields.number("times") or 1
        if times < 1:
            raise fields.refuse("times must be at least 1")
        fault = Fault(
            method,
            path,
            status,
            fields.number("code") or 10000,
            fields.text("message") or "fault injected by the emulator",
            times,
        )
        with self._lock:
            self._pending.append(fault)
            return self.pending()

    def pending(self) -> list[dict[str, Any]]:
        return [fault.public() for fault in self._pending]

    def check(self, method: str, path: str) -> None:
        """Raises the first pending fault that matches this request, using it up."""
        with self._lock:
            for fault in self._pending:
                if fault.method == method and fault.path.search(path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._pending.remove(fault)
                    raise ApiError(fault.status, fault.code, fault.message)
