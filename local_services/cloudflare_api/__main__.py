"""`python -m local_services.cloudflare_api --state PATH --token TOKEN --account ID [--zone ID=name ...]
[--port 0]`: serve the emulator on 127.0.0.1 and print one JSON line, {"url": ".../client/v4"}, once
it accepts connections. SIGTERM or Ctrl-C stops it; the state file is already on disk."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from local_services.cloudflare_api.journal import Journal
from local_services.cloudflare_api.server import PREFIX, serve
from local_services.cloudflare_api.store import Store


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: write ID=VALUE")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_services.cloudflare_api", description=__doc__)
    parser.add_argument("--state", type=Path, required=True, help="the state file (created if missing)")
    parser.add_argument("--token", required=True, help="the API token clients must present as a bearer")
    parser.add_argument(
        "--account", action="append", required=True, help="an account id (or ID=name); repeatable"
    )
    parser.add_argument(
        "--zone",
        action="append",
        type=_pair,
        default=[],
        help="ID=name of a zone of the first account; repeatable",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--journal", type=Path, help="the request journal (JSON lines; default: beside the state file)"
    )
    args = parser.parse_args(argv)
    accounts = dict(_pair(a) if "=" in a else (a, f"account {a}") for a in args.account)
    first = next(iter(accounts))
    try:
        store = Store(args.state, accounts, {zone_id: (name, first) for zone_id, name in args.zone})
    except (OSError, ValueError) as error:
        print(f"cloudflare-api-emulator: {error}", file=sys.stderr)
        return 2
    journal = Journal(args.journal or args.state.with_name(args.state.name + ".requests.jsonl"))
    server = serve(store, args.token, args.port, journal)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_port}{PREFIX}"}), flush=True)
    try:
        # A short poll interval: SIGTERM's shutdown() is noticed at once, not half a second later.
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
