"""Reads an Airflow account straight from the metadata database, as Airflow's FAB auth manager sees
it: the truth about roles and password that no API shows the account itself."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from werkzeug.security import check_password_hash
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
with get_application_builder() as appbuilder:
    print('USERS', ','.join(sorted(u.username for u in appbuilder.sm.get_all_users())))
    user = appbuilder.sm.find_user(username=sys.argv[1])
    print('ROLES', ','.join(sorted(r.name for r in user.roles)))
    print('ACTIVE', user.active)
    for candidate in sys.argv[2:]:
        if check_password_hash(user.password, candidate):
            print('MATCH', candidate)
"""


def probe(env: dict[str, str], username: str, *candidates: str) -> dict[str, list[str]]:
    """USERS (every account), ROLES (the user's), ACTIVE and MATCH (which `candidates` its password
    hash accepts), from one Airflow start with `env` (AIRFLOW_HOME and database of the Airflow asked)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, username, *candidates],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found: dict[str, list[str]] = {"USERS": [], "ROLES": [], "ACTIVE": [], "MATCH": []}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("USERS", "ROLES", "ACTIVE"):
            found[key] = value.split(",") if value else []
        elif key == "MATCH":
            found[key].append(value)
    return found


def account(env: dict[str, str], username: str, *candidates: str) -> tuple[list[str], list[str]]:
    """The user's roles, and which of `candidates` its stored password hash accepts."""
    found = probe(env, username, *candidates)
    return found["ROLES"], found["MATCH"]


TAMPER = """
import sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
with get_application_builder() as appbuilder:
    user = appbuilder.sm.find_user(username=sys.argv[1])
    user.roles = [*user.roles, appbuilder.sm.find_role("Admin")]
    user.active = False
    assert appbuilder.sm.update_user(user)
"""


def tamper(env: dict[str, str], username: str) -> None:
    """What an operator might do by hand: give the account Admin too, and deactivate it."""
    subprocess.run([sys.executable, "-c", TAMPER, username], env=env, timeout=120, check=True)
