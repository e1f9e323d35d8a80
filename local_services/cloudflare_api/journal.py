"""The request journal: one JSON line per request that could change something (every method but
GET), with its answer's status and error code, so a test can see what a deploy asked of the API
(e.g. that an unchanged second `pulumi up` wrote nothing). Appended beside the state file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from local_services.cloudflare_api.store import now


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, method: str, path: str, status: int, code: int | None) -> None:
        if method == "GET":
            return
        line = json.dumps({"at": now(), "method": method, "path": path, "status": status, "code": code})
        with self._lock, self.path.open("a") as out:
            out.write(line + "\n")
