"""Makes the DAG-trigger gateway's Airflow account what it must be: it exists, it holds exactly the one
role it is given (FAB's `User`), and its password is the current one. Idempotent: running it again
changes nothing, and a role someone added by hand is taken away again.

It runs inside Airflow's own Python, in the Kubernetes bootstrap Job (the Airflow image, where
airgate's `infra` package does not exist) and in `airgate up` (.venv), so it imports only the standard
library, Airflow and its FAB provider. `infra/airflow/trigger_account.py` builds the one command line
both use: `python -c <this file's source> [--wait-for-migrations S] --role R --password-env VAR USER`.
One Airflow start does all of it (the `airflow users` commands would start Airflow once per step).

A deactivated account is left deactivated: switching off the gateway's Airflow login is an
operator's decision that a re-run must not undo (it is reported).
"""

from __future__ import annotations

import argparse
import os
import sys


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ensure_trigger_account")
    parser.add_argument("username")
    parser.add_argument("--role", required=True)
    parser.add_argument("--password-env", required=True, help="the environment variable holding the password")
    parser.add_argument("--wait-for-migrations", type=int, metavar="SECONDS")
    return parser.parse_args(argv)


def ensure(username: str, role_name: str, password: str) -> str:
    """Returns what it did, one line."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        role = security.find_role(role_name)
        if role is None:
            raise SystemExit(f"Airflow has no role {role_name!r}: is the FAB auth manager configured?")
        user = security.find_user(username=username)
        if user is None:
            email = f"{username}@airgate.invalid"
            if not security.add_user(username, "airgate", "trigger", email, role, password):
                raise SystemExit(f"could not create the Airflow user {username!r} (is {email} taken?)")
            return f"{username}: created with role {role_name}"
        done = []
        held = sorted(r.name for r in user.roles)
        if held != [role_name]:
            user.roles = [role]
            if not security.update_user(user):
                raise SystemExit(f"could not set the roles of {username!r} to [{role_name}]")
            done.append(f"roles {held} -> [{role_name}]")
        if not security.reset_password(user.id, password):
            raise SystemExit(f"could not set the password of {username!r}")
        done.append("password set")
        if not user.active:
            done.append("the account is deactivated: the gateway cannot sign in until someone activates it")
        return f"{username}: " + "; ".join(done)


def main(argv: list[str]) -> None:
    args = _arguments(argv)
    password = os.environ.get(args.password_env, "")
    if not password:
        raise SystemExit(f"the password is missing: set {args.password_env}")
    if args.wait_for_migrations:
        # The chart's migration Job may still be running: its result, not its start, is the gate.
        from airflow.utils.db import check_migrations

        check_migrations(args.wait_for_migrations)  # type: ignore[no-untyped-call]
    print(ensure(args.username, args.role, password))


if __name__ == "__main__":
    main(sys.argv[1:])
