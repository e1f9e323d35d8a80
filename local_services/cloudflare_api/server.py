"""The HTTP side: `/client/v4` on 127.0.0.1, bearer-token authentication, Cloudflare's envelope
(`success`, `errors`, `messages`, `result`, `result_info`) around every JSON answer."""

from __future__ import annotations

import hmac
import json
import sys
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_services.cloudflare_api import resources  # noqa: F401 - registers the routes
from local_services.cloudflare_api.errors import (
    ApiError,
    authentication_error,
    malformed_authorization,
    method_not_allowed,
    missing_credentials,
    no_route,
)
from local_services.cloudflare_api.faults import PATH as FAULTS_PATH
from local_services.cloudflare_api.faults import Faults
from local_services.cloudflare_api.journal import Journal
from local_services.cloudflare_api.request import Answer, Request
from local_services.cloudflare_api.router import resolve
from local_services.cloudflare_api.store import Store

PREFIX = "/client/v4"
# Larger than any body the API accepts (a Worker upload is at most 10 MB compressed, a KV value 25 MiB);
# bigger requests are refused before they are read.
MAX_BODY = 64 * 1024 * 1024


def envelope(answer: Answer | None, error: ApiError | None) -> dict[str, Any]:
    if error is not None:
        return {"success": False, "errors": error.errors(), "messages": [], "result": None}
    assert answer is not None
    document: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": answer.result}
    if answer.result_info is not None:
        document["result_info"] = answer.result_info
    return document


def make_handler(store: Store, token: str, journal: Journal, faults: Faults) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle's algorithm on, each keep-alive
        # answer waits ~40 ms for the client's delayed ACK.
        disable_nagle_algorithm = True
        server_version = "cloudflare-api-emulator"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _authenticate(self) -> None:
            header = self.headers.get("authorization")
            if header is None:
                raise missing_credentials()
            scheme, _, presented = header.partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                raise malformed_authorization()
            if not hmac.compare_digest(presented.strip().encode(), token.encode()):
                raise authentication_error()

        def _body(self) -> bytes:
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                # The body is not read, so this connection cannot carry another request.
                self.close_connection = True
                raise ApiError(
                    413 if length > MAX_BODY else 400, 10027, "request body too large or unreadable"
                )
            return self.rfile.read(length) if length else b""

        def _faults(self, path: str, body: bytes) -> Answer | None:
            """The emulator's own path for failures on request (faults.py)."""
            if path != FAULTS_PATH:
                return None
            if self.command == "GET":
                return Answer(faults.pending())
            if self.command != "POST":
                raise method_not_allowed()
            request = Request(self.command, path, {}, {}, self.headers.get("content-type", ""), body)
            return Answer(faults.add(request.json_object(10001)))

        def _answer(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            answer: Answer | None = None
            error: ApiError | None = None
            path = url.path[len(PREFIX) :] if url.path.startswith(PREFIX + "/") else url.path
            try:
                body = self._body()
                self._authenticate()
                answer = self._faults(url.path, body)
                if answer is not None:
                    self._send(200, json.dumps(envelope(answer, None)).encode(), "application/json", {})
                    return
                if not url.path.startswith(PREFIX + "/"):
                    raise no_route(path)
                faults.check(self.command, path)
                handler, params = resolve(self.command, path)
                request = Request(
                    self.command,
                    path,
                    params,
                    urllib.parse.parse_qs(url.query),
                    self.headers.get("content-type", ""),
                    body,
                )
                answer = handler(request, store)
            except ApiError as refused:
                error = refused
            except Exception:  # a bug in the emulator: say so loudly, never pretend success
                traceback.print_exc(file=sys.stderr)
                error = ApiError(500, 10002, "emulator: unexpected internal error (see its stderr)")
            status = error.status if error is not None else answer.status if answer else 200
            journal.record(self.command, path, status, error.code if error else None)
            if answer is not None and answer.raw is not None:
                self._send(answer.status, answer.raw, answer.raw_type, answer.headers)
                return
            payload = json.dumps(envelope(answer, error)).encode()
            self._send(status, payload, "application/json", {})

        def _send(self, status: int, payload: bytes, kind: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _answer

    return Handler


def serve(store: Store, token: str, port: int, journal: Journal) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(store, token, journal, Faults()))
    server.daemon_threads = True
    return server
