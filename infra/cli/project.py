"""Finds the airgate project the way the Pulumi CLI does: the nearest `Pulumi.yaml` (or `.yml`) in
the current directory or a parent; its `stackConfigDir` is where the stack files live."""

from __future__ import annotations

from pathlib import Path

PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml")


class NoProject(LookupError):
    pass


def find_project_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / name).is_file() for name in PROJECT_FILES):
            return folder
    raise NoProject(
        f"no Pulumi.yaml in {here} or any parent: run airgate inside the project, or pass --stacks-dir"
    )


def stacks_dir(root: Path) -> Path:
    """`stackConfigDir` of the project file, relative to it (Pulumi's default: the project folder)."""
    import yaml

    name = next(n for n in PROJECT_FILES if (root / n).is_file())
    document = yaml.safe_load((root / name).read_text()) or {}
    configured = document.get("stackConfigDir") if isinstance(document, dict) else None
    return (root / configured).resolve() if isinstance(configured, str) and configured else root
