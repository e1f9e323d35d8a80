"""The `airgate` command line: one entry point, one sub-command per job, `--help` everywhere.

Each command module registers itself on the shared app when imported here.
"""

from __future__ import annotations

# Importing a command module registers its commands: plan, build; up, down, status, logs;
# diff, lint; the stack group.
from infra.cli import access, control, edge, local, review, stacks  # noqa: F401
from infra.cli.app import app

__all__ = ["app", "main"]

GC_THRESHOLD = 50_000
"""Objects allocated before a young-generation collection (CPython's default is 700).

A command is a short process that allocates millions of long-lived objects while importing
pulumi_cloudflare's generated classes; each default collection re-scans them. A larger threshold
roughly halves that import (bench/plan_time), and freezing what exists at exit spares the final
collection. Memory grows only by unreclaimed cycles, which these short runs hardly make.
"""


def main() -> None:
    import gc

    gc.set_threshold(GC_THRESHOLD, 50, 100)
    try:
        app()
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
