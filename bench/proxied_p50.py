"""p50/p90 of one proxied request through a running local environment: a kept-alive connection to the
warehouse gateway (Worker in workerd) and on to its echo upstream. A report, not a test: start the
environment (`airgate up`), then run `bench/proxied_p50 [--state-dir .state/local]`.

Issue 13 measured ~45 ms before the echo upstream answered in one send (a delayed-ACK stall).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".state" / "local")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    ports = json.loads((args.state_dir / "ports.json").read_text())
    token = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "airgate"),
            "token",
            "--client",
            "ai-agent",
            "--state-dir",
            str(args.state_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    connection = http.client.HTTPConnection("127.0.0.1", ports["gateways"]["warehouse"])
    times = []
    for _ in range(args.requests):
        start = time.perf_counter()
        connection.request("GET", "/v1/tables/revenue", headers={"authorization": f"Bearer {token}"})
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"the gateway answered {answer.status}")
        times.append(time.perf_counter() - start)
    times = sorted(times[20:])  # the first calls warm the isolate and the key set
    print(
        f"proxied GET through the warehouse gateway: p50 {1000 * statistics.median(times):.1f} ms, "
        f"p90 {1000 * times[int(len(times) * 0.9)]:.1f} ms (n={len(times)})"
    )


if __name__ == "__main__":
    main()
