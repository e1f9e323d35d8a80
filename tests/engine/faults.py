"""A pass-through proxy in front of the Cloudflare API emulator that fails chosen requests once, as
the real API sometimes does (HTTP 500, code 10013, "An unknown error has occurred"), so a test can
make a deploy fail half-way at a step it names without changing the emulator's rules."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class FaultPlan:
    pending: list[tuple[str, str]] = field(default_factory=list)
    """(method, path suffix) of requests to fail, each once."""
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_once(self, method: str, path_suffix: str) -> None:
        with self.lock:
            self.pending.append((method, path_suffix))

    def take(self, method: str, path: str) -> bool:
        with self.lock:
            for entry in self.pending:
                if entry[0] == method and path.split("?")[0].endswith(entry[1]):
                    self.pending.remove(entry)
                    self.failed.append(f"{method} {path}")
                    return True
        return False


@contextmanager
def faulty_proxy(upstream_base_url: str) -> Iterator[tuple[str, FaultPlan]]:
    """Yields the proxy's base URL (same path as the upstream's) and its fault plan."""
    upstream = urlsplit(upstream_base_url)
    plan = FaultPlan()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if plan.take(self.command, self.path):
                payload = json.dumps(
                    {
                        "success": False,
                        "errors": [{"code": 10013, "message": "An unknown error has occurred"}],
                        "messages": [],
                        "result": None,
                    }
                ).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            connection = http.client.HTTPConnection(
                upstream.hostname or "127.0.0.1", upstream.port, timeout=60
            )
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            connection.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{upstream.path}", plan
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
