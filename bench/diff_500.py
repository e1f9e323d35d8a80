"""Times `airgate diff` of two 500-route plans (issue 6: at most 3 s on the 2-core reference machine).
A report, not a test: run `bench/diff_500`.

The two plans are real offline plans of the prod stack with 500 generated routes; HEAD changes about
one route in ten (new roles, gained methods, widened paths, looser rate limits). Measured: the
console script end to end (process start, imports, reading both plans, the diff, the rules on both
sides, Markdown and JSON), and the in-process diff + render alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generated_stack import write_stack  # noqa: E402
from infra.config.loader import load_stack  # noqa: E402
from infra.plan.document import plan_document  # noqa: E402
from infra.plan.runner import run_plan  # noqa: E402

STUB = """export class RateLimiter {}
export class IdempotencyStore {}
const BUILD = {{ gateway | tojson }};
export default { fetch() { return new Response(JSON.stringify(BUILD)); } };
"""


def plan(folder: Path) -> dict[str, Any]:
    loaded = load_stack("prod", folder)
    return plan_document(loaded, run_plan(loaded))


def use_stub_templates_if_needed(tmp: Path) -> str:
    from infra.build import templates
    from infra.build.bundle import BundleError

    try:
        with tempfile.TemporaryDirectory() as probe:
            write_stack(Path(probe), 3, False)
            plan(Path(probe))
        return "the real worker_templates/"
    except BundleError:
        stub = tmp / "stub_templates"
        stub.mkdir()
        (stub / "gateway.js.j2").write_text(STUB)
        templates.TEMPLATES_DIR = stub
        templates.jinja_environment.__defaults__ = (stub,)
        return "a stub Worker (worker_templates/ does not bundle yet; the diff never reads the bundle)"


def git_refs_timing(tmp: Path, routes: int, templates: Path) -> list[tuple[str, float]]:
    """`airgate diff HEAD~1 HEAD` in a repository whose two commits hold the two stacks: both refs
    extracted and planned offline by their own code, in parallel."""
    repo = tmp / "repo"
    shutil.copytree(ROOT / "infra", repo / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(templates, repo / "worker_templates")
    shutil.copy(ROOT / "Pulumi.yaml", repo / "Pulumi.yaml")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=b", "-c", "user.email=b@example.com", "-C", str(repo), *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    for changed in (False, True):
        shutil.rmtree(repo / "stacks", ignore_errors=True)
        write_stack(repo / "stacks", routes, changed)
        git("add", "-A")
        git("commit", "-q", "-m", "head" if changed else "base")
    timings = []
    for label, extra in (("git refs, prod only", ["--stack", "prod"]), ("git refs, all 4 stacks", [])):
        start = time.perf_counter()
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "airgate"), "diff", "HEAD~1", "HEAD", "--repo", str(repo), *extra],
            capture_output=True,
            text=True,
            check=False,
        )
        timings.append((label, time.perf_counter() - start))
        assert result.returncode == 0, result.stderr
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routes", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--git", action="store_true", help="Also time diffing two git refs (plans both)")
    args = parser.parse_args()
    from infra.review.diff import diff_sets
    from infra.review.markdown import render_markdown

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = use_stub_templates_if_needed(tmp)
        documents = []
        for label, changed in (("base", False), ("head", True)):
            write_stack(tmp / label, args.routes, changed)
            documents.append(plan(tmp / label))
            (tmp / f"{label}.json").write_text(json.dumps(documents[-1], indent=2, sort_keys=True))
        rows = len(documents[1]["access_matrix"])
        airgate = ROOT / ".venv" / "bin" / "airgate"
        wall: list[float] = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = subprocess.run(
                [
                    str(airgate),
                    "diff",
                    str(tmp / "base.json"),
                    str(tmp / "head.json"),
                    "--full-json",
                    str(tmp / "d.json"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            wall.append(time.perf_counter() - start)
            assert result.returncode == 0, result.stderr
        inproc: list[float] = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            report = diff_sets({"prod": documents[0]}, {"prod": documents[1]})
            text = render_markdown(report)
            inproc.append(time.perf_counter() - start)
        from infra.build import templates

        git_timings = git_refs_timing(tmp, args.routes, templates.TEMPLATES_DIR) if args.git else []
    print(
        f"plans: prod with {args.routes} routes each ({rows} access-matrix rows in HEAD), built with {source}"
    )
    print(f"changes: {report['risky']} risky, markdown {len(text)} chars")
    for label, times in (
        ("airgate diff, console script end to end", wall),
        ("diff + rules + render", inproc),
    ):
        print(f"{label:<42} median {statistics.median(times):.3f} s, min {min(times):.3f} s")
    for label, seconds in git_timings:
        print(f"{label:<42} {seconds:.3f} s (includes planning both refs)")
    print("goal: <= 3 s end to end -> " + ("met" if statistics.median(wall) <= 3.0 else "NOT met"))


if __name__ == "__main__":
    main()
