"""Shared fixtures: stack files written to a temporary stacks/ folder, so every error case starts
from the real shared.yaml and changes one thing."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config.loader import STACKS_DIR, LoadedStack, load_stack

StackFactory = Callable[..., LoadedStack]


def stack_document(name: str) -> dict[str, Any]:
    return yaml.safe_load((STACKS_DIR / f"Pulumi.{name}.yaml").read_text())


@pytest.fixture
def stacks_dir(tmp_path: Path) -> Path:
    target = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, target)
    return target


@pytest.fixture
def write_stack(stacks_dir: Path) -> Callable[..., Path]:
    """Writes Pulumi.<name>.yaml from an existing stack with `airgate:` keys replaced or removed."""

    def write(
        name: str = "candidate",
        *,
        like: str = "dev",
        set_keys: dict[str, Any] | None = None,
        drop_keys: tuple[str, ...] = (),
        shared: Callable[[dict[str, Any]], None] | None = None,
        raw: str | None = None,
    ) -> Path:
        path = stacks_dir / f"Pulumi.{name}.yaml"
        if raw is not None:
            path.write_text(raw)
            return path
        document = copy.deepcopy(stack_document(like))
        for key in drop_keys:
            document["config"].pop(f"airgate:{key}", None)
        for key, value in (set_keys or {}).items():
            document["config"][key if ":" in key else f"airgate:{key}"] = value
        if shared is not None:
            base = yaml.safe_load((stacks_dir / "shared.yaml").read_text())
            shared(base)
            (stacks_dir / "shared.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    return write


@pytest.fixture
def load(stacks_dir: Path) -> Callable[[str], LoadedStack]:
    return lambda name="candidate": load_stack(name, stacks_dir)
