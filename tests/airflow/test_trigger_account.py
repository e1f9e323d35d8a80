"""The trigger gateway's Airflow account is one thing everywhere: the Kubernetes bootstrap Job and the
local environment run one command, whose program can run where airgate's code is absent (the
Airflow image) and never carries the password on its command line."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from infra.airflow.jobs_plan import bootstrap_args
from infra.airflow.kubernetes_plan import TRIGGER_PASSWORD_ENV
from infra.airflow.trigger_account import PROGRAM, TRIGGER_ROLE, account_command, trigger_account_name
from infra.config.loader import load_stack
from infra.local.plan import TRIGGER_PASSWORD_SECRET, plan_local, secret_names, stack_ports


def imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_program_needs_only_python_and_airflow() -> None:
    # The Airflow image has no `infra`: an import of airgate's own code would fail only in the cluster.
    foreign = imported_roots(PROGRAM.read_text()) - set(sys.stdlib_module_names) - {"airflow", "__future__"}
    assert foreign == set()


def test_kubernetes_and_local_run_the_same_program_for_the_same_account() -> None:
    local = load_stack("local").config
    prod = load_stack("prod").config
    assert prod.airflow is not None
    job = bootstrap_args(prod.airflow)
    here = account_command(trigger_account_name(local), TRIGGER_PASSWORD_ENV, python=sys.executable)
    assert job[1:3] == here[1:3] == ["-c", PROGRAM.read_text()]
    assert trigger_account_name(local) == prod.airflow.trigger_api_user == "airgate-trigger"
    for command in (job, here):
        assert command[-1] == "airgate-trigger"
        assert command[command.index("--role") + 1] == TRIGGER_ROLE == "User"
        assert command[command.index("--password-env") + 1] == TRIGGER_PASSWORD_ENV


def test_the_local_trigger_gateway_signs_in_as_that_account(tmp_path: Path) -> None:
    loaded = load_stack("local")
    secrets = {name: f"value-of-{name}" for name in secret_names(loaded.config)}
    plan = plan_local(loaded, tmp_path, stack_ports(loaded.config), secrets, {})
    [trigger] = [g for g in plan.gateways_config["gateways"] if g["name"] == "trigger"]  # type: ignore[union-attr]
    assert plan.trigger_account == "airgate-trigger"
    assert trigger["vars"]["AIRFLOW_USERNAME"] == "airgate-trigger"
    assert trigger["secrets"] == {"AIRFLOW_PASSWORD": secrets[TRIGGER_PASSWORD_SECRET]}
