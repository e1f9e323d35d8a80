"""A sample upstream service for the local environment: answers every request with what it received
(method, path, query, headers, body), so a user can see exactly what the gateway forwarded —
the identity headers it added, and the caller's credentials it stripped.

Usage: python echo_upstream.py --port 9501 --name ingest
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def _shown(key: str, value: str) -> str:
    """The upstream's own credential arrives (that is the point) but is not echoed back whole."""
    if key.lower() == "authorization" and " " in value:
        return value.split(" ", 1)[0] + " [redacted]"
    return value


def handler_for(name: str) -> type[BaseHTTPRequestHandler]:
    class Echo(BaseHTTPRequestHandler):
        server_version = f"airgate-echo-{name}"
        protocol_version = "HTTP/1.1"
        # One send per answer: by default the headers and the body leave in two writes, and on a
        # kept-alive connection Nagle holds the second until the peer ACKs the first, which the
        # peer delays (~40 ms on Linux). A buffered writer (flushed once per request by
        # BaseHTTPRequestHandler) sends both together; TCP_NODELAY covers bodies over the buffer.
        wbufsize = -1
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            parts = urlsplit(self.path)
            payload = json.dumps(
                {
                    "upstream": name,
                    "method": self.command,
                    "path": parts.path,
                    "query": parts.query,
                    "headers": {key.lower(): _shown(key, value) for key, value in self.headers.items()},
                    "body": body,
                },
                sort_keys=True,
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

        def log_message(self, format: str, *args: object) -> None:
            sys.stdout.write(json.dumps({"upstream": name, "request": format % args}) + "\n")
            sys.stdout.flush()

    return Echo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(args.name))
    print(json.dumps({"event": "ready", "upstream": args.name, "port": args.port}), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
