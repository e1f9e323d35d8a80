"""Where the two sides of `airgate diff` come from: a plan JSON file, a folder of them, or a git ref.

For a git ref, the ref's own `infra/`, `stacks/` and `worker_templates/` are extracted with
`git archive` into a temporary folder (the working tree and the repository's worktree list are never
touched) and planned there, offline, by the ref's own code in a subprocess: the same mocks and the
same bundler, with `node_modules` linked in. Both refs are planned in parallel. Nothing needs
credentials, so this runs on pull requests from forks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.plan.format import PLAN_FORMAT, PlanDocument, as_plan

PLANNED_PATHS = ("Pulumi.yaml", "infra", "stacks", "worker_templates", "package.json", "package-lock.json")

# Runs inside the extracted ref: plans each stack with that ref's code, writes one JSON per stack,
# and records a config error as text instead of stopping the others.
RUNNER = """
import json, sys
from pathlib import Path
out, names = Path(sys.argv[1]), sys.argv[2:]
from infra.config.errors import ConfigError
from infra.config.loader import STACKS_DIR, available_stacks, load_stack
from infra.plan.document import plan_document
from infra.plan.runner import run_plan
for name in names or available_stacks(STACKS_DIR):
    if not (STACKS_DIR / f"Pulumi.{name}.yaml").exists():
        continue
    try:
        loaded = load_stack(name, STACKS_DIR)
        document = plan_document(loaded, run_plan(loaded))
    except ConfigError as error:
        (out / f"{name}.error").write_text(error.render())
        continue
    except Exception as error:
        (out / f"{name}.error").write_text(f"{type(error).__name__}: {error}")
        continue
    (out / f"{name}.json").write_text(json.dumps(document, sort_keys=True))
"""


class SourceError(RuntimeError):
    pass


@dataclass
class PlanSet:
    label: str
    plans: dict[str, PlanDocument] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    result = subprocess.run(  # noqa: S603 - git with arguments we build, never a shell
        ["git", "-C", str(repo), *args],  # noqa: S607 - git from PATH, as a user runs it
        capture_output=True,
        text=not binary,
        check=False,
    )
    if result.returncode != 0:
        stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(errors="replace")
        raise SourceError(f"git {' '.join(args)}: {stderr.strip()}")
    return result.stdout


def read_plan_file(path: Path) -> PlanDocument:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SourceError(f"{path}: not a readable plan JSON ({error})") from None
    try:
        return as_plan(raw)
    except ValueError as error:
        raise SourceError(
            f"{path}: not an {PLAN_FORMAT} document: {error} (write one with `airgate plan --json`)"
        ) from None


def is_git_ref(repo: Path, ref: str) -> bool:
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except SourceError:
        return False
    return True


def tree_id(repo: Path, ref: str) -> str:
    """One id for everything that decides a plan at `ref`: equal ids, equal plans."""
    ids = []
    for path in PLANNED_PATHS:
        try:
            ids.append(_git(repo, "rev-parse", f"{ref}:{path}").strip())
        except SourceError:
            ids.append("-")
    return ",".join(ids)


def stacks_at(repo: Path, ref: str) -> list[str]:
    listing = _git(repo, "ls-tree", "--name-only", ref, "stacks/")
    names = [Path(line).name for line in listing.splitlines()]
    return sorted(
        n[len("Pulumi.") : -len(".yaml")] for n in names if n.startswith("Pulumi.") and n.endswith(".yaml")
    )


def extract(
    repo: Path, ref: str, target: Path, node_modules: Path | None, bundle_cache: Path | None = None
) -> None:
    present = [p for p in PLANNED_PATHS if _exists(repo, ref, p)]
    if "infra" not in present or "stacks" not in present:
        raise SourceError(f"{ref}: has no infra/ and stacks/ to plan")
    archive = _git(repo, "archive", "--format=tar", ref, *present, binary=True)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as handle:
        handle.write(archive)
        handle.seek(0)
        with tarfile.open(fileobj=handle) as tar:
            tar.extractall(target, filter="data")
    if node_modules is not None and node_modules.exists():
        (target / "node_modules").symlink_to(node_modules.resolve(), target_is_directory=True)
    if bundle_cache is not None:
        # Bundles are cached by content (esbuild version + sources), so sharing the cache across
        # checkouts is safe and spares esbuild a run per gateway and stack.
        bundle_cache.mkdir(parents=True, exist_ok=True)
        (target / "build" / ".bundle").mkdir(parents=True)
        (target / "build" / ".bundle" / "cache").symlink_to(bundle_cache.resolve(), target_is_directory=True)


def _exists(repo: Path, ref: str, path: str) -> bool:
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}:{path}")
    except SourceError:
        return False
    return True


def _start_plan(checkout: Path, out: Path, stacks: list[str]) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "CLOUDFLARE_", "AWS_", "GITHUB_TOKEN"))
    }
    env.update(PYTHONPATH=str(checkout), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    return subprocess.Popen(  # noqa: S603 - our interpreter running our fixed runner
        [sys.executable, "-c", RUNNER, str(out), *stacks],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _collect(label: str, out: Path, stacks: list[str]) -> PlanSet:
    found = PlanSet(label)
    for path in sorted(out.glob("*.json")):
        try:
            found.plans[path.stem] = as_plan(json.loads(path.read_text()))
        except ValueError as error:
            found.errors[f"{label}:{path.stem}"] = f"the plan it wrote is not readable: {error}"
    for path in sorted(out.glob("*.error")):
        found.errors[f"{label}:{path.stem}"] = path.read_text()
    return found


def plan_refs(
    repo: Path,
    refs: list[str],
    stacks: list[str] | None = None,
    node_modules: Path | None = None,
    bundle_cache: Path | None = None,
) -> list[PlanSet]:
    """Plans each ref's stacks (or `stacks`) offline; refs with identical inputs are planned once."""
    with tempfile.TemporaryDirectory(prefix="airgate-diff-") as tmp:
        root = Path(tmp)
        unique: dict[str, tuple[Path, subprocess.Popen[str], list[str]]] = {}
        keys: list[str] = []
        wanted_all = sorted({s for ref in refs for s in stacks_at(repo, ref)}) if stacks is None else stacks
        for index, ref in enumerate(refs):
            key = tree_id(repo, ref)
            keys.append(key)
            if key in unique:
                continue
            checkout = root / f"ref{index}"
            extract(repo, ref, checkout, node_modules, bundle_cache)
            out = root / f"out{index}"
            unique[key] = (out, _start_plan(checkout, out, wanted_all), wanted_all)
        results: dict[str, PlanSet] = {}
        for key, (out, process, wanted) in unique.items():
            _, stderr = process.communicate(timeout=600)
            if process.returncode != 0:
                raise SourceError(f"planning failed:\n{stderr.strip()[-4000:]}")
            results[key] = _collect("", out, wanted)
        sets = []
        for ref, key in zip(refs, keys, strict=True):
            planned = results[key]
            sets.append(
                PlanSet(
                    ref,
                    dict(planned.plans),
                    {f"{ref}:{name.split(':', 1)[1]}": text for name, text in planned.errors.items()},
                )
            )
        return sets


def load_side(spec: str, repo: Path) -> PlanSet | None:
    """A file or folder of plans; None when `spec` is not a path (then it is a git ref)."""
    path = Path(spec)
    if path.is_file():
        document = read_plan_file(path)
        return PlanSet(spec, {str(document.get("stack", path.stem)): document})
    if path.is_dir():
        found = PlanSet(spec)
        for item in sorted(path.glob("*.json")):
            document = read_plan_file(item)
            found.plans[str(document.get("stack", item.stem))] = document
        if not found.plans:
            raise SourceError(f"{path}: no plan JSON files in this folder")
        return found
    return None
