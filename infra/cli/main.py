"""The `airgate` command line: one entry point, one sub-command per job, `--help` everywhere.

Each command module registers itself on the shared app when imported here.
"""

from __future__ import annotations

# Importing a command module registers its commands: plan, build; up, down, status, logs;
# diff, lint; the stack group.
from infra.cli import edge, local, review, stacks  # noqa: F401
from infra.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
