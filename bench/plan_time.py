"""Measures `airgate plan --stack prod` end to end against importing pulumi_cloudflare alone, both as
fresh processes with bytecode compiled (./dev setup does it). A report, not a test: run
`bench/plan_time`. Goal (issue 13): plan at most 1.5x the import.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"


def timed(command: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """(wall-clock seconds, CPU seconds) per run; CPU is user + sys, steadier on a shared machine."""
    times, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stack", default="prod")
    args = parser.parse_args()
    subprocess.run(
        [str(PYTHON), "-m", "compileall", "-q", "infra"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    rows = {
        "import pulumi_cloudflare": timed([str(PYTHON), "-c", "import pulumi_cloudflare"], args.repeats),
        f"airgate plan --stack {args.stack}": timed(
            [str(ROOT / ".venv" / "bin" / "airgate"), "plan", "--stack", args.stack], args.repeats
        ),
        "same import, the CLI's GC setting": timed(
            [
                str(PYTHON),
                "-c",
                "import gc; from infra.cli.main import GC_THRESHOLD as T; gc.set_threshold(T, 50, 100); "
                "import pulumi_cloudflare; gc.freeze()",
            ],
            args.repeats,
        ),
        "airgate can-i (no Pulumi)": timed(
            [str(ROOT / ".venv" / "bin" / "airgate"), "can-i", "-s", args.stack, "--as", "ci", "--list"],
            args.repeats,
        ),
    }
    print(f"{'command':<32} {'median s':>9} {'min s':>7} {'cpu s':>7}")
    for label, (times, used) in rows.items():
        print(
            f"{label:<32} {statistics.median(times):>9.2f} {min(times):>7.2f} {statistics.median(used):>7.2f}"
        )
    (base, base_cpu), (plan, plan_cpu) = (
        (statistics.median(t), statistics.median(c)) for t, c in list(rows.values())[:2]
    )
    print(f"plan / import = {plan / base:.2f} wall, {plan_cpu / base_cpu:.2f} cpu (goal <= 1.5)")
    sys.exit(0)


if __name__ == "__main__":
    main()
