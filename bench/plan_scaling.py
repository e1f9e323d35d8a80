"""Measures `airgate plan` (load + validate + compile + program under mocks + plan document) for
stacks with 10, 100 and 500 routes. A report, not a test: run `bench/plan_scaling`.

Goal (issue 2): at most 5 s at 500 routes on the 2-core reference machine, growing linearly.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.generated_stack import write_stack
from infra.config.loader import load_stack
from infra.plan.document import plan_document
from infra.plan.runner import run_plan


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
