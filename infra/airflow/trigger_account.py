"""Decides the DAG-trigger gateway's Airflow account, the same in every environment: its name (the
stack's `airflow.trigger_api_user`), its one role (FAB's `User`) and the command that makes it so.

The Kubernetes bootstrap Job (`jobs_plan.py`) and `airgate up` (`infra/local/environment.py`) both
run `account_command`: the program `ensure_trigger_account.py`, handed to Airflow's Python as
source (`python -c`) because the Airflow image carries Airflow, not airgate. A change to that program
changes the Job's template, so Pulumi replaces the Job and the next `pulumi up` applies it.

Why `User`: it may trigger DAG runs (FAB: `can_create` on DAG Runs plus `can_edit` on DAGs, which
Airflow checks for any change to a DAG's runs) and read them, and a run's `note` comes with the
trigger call itself, so no other permission is needed. It may not administer users, roles,
connections, variables or configuration (Admin/Op).
"""

from __future__ import annotations

from pathlib import Path

from infra.config.airflow_model import AirflowSettings
from infra.config.model import StackConfig

TRIGGER_ROLE = "User"
PROGRAM = Path(__file__).resolve().with_name("ensure_trigger_account.py")


def trigger_account_name(stack: StackConfig) -> str:
    """The account the trigger gateway signs in as; a stack without `airflow:` gets the default."""
    settings = stack.airflow
    if settings is not None:
        return settings.trigger_api_user
    default = AirflowSettings.model_fields["trigger_api_user"].default
    assert isinstance(default, str)
    return default


def account_command(
    username: str, password_env: str, *, python: str = "python", wait_for_migrations: int | None = None
) -> list[str]:
    """The command line that makes `username` exist with exactly `TRIGGER_ROLE` and the password in
    the environment variable `password_env` (never on the command line)."""
    wait = ["--wait-for-migrations", str(wait_for_migrations)] if wait_for_migrations else []
    return [
        python,
        "-c",
        PROGRAM.read_text(),
        *wait,
        "--role",
        TRIGGER_ROLE,
        "--password-env",
        password_env,
        username,
    ]
