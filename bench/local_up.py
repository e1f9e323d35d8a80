"""Times `airgate up` of the local stack to the sample DAG run finishing, and samples the peak
memory (RSS) of every process of the environment meanwhile. A report, not a test:
`bench/local_up` (installs nothing; run ./dev setup first). Goal (issue 5): <= 60 s when installed.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRGATE = ROOT / ".venv" / "bin" / "airgate"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(root: int) -> float:
    tree, total, stack = _children(), 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_kib(pid)
        stack.extend(tree.get(pid, []))
    return total / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            pidfile = state / "supervisord.pid"
            while not done.is_set():
                if pidfile.exists():
                    with contextlib.suppress(ValueError):  # the pidfile is being written
                        peak[0] = max(peak[0], tree_rss_mib(int(pidfile.read_text())))
                done.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.perf_counter()
        result = subprocess.run(
            [str(AIRGATE), "up", "--free-ports", "--state-dir", str(state)],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - began
        steady = tree_rss_mib(int((state / "supervisord.pid").read_text())) if result.returncode == 0 else 0
        done.set()
        sampler.join()
        subprocess.run([str(AIRGATE), "down", "--state-dir", str(state)], capture_output=True, check=False)
        ok = "sample DAG succeeded" in result.stdout
        print(f"airgate up -> sample DAG {'succeeded' if ok else 'FAILED'}: {elapsed:.1f} s (goal <= 60 s)")
        print(f"peak memory of the environment: {peak[0]:.0f} MiB; after the run: {steady:.0f} MiB")
        if not ok:
            print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
