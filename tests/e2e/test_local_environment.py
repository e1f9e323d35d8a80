"""The whole path on this machine, through the real components: `airgate up` (OpenID provider,
sample upstreams, the built Workers in workerd, Airflow 3), calls through the gateways, a DAG
trigger with an idempotency key, the sample DAG, then `airgate down` leaving no process behind."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.config.loader import PROJECT_ROOT, load_stack
from infra.local import demo
from infra.local.environment import prepare
from infra.local.plan import OTHER_AUDIENCE, TRIGGER_PASSWORD_SECRET, LocalPlan
from infra.local.processes import Supervisor
from tests.airflow.accounts import probe

pytestmark = pytest.mark.slow
AIRGATE = PROJECT_ROOT / ".venv" / "bin" / "airgate"


@dataclass
class Environment:
    plan: LocalPlan
    secrets: dict[str, str]
    up_output: str
    pids: list[int]

    def token(self, client: str, audience: str | None = None) -> str:
        return demo.client_token(self.plan, client, self.secrets[f"oidc-client-{client}"], audience)


def our_processes(state_dir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(state_dir) in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    state_dir = tmp_path_factory.mktemp("local-state")
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [str(AIRGATE), "up", "--state-dir", str(state_dir), "--free-ports"],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    try:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        plan = prepare(load_stack("local"), state_dir)
        secrets = json.loads((state_dir / "secrets.json").read_text())
        pids = [p["pid"] for p in Supervisor(state_dir).info() if p["pid"]]
        yield Environment(plan, secrets, result.stdout, pids)
    finally:
        subprocess.run([str(AIRGATE), "down", "--state-dir", str(state_dir)], timeout=120, check=False)


def test_up_reports_the_sample_dag_and_its_decisions(environment: Environment) -> None:
    out = environment.up_output
    assert "sample DAG succeeded" in out
    assert "Decision lines of this run" in out
    assert "ai-agent -> allow (allowed, 200)" in out
    assert "airflow-worker -> allow" in out
    assert "ai-agent -> deny (dag_not_granted, 403)" in out


def test_allowed_call_reaches_the_upstream_with_identity_headers(environment: Environment) -> None:
    token = environment.token("ai-agent")
    answer = demo.http(
        "GET",
        environment.plan.gateway_url("warehouse") + "/v1/tables/revenue",
        headers={"authorization": f"Bearer {token}"},
    )
    assert answer.status == 200, answer.body
    headers = answer.body["headers"]
    assert answer.body["upstream"] == "warehouse"
    assert headers["x-airgate-subject"] == "ai-agent"
    assert "ai-agent" in headers["x-airgate-roles"]
    assert token not in json.dumps(answer.body)
    assert headers["authorization"] == "Bearer [redacted]"  # the upstream's own credential


def test_a_human_test_user_signs_in_and_gets_their_roles(environment: Environment) -> None:
    token = subprocess.run(
        [
            str(AIRGATE),
            "token",
            "--state-dir",
            str(environment.plan.state_dir),
            "--user",
            "data-engineer-person",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    ingest = environment.plan.gateway_url("ingest")
    allowed = demo.http("POST", ingest + "/v1/events", headers={"authorization": f"Bearer {token}"}, body={})
    assert allowed.status == 200, allowed.body
    assert allowed.body["headers"]["x-airgate-subject"] == "data-engineer-person"
    assert allowed.body["headers"]["x-airgate-roles"] == "data-engineer"
    admin = environment.plan.gateway_url("warehouse") + "/v1/admin/users"
    assert demo.http("GET", admin, headers={"authorization": f"Bearer {token}"}).status == 403


def test_wrong_role_is_403(environment: Environment) -> None:
    token = environment.token("ci")
    answer = demo.http(
        "POST",
        environment.plan.gateway_url("warehouse") + "/v1/query",
        headers={"authorization": f"Bearer {token}"},
        body={"sql": "select 1"},
    )
    assert answer.status == 403
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_no_token_is_401(environment: Environment) -> None:
    answer = demo.http("GET", environment.plan.gateway_url("warehouse") + "/v1/tables/revenue")
    assert answer.status == 401
    assert answer.body["retryable"] is False


def test_token_for_another_audience_is_401(environment: Environment) -> None:
    token = environment.token("ai-agent", OTHER_AUDIENCE)
    answer = demo.http(
        "GET",
        environment.plan.gateway_url("warehouse") + "/v1/tables/revenue",
        headers={"authorization": f"Bearer {token}"},
    )
    assert answer.status == 401


def gateway_account_token(environment: Environment) -> str:
    """An Airflow API token for the trigger gateway's own account (the only password account)."""
    login = demo.http(
        "POST",
        environment.plan.airflow_url + "/auth/token",
        body={
            "username": environment.plan.trigger_account,
            "password": environment.secrets[TRIGGER_PASSWORD_SECRET],
        },
    )
    assert login.status == 201, login.body
    return str(login.body["access_token"])


def airflow_runs(environment: Environment, dag_id: str) -> list[dict[str, object]]:
    answer = demo.http(
        "GET",
        environment.plan.airflow_url + f"/api/v2/dags/{dag_id}/dagRuns?limit=100",
        headers={"authorization": f"Bearer {gateway_account_token(environment)}"},
    )
    assert answer.status == 200, answer.body
    return list(answer.body["dag_runs"])


def test_trigger_twice_with_one_idempotency_key_starts_one_run(environment: Environment) -> None:
    token = environment.token("airflow-worker")
    before = len(airflow_runs(environment, "refresh_dashboards"))
    url = environment.plan.gateway_url("trigger") + "/dags/refresh_dashboards/runs"
    headers = {
        "authorization": f"Bearer {token}",
        "idempotency-key": "e2e-once-" + base64.b16encode(os.urandom(4)).decode(),
    }
    first = demo.http("POST", url, headers=headers, body={"conf": {"dashboard": "funnel"}})
    second = demo.http("POST", url, headers=headers, body={"conf": {"dashboard": "funnel"}})
    assert first.status in (200, 201), first.body
    assert second.status == first.status
    assert second.body == first.body
    assert len(airflow_runs(environment, "refresh_dashboards")) == before + 1


def trigger_as(environment: Environment, client: str, body: dict[str, object]) -> demo.HttpAnswer:
    url = environment.plan.gateway_url("trigger") + "/dags/refresh_dashboards/runs"
    return demo.http("POST", url, headers={"authorization": f"Bearer {environment.token(client)}"}, body=body)


def decision_line(environment: Environment, request_id: str) -> dict[str, object]:
    log = Supervisor(environment.plan.state_dir).log_file("gateways")
    assert demo.wait_for_line(log, request_id)
    [line] = [r for r in demo.decision_lines(log) if r.get("request_id") == request_id]
    return line


def runs_of(environment: Environment, dag_id: str, subject: str) -> list[dict[str, object]]:
    """README "Who triggered a run": the runs the gateway started for `subject` (their id prefix)."""
    prefix = f"airgate__{hashlib.sha256(subject.encode()).hexdigest()[:16]}__"
    answer = demo.http(
        "GET",
        f"{environment.plan.airflow_url}/api/v2/dags/{dag_id}/dagRuns"
        f"?run_id_prefix_pattern={prefix}&limit=100",
        headers={"authorization": f"Bearer {gateway_account_token(environment)}"},
    )
    assert answer.status == 200, answer.body
    return list(answer.body["dag_runs"])


def test_a_run_names_its_caller_in_airflow_and_leads_to_the_decision_line_and_back(
    environment: Environment,
) -> None:
    started = trigger_as(environment, "ai-agent", {"conf": {"dashboard": "revenue"}})
    assert started.status == 200, started.body
    request_id = started.headers["x-request-id"]
    run_id = str(started.body["dag_run_id"])
    # Airflow's own record, read from Airflow's API.
    answer = demo.http(
        "GET",
        environment.plan.airflow_url + f"/api/v2/dags/refresh_dashboards/dagRuns/{run_id}",
        headers={"authorization": f"Bearer {gateway_account_token(environment)}"},
    )
    assert answer.status == 200, answer.body
    run = answer.body
    assert run["note"] == (
        "Triggered by OIDC client `ai-agent` through airgate gateway trigger (local), "
        f"request_id {request_id}"
    )
    assert run["triggering_user_name"] == "airgate-trigger"
    # Run → decision line: the note's request id.
    line = decision_line(environment, str(run["note"]).rsplit("request_id ", 1)[1])
    assert (line["subject"], line["decision"], line["method"], line["path"]) == (
        "ai-agent",
        "allow",
        "POST",
        "/dags/refresh_dashboards/runs",
    )
    # Decision line → run: the subject's run-id prefix, then the note naming the line's request id.
    mine = runs_of(environment, "refresh_dashboards", str(line["subject"]))
    found = [r for r in mine if f"request_id {line['request_id']}" in str(r["note"])]
    assert [r["dag_run_id"] for r in found] == [run_id]
    # Airflow lets a User edit a note later; the run id, and the subject's hash in it, never changes.
    edited = demo.http(
        "PATCH",
        environment.plan.airflow_url + f"/api/v2/dags/refresh_dashboards/dagRuns/{run_id}?update_mask=note",
        headers={"authorization": f"Bearer {gateway_account_token(environment)}"},
        body={"note": "Triggered by person `someone-else`"},
    )
    assert edited.status == 200, edited.body
    assert edited.body["note"] == "Triggered by person `someone-else`"
    assert run_id in {r["dag_run_id"] for r in runs_of(environment, "refresh_dashboards", "ai-agent")}
    assert run_id not in {r["dag_run_id"] for r in runs_of(environment, "refresh_dashboards", "someone-else")}


def test_a_callers_own_note_does_not_replace_the_gateways(environment: Environment) -> None:
    before = {r["dag_run_id"] for r in runs_of(environment, "refresh_dashboards", "ai-agent")}
    note = "Triggered by person `platform-admin`"
    forged = trigger_as(environment, "ai-agent", {"conf": {"dashboard": "revenue"}, "note": note})
    assert forged.status == 422, forged.body
    assert "note is written by the gateway" in forged.body["detail"]
    assert decision_line(environment, forged.headers["x-request-id"])["reason"] == "invalid_body"
    assert {r["dag_run_id"] for r in runs_of(environment, "refresh_dashboards", "ai-agent")} == before


def test_the_gateways_airflow_account_is_exactly_a_user(environment: Environment) -> None:
    airflow_env = {**os.environ, **next(c.env for c in environment.plan.components if c.group == "airflow")}
    found = probe(airflow_env, environment.plan.trigger_account)
    assert environment.plan.trigger_account == "airgate-trigger"
    assert found["ROLES"] == ["User"]
    assert "admin" not in found["USERS"]
    # With the gateway's own credentials: user administration (Admin only) is refused.
    token = gateway_account_token(environment)
    users = environment.plan.airflow_url + "/auth/fab/v1/users"
    headers = {"authorization": f"Bearer {token}"}
    assert demo.http("GET", users, headers=headers).status == 403
    escalate = demo.http(
        "PATCH",
        f"{users}/airgate-trigger?update_mask=roles",
        headers=headers,
        body={"roles": [{"name": "Admin"}]},
    )
    assert escalate.status == 403, escalate.body
    assert probe(airflow_env, environment.plan.trigger_account)["ROLES"] == ["User"]


def test_sample_dag_tasks_went_through_the_gateways(environment: Environment) -> None:
    runs = [r for r in airflow_runs(environment, "refresh_dashboards") if r["state"] == "success"]
    assert runs
    records = demo.decision_lines(Supervisor(environment.plan.state_dir).log_file("gateways"))
    first_run = min(runs, key=lambda r: str(r["queued_at"]))
    traces = demo.run_trace_ids(
        demo.DemoRun("refresh_dashboards", str(first_run["dag_run_id"]), "success", "", 0)
    )
    task_lines = [r for r in records if demo.trace_id(r) in traces and r["gateway"] != "trigger"]
    assert {r["gateway"] for r in task_lines} >= {"warehouse"}
    assert all(r["decision"] == "allow" and r["subject"] == "airflow-worker" for r in task_lines)


def test_up_again_changes_nothing(environment: Environment) -> None:
    state_dir = environment.plan.state_dir
    before = sorted(p["pid"] for p in Supervisor(state_dir).info())
    again = subprocess.run(
        [str(AIRGATE), "up", "--state-dir", str(state_dir), "--no-demo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stdout
    assert sorted(p["pid"] for p in Supervisor(state_dir).info()) == before


def airgate_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIRGATE), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=180,
    )


def status_becomes(
    environment: Environment, client: str, path: str, status: int, gateway: str = "warehouse"
) -> bool:
    """Polls one gateway call until it answers `status` (the control document is re-read each second)."""
    from infra.local import health

    token = environment.token(client)

    def answered() -> bool:
        url = environment.plan.gateway_url(gateway) + path
        return demo.http("GET", url, headers={"authorization": f"Bearer {token}"}).status == status

    return health.wait_until(answered, 15, lambda: True)


def test_kill_switch_and_revoke_are_enforced_by_the_running_gateways(environment: Environment) -> None:
    state = ("-s", "local", "--state-dir", str(environment.plan.state_dir))
    assert status_becomes(environment, "ai-agent", "/v1/tables/revenue", 200)
    switched = airgate_run("kill-switch", "ai-agent", *state)
    assert switched.returncode == 0, switched.stderr
    assert '"disabled_roles":["ai-agent"]' in switched.stdout
    assert status_becomes(environment, "ai-agent", "/v1/tables/revenue", 403)
    assert airgate_run("kill-switch", "ai-agent", "--undo", *state).returncode == 0
    assert status_becomes(environment, "ai-agent", "/v1/tables/revenue", 200)
    assert airgate_run("revoke", "ai-agent", *state).returncode == 0
    assert status_becomes(environment, "ai-agent", "/v1/tables/revenue", 403)
    assert airgate_run("revoke", "ai-agent", "--undo", *state).returncode == 0
    assert status_becomes(environment, "ai-agent", "/v1/tables/revenue", 200)


# Needs the Worker's decision endpoint (GET /.airgate/decision), built on the Worker branch.
def test_up_ends_with_a_verify_that_passes(environment: Environment) -> None:
    summary = [line for line in environment.up_output.splitlines() if line.startswith("verify local: ")]
    assert len(summary) == 1, environment.up_output[-2000:]
    assert " 0 mismatched" in summary[0] and "not coverable (human-only roles)" in summary[0]


# Needs the Worker's decision endpoint (GET /.airgate/decision), built on the Worker branch.
def test_verify_fails_when_the_running_policy_is_broken_on_purpose(environment: Environment) -> None:
    state = ("-s", "local", "--state-dir", str(environment.plan.state_dir))
    assert airgate_run("verify", *state).returncode == 0
    assert airgate_run("kill-switch", "ci", *state).returncode == 0
    try:
        # ci may read /v1/health at the ingest gateway only: wait until the switch reaches it.
        assert status_becomes(environment, "ci", "/v1/health", 403, gateway="ingest")
        broken = airgate_run("verify", *state)
        assert broken.returncode == 1, broken.stdout
        assert (
            "MISMATCH ci ingest GET /v1/health: expected allow via health, got role_not_allowed"
            in broken.stdout + broken.stderr
        )
    finally:
        assert airgate_run("kill-switch", "ci", "--undo", *state).returncode == 0


def test_down_leaves_no_process(environment: Environment) -> None:
    state_dir = environment.plan.state_dir
    subprocess.run([str(AIRGATE), "down", "--state-dir", str(state_dir)], check=True, timeout=120)
    assert our_processes(state_dir) == []
    for pid in environment.pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )
    status = subprocess.run(
        [str(AIRGATE), "status", "--state-dir", str(state_dir)], capture_output=True, text=True
    )
    assert status.returncode == 3
    assert (state_dir / "secrets.json").exists()  # state is kept
