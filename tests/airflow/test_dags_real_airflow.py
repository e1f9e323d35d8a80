"""Real Airflow 3 runs each example DAG (`dag.test()` in a subprocess with its own AIRFLOW_HOME), with
the connections airgate generates pointed at a local server standing in for the gateways and the
token endpoint. What a DAG author relies on: the credential and `traceparent` arrive, a 403 fails the
task at once, a 503 is retried."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.airflow.connections import (
    ConnectionCredentials,
    OAuth2Endpoint,
    connection_json,
    plan_connections,
)
from infra.config.loader import load_stack
from tests.airflow.conftest import AUTH_PACKAGE, DAGS, ROOT, Scripted, StandIn

pytestmark = pytest.mark.slow

UV = ROOT / ".tools" / "bootstrap" / "bin" / "uv"
TRACEPARENT = re.compile(r"\A00-[0-9a-f]{32}-[0-9a-f]{16}-01\Z")
ACCESS_ID, ACCESS_SECRET = "airflow-worker-id.access", "access-secret-value"
OAUTH_SECRET = "oauth-client-secret"
PATHS = {
    "ingest_events": ("POST", "/v1/events"),
    "refresh_dashboards": ("GET", "/v1/tables/dashboards/revenue"),
    "rebuild_warehouse": ("POST", "/dags/refresh_dashboards/runs"),
}


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("airflow-home")
    site = tmp_path_factory.mktemp("provider")
    # Install the auth package the way the image does (a real wheel build, offline, into a target
    # dir), from a copy so the source tree gets no build leftovers.
    source = tmp_path_factory.mktemp("src") / "airflow_gateway_auth"
    shutil.copytree(AUTH_PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    assert UV.exists(), "uv is bootstrapped by ./dev setup"
    subprocess.run(
        [
            str(UV),
            "pip",
            "install",
            "--offline",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--python",
            sys.executable,
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        timeout=120,
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "PYTHONPATH"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, timeout=180, capture_output=True)
    yield env


def connections_for(stand_in: StandIn) -> dict[str, str]:
    """The dev stack's connections (ingest/trigger behind Access, warehouse in oidc mode), generated
    by the real builder, with every gateway URL pointing at the stand-in."""
    stack = load_stack("dev").config
    oauth2 = OAuth2Endpoint(f"{stand_in.url}/token", "api://airgate", "resource", None, 60)
    found = {}
    for plan in plan_connections(stack):
        credentials = ConnectionCredentials(
            stand_in.url,
            access_client_id=ACCESS_ID if plan.behind_access else None,
            access_client_secret=ACCESS_SECRET if plan.behind_access else None,
            oauth2_client_id=plan.oidc_client,
            oauth2_client_secret=OAUTH_SECRET if plan.oidc_client else None,
        )
        found[plan.env_name] = connection_json(plan, credentials, oauth2 if plan.auth == "oidc" else None)
    return found


def run_dag(dag_id: str, env: dict[str, str], stand_in: StandIn) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("dag_runner.py")), dag_id],
        env={**env, **connections_for(stand_in)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    for line in completed.stdout.splitlines():
        if line.startswith("AIRGATE_RESULT "):
            return dict(json.loads(line.removeprefix("AIRGATE_RESULT ")))
    raise AssertionError(f"no result from {dag_id}:\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}")


@pytest.mark.parametrize("dag_id", sorted(PATHS))
def test_example_dag_reaches_its_gateway_with_its_identity(
    dag_id: str, airflow_env: dict[str, str], stand_in: StandIn
) -> None:
    result = run_dag(dag_id, airflow_env, stand_in)
    assert result["run_state"] == "success", result
    method, path = PATHS[dag_id]
    [call] = stand_in.to(path)
    assert call.method == method
    assert TRACEPARENT.match(call.headers["traceparent"])
    if dag_id == "refresh_dashboards":  # warehouse: oidc mode, bearer from the token endpoint
        assert call.headers["Authorization"] == "Bearer token-1"
        assert "CF-Access-Client-Id" not in call.headers
        [token] = stand_in.to("/token")
        assert "resource=api%3A%2F%2Fairgate" in token.body.decode()
        assert OAUTH_SECRET not in json.dumps(call.headers)
    else:  # ingest and trigger: behind Access, the role's service token
        assert call.headers["CF-Access-Client-Id"] == ACCESS_ID
        assert call.headers["CF-Access-Client-Secret"] == ACCESS_SECRET
        assert "Authorization" not in call.headers
    if dag_id == "rebuild_warehouse":
        assert json.loads(call.body) == {"conf": {"dashboard": "revenue"}}
        assert call.headers["Idempotency-Key"].startswith("rebuild_warehouse.")


def test_a_403_fails_the_task_without_retry(airflow_env: dict[str, str], stand_in: StandIn) -> None:
    stand_in.scripts["/v1/events"] = [
        Scripted(403, {"type": "about:blank", "title": "Forbidden", "status": 403, "retryable": False})
    ]
    result = run_dag("ingest_events", airflow_env, stand_in)
    assert result["run_state"] == "failed"
    assert result["tasks"]["post_events"]["state"] == "failed"
    assert len(stand_in.to("/v1/events")) == 1


def test_a_503_is_retried_with_the_same_traceparent(airflow_env: dict[str, str], stand_in: StandIn) -> None:
    stand_in.scripts["/v1/events"] = [
        Scripted(503, {"title": "Policy unavailable", "status": 503}, {"Retry-After": "0"}),
        Scripted(429, {"title": "Rate limited", "status": 429}, {"Retry-After": "0"}),
        Scripted(200, {"accepted": 1}),
    ]
    result = run_dag("ingest_events", airflow_env, stand_in)
    assert result["run_state"] == "success", result
    calls = stand_in.to("/v1/events")
    assert len(calls) == 3
    assert len({call.headers["traceparent"] for call in calls}) == 1
