"""Fixtures for the lifecycle tests: stack files in a temporary stacks/ folder that a test edits
between deploys, one deployment engine with its Cloudflare API stand-in, and the sequence table
(step, expected changes, seen changes) written to build/lifecycle/sequence.md."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.build import templates
from infra.config.loader import PROJECT_ROOT, STACKS_DIR, LoadedStack, load_stack, referenced_secrets
from infra.config.migration_history import chained_digest
from infra.config.sections import MigrationStep
from tests.lifecycle.engine import Engine, Run

Change = tuple[str, str, str]
TABLE = PROJECT_ROOT / "build" / "lifecycle" / "sequence.md"


class StackFiles:
    """stacks/ copied to a temporary folder, as they are: the real stacks, Airflow on Kubernetes
    included."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(STACKS_DIR, root)

    def edit(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.root / f"Pulumi.{name}.yaml"
        document = yaml.safe_load(path.read_text())
        change(document["config"])
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def edit_shared(self, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.root / "shared.yaml"
        document = yaml.safe_load(path.read_text())
        change(document)
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def derive(self, name: str, like: str, change: Callable[[dict[str, Any]], None]) -> None:
        document = yaml.safe_load((self.root / f"Pulumi.{like}.yaml").read_text())
        config = copy.deepcopy(document["config"])
        change(config)
        (self.root / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))

    def load(self, name: str) -> LoadedStack:
        return load_stack(name, self.root)

    def append_migration(self, tag: str, new_classes: list[str]) -> None:
        def append(shared: dict[str, Any]) -> None:
            history = shared["durable_object_migrations"]
            step = MigrationStep(tag=tag, new_sqlite_classes=tuple(new_classes))
            entry = {"tag": tag, "new_sqlite_classes": new_classes}
            entry["digest"] = chained_digest(history[-1]["digest"], step)
            history.append(entry)

        self.edit_shared(append)


@dataclass
class Sequence:
    """Runs one deploy step: a preview, then the update; both must show exactly `expected`."""

    engine: Engine
    files: StackFiles
    rows: list[tuple[str, str, str, str]]
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)

    def secrets_for(self, loaded: LoadedStack) -> dict[str, str]:
        values = self.secrets.setdefault(loaded.name, {})
        for key in sorted(referenced_secrets(loaded.config)):
            values.setdefault(key, f"secret-{loaded.name}-{key}")
        return values

    def step(
        self,
        stack: str,
        title: str,
        expected: set[Change] | None,
        *,
        error: str | None = None,
        partial: bool = False,
    ) -> Run:
        """`partial`: the update fails on one of the expected steps; the ones after it never run.
        `expected` None: whatever the preview shows, the update does exactly that."""
        loaded = self.files.load(stack)
        secrets = self.secrets_for(loaded)
        preview = self.engine.preview(loaded, secrets)
        expected = preview.changes() if expected is None else expected
        run = self.engine.up(loaded, secrets)
        self.rows.append((stack, title, _show(expected, error), _show(run.changes(), run.error)))
        assert preview.changes() == expected, f"{title}: preview {sorted(preview.changes())}"
        if partial:
            assert run.changes() <= expected, f"{title}: {sorted(run.changes())} ({run.error})"
        else:
            assert run.changes() == expected, f"{title}: {sorted(run.changes())} ({run.error})"
        if error is None:
            assert run.error is None, f"{title}: {run.error}"
        else:
            assert run.error is not None and error in run.error, f"{title}: {run.error}"
        return run

    def destroy(self, stack: str, title: str, expected: set[Change]) -> Run:
        run = self.engine.destroy(stack)
        self.rows.append((stack, title, _show(expected, None), _show(run.changes(), run.error)))
        assert run.error is None and run.changes() == expected, (run.error, sorted(run.changes()))
        return run


def _show(changes: set[Change], error: str | None) -> str:
    if not changes and error is None:
        return "no changes"
    counted: dict[tuple[str, str], list[str]] = {}
    for op, kind, name in sorted(changes):
        counted.setdefault((op, kind), []).append(name)
    if len(changes) > 8:  # a whole stack: counts per operation
        ops: dict[str, int] = {}
        for op, _, _ in changes:
            ops[op] = ops.get(op, 0) + 1
        parts = [f"{op} x{count}" for op, count in sorted(ops.items())]
    else:
        parts = [f"{op} {kind} ({', '.join(names)})" for (op, kind), names in sorted(counted.items())]
    if error is not None:
        parts.append(f"refused: {error.split(' (remove')[0][:90]}")
    return "; ".join(parts) or "none"


_ROWS: list[tuple[str, str, str, str]] = []


@pytest.fixture(scope="session")
def sequence_rows() -> Iterator[list[tuple[str, str, str, str]]]:
    yield _ROWS
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| stack | step | expected | seen |", "| --- | --- | --- | --- |"]
    lines += [f"| {stack} | {step} | {expected} | {seen} |" for stack, step, expected, seen in _ROWS]
    TABLE.write_text("\n".join(lines) + "\n")


@pytest.fixture
def files(tmp_path: Path) -> StackFiles:
    return StackFiles(tmp_path / "stacks")


@pytest.fixture
def sequence(files: StackFiles, sequence_rows: list[tuple[str, str, str, str]]) -> Sequence:
    return Sequence(Engine(), files, sequence_rows)


@pytest.fixture
def template_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Points the renderer at a copy of worker_templates/ and changes one line of one module."""
    copied = tmp_path / "worker_templates"
    shutil.copytree(templates.TEMPLATES_DIR, copied)

    def change(old: str, new: str) -> None:
        module = copied / "lib" / "problem.js"
        text = module.read_text()
        assert old in text
        module.write_text(text.replace(old, new))
        monkeypatch.setattr(templates, "TEMPLATES_DIR", copied)

    return change
