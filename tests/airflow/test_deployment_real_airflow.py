"""Real Airflow 3.3 on a fresh metadata database (sqlite in a temporary AIRFLOW_HOME), configured with
the `[core]` settings airgate hands the chart: granted DAGs are unpaused the moment they are parsed
(no manual step before the first triggered run starts; Airflow's own default would leave them
paused), and the identity bootstrap Job's exact command line is idempotent, applies a rotated
password and leaves the trigger account with exactly the User role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.airflow.connections import plan_connections
from infra.airflow.jobs_plan import bootstrap_args
from infra.airflow.kubernetes_plan import TRIGGER_PASSWORD_ENV, plan_helm_values
from infra.config.loader import load_stack
from tests.airflow.accounts import account, probe, tamper
from tests.airflow.conftest import DAGS, ROOT

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def chart_config_env(stack_name: str) -> dict[str, str]:
    """What the chart writes into airflow.cfg from `config:`, as Airflow's equivalent env vars."""
    stack = load_stack(stack_name).config
    values = plan_helm_values(stack, plan_connections(stack))
    env = {}
    for section, options in values["config"].items():
        if section in ("core",):
            for key, value in options.items():
                env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = str(value)
    return env


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def fresh_home(tmp: Path, config: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in ("PYTHONPATH",)
    }
    env.update(
        {
            "AIRFLOW_HOME": str(tmp),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": f"{DAGS}{os.pathsep}{ROOT / 'airflow_gateway_auth' / 'src'}",
            **config,
        }
    )
    airflow(env, "db", "migrate")
    return env


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield fresh_home(tmp_path_factory.mktemp("airflow-deployed"), chart_config_env("prod"))


def json_output(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    """The CLI's JSON document (log lines may come before it on stdout)."""
    [document] = [line for line in result.stdout.splitlines() if line.startswith("[")]
    return list(json.loads(document))


def paused_states(env: dict[str, str]) -> dict[str, bool]:
    airflow(env, "dags", "reserialize")
    listed = json_output(airflow(env, "dags", "list", "--output", "json"))
    return {dag["dag_id"]: str(dag["is_paused"]).lower() == "true" for dag in listed}


def granted_dags_in_repo(stack_name: str) -> set[str]:
    stack = load_stack(stack_name).config
    granted = {dag for grant in stack.dag_grants for dag in grant.dags}
    return {dag for dag in granted if (DAGS / f"{dag}.py").exists()}


def test_granted_dags_are_unpaused_on_a_fresh_database(deployed: dict[str, str]) -> None:
    granted = granted_dags_in_repo("prod")
    assert granted  # the repository ships DAGs the stack grants
    states = paused_states(deployed)
    assert granted <= set(states)
    assert {dag: states[dag] for dag in granted} == dict.fromkeys(granted, False)
    # A triggered run of an unpaused DAG is one the scheduler will start (it skips paused DAGs).
    dag = sorted(granted)[0]
    airflow(deployed, "dags", "trigger", dag)
    runs = json_output(airflow(deployed, "dags", "list-runs", dag, "--output", "json"))
    assert [run["state"] for run in runs] == ["queued"]


def test_the_bootstrap_job_is_idempotent_and_applies_a_rotated_password(
    deployed: dict[str, str], tmp_path: Path
) -> None:
    settings = load_stack("prod").config.airflow
    assert settings is not None
    args = bootstrap_args(settings)
    assert args[:2] == ["python", "-c"]  # the image's entrypoint runs `python ...` as given
    user = settings.trigger_api_user

    def run_job(password: str) -> str:
        env = {**deployed, TRIGGER_PASSWORD_ENV: password, "PATH": f"{BIN}{os.pathsep}{deployed['PATH']}"}
        # Away from the repository, as in the image: the program must not need airgate's own code.
        result = subprocess.run(
            args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
        return result.stdout

    first, rotated = "first-password-value", "rotated-password-value"
    assert f"{user}: created with role User" in run_job(first)
    assert account(deployed, user, first, rotated) == (["User"], [first])
    # What a replaced Job does after a rotation: the account exists, and the new password applies.
    run_job(rotated)
    assert account(deployed, user, first, rotated) == (["User"], [rotated])


def test_the_bootstrap_job_takes_back_a_role_added_by_hand_and_leaves_a_deactivation(
    deployed: dict[str, str], tmp_path: Path
) -> None:
    settings = load_stack("prod").config.airflow
    assert settings is not None
    user, password = settings.trigger_api_user, "a-password-value"
    env = {**deployed, TRIGGER_PASSWORD_ENV: password, "PATH": f"{BIN}{os.pathsep}{deployed['PATH']}"}
    args = bootstrap_args(settings)
    subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, timeout=300, check=True)
    tamper(deployed, user)
    assert probe(deployed, user)["ROLES"] == ["Admin", "User"]
    again = subprocess.run(
        args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True
    )
    assert "roles ['Admin', 'User'] -> [User]" in again.stdout
    assert "the account is deactivated" in again.stdout
    found = probe(deployed, user, password)
    assert (found["ROLES"], found["ACTIVE"], found["MATCH"]) == (["User"], ["False"], [password])
