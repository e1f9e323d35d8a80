"""Stand-ins for what these tests cannot reach, each keeping state and enforcing the documented rule:

- `DecisionEdge`: gateways answering `GET /.airgate/decision` as the Worker's decision endpoint
  does (contract in infra/verify/run.py), from the compiled policy, with deliberately broken modes.

The Cloudflare API has its own emulator (local_services/cloudflare_api), checked by the official client.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.config.model import StackConfig
from infra.policy.can_i import Asker, roles_at
from infra.policy.compiler import compile_stack
from infra.policy.decision import decide


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _reply(
    handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def decision_handler(
    stack: StackConfig, gateway: str, broken: dict[str, str]
) -> type[BaseHTTPRequestHandler]:
    """`broken`: {"disable_role": r} drops a role (a kill switch), {"version": v} reports another
    policy version, {"open": "yes"} answers callers without a credential; {"access_login": url}
    is not broken: Access in front redirects callers without a credential to its login page."""
    compiled = compile_stack(stack)[gateway]

    class Decision(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            if parts.path != "/.airgate/decision":
                return _reply(self, 404, {"reason": "no_route"})
            token = (self.headers.get("authorization") or "").removeprefix("Bearer ")
            if not token.startswith("tok-") and broken.get("access_login"):
                return _reply(self, 302, b"", {"location": broken["access_login"]})
            if not token.startswith("tok-") and broken.get("open") != "yes":
                return _reply(
                    self,
                    401,
                    {"reason": "missing_credential"},
                    {"www-authenticate": 'Bearer error="invalid_token"'},
                )
            query = dict(urllib.parse.parse_qsl(parts.query))
            identity = token.removeprefix("tok-")
            roles = roles_at(stack, compiled, Asker("client", identity)) if identity else ()
            roles = tuple(r for r in roles if r != broken.get("disable_role"))
            # The subject lets decide apply the Worker's run-ownership rule (run_not_owned, 403).
            decision = decide(
                compiled.document, query["method"], query["path"], frozenset(roles), subject=identity
            )
            body = {
                "gateway": gateway,
                "policy_version": broken.get("version", compiled.version),
                "subject": identity,
                "roles": list(roles),
                "method": query["method"],
                "path": query["path"],
                "decision": decision.decision,
                "status": decision.status,
                "route": decision.route["name"] if decision.route else None,
                "rate_limit": decision.route["rate_limit"] if decision.route else None,
            }
            return _reply(self, 200, body)

    return Decision
