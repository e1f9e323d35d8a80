"""Measures `airgate plan` (load + validate + compile + program under mocks + plan document) for
stacks with 10, 100 and 500 routes. A report, not a test: run `bench/plan_scaling`.

Goal (issue 2): at most 5 s at 500 routes on the 2-core reference machine, growing linearly.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.config.loader import STACKS_DIR, load_stack
from infra.plan.document import plan_document
from infra.plan.runner import run_plan

ROLES = ["data-engineer", "analyst", "airflow-worker", "ai-agent", "ci", "platform-admin"]
METHODS = [["GET"], ["POST"], ["GET", "POST"], ["PUT", "DELETE"]]


def write_stack(folder: Path, routes: int) -> str:
    shutil.copytree(STACKS_DIR, folder, dirs_exist_ok=True)
    shared = yaml.safe_load((folder / "shared.yaml").read_text())
    gateways = list(shared["gateways"])
    for gateway in gateways:
        shared["gateways"][gateway]["routes"] = {}
    for index in range(routes):
        gateway = gateways[index % len(gateways)]
        shared["gateways"][gateway]["routes"][f"route-{index}"] = {
            "path": f"/v{index % 3}/area-{index}/{{item}}" + ("/**" if index % 5 == 0 else ""),
            "methods": METHODS[index % len(METHODS)],
            "roles": [ROLES[index % len(ROLES)], ROLES[(index * 7 + 1) % len(ROLES)]],
            **({"rate_limit": {"requests": 10 + index, "per_seconds": 60}} if index % 4 == 0 else {}),
        }
    (folder / "shared.yaml").write_text(yaml.safe_dump(shared, sort_keys=False))
    return "prod"


def measure(routes: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            name = write_stack(Path(tmp), routes)
            start = time.perf_counter()
            loaded = load_stack(name, Path(tmp))
            plan_document(loaded, run_plan(loaded))
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routes", type=int, nargs="*", default=[10, 100, 500])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    measure(10, 1)  # warm-up: imports and the bundle cache are not what we measure
    print(f"{'routes':>7} {'median s':>9} {'min s':>7} {'ms/route':>9}")
    for routes in args.routes:
        times = measure(routes, args.repeats)
        median = statistics.median(times)
        print(f"{routes:>7} {median:>9.3f} {min(times):>7.3f} {1000 * median / routes:>9.2f}")


if __name__ == "__main__":
    main()
