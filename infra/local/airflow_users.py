"""Makes the local trigger gateway's Airflow account exist with the current password (one process:
`airflow users create` + `reset-password` would start Airflow twice). The same two steps as the
bootstrap Job on Kubernetes (infra/airflow/jobs_plan.py). Run by `airgate up` after the migration:
`python -m infra.local.airflow_users <username>` with the password in the environment variable
`TRIGGER_PASSWORD_ENV` names (the one the bootstrap Job reads it from)."""

from __future__ import annotations

import os
import sys

from infra.airflow.kubernetes_plan import TRIGGER_PASSWORD_ENV


def ensure_user(username: str, password: str, role: str = "User") -> None:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        user = security.find_user(username=username)
        if user is None:
            found = security.find_role(role)
            if found is None or not security.add_user(
                username, "airgate", "trigger", f"{username}@airgate.invalid", found, password
            ):
                raise SystemExit(f"could not create the Airflow user {username!r}")
        elif not security.reset_password(user.id, password):
            raise SystemExit(f"could not set the password of {username!r}")


if __name__ == "__main__":
    ensure_user(sys.argv[1], os.environ[TRIGGER_PASSWORD_ENV])
