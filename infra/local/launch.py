"""Starts one local component with the environment kept in its own 0600 file, then becomes it.

supervisord's own `environment=` syntax cannot carry JSON values (Airflow connections) safely, and
would put secrets into its config; this keeps both out of it.
Usage: python -m infra.local.launch <env.json> <program> [args...]
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    env_file, *command = sys.argv[1:]
    with open(env_file, encoding="utf-8") as handle:
        extra = json.load(handle)
    os.execvpe(command[0], command, {**os.environ, **extra})  # noqa: S606 - our own commands


if __name__ == "__main__":
    main()
