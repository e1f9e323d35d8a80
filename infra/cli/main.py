"""The `airgate` command line: one entry point, one sub-command per job, `--help` everywhere.

Each command module registers itself on the shared app when imported here.
"""

from __future__ import annotations

from infra.cli import edge  # noqa: F401 - registers plan, build
from infra.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
