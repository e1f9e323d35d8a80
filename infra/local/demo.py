"""The first thing a newcomer sees: trigger the sample DAG through the DAG-trigger gateway, wait for
it, and collect the decision lines of that run (allowed and denied), correlated by trace id."""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.plan import LocalPlan

SAMPLE_DAG = "refresh_dashboards"
SAMPLE_CLIENT = "ai-agent"
SAMPLE_CONF = {"dashboard": "revenue"}
UNGRANTED_DAG = "rebuild_warehouse"
"""A DAG the sample client holds no grant for: the demo shows its refusal in the same trace."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: Any


def http(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    form: dict[str, str] | None = None,
) -> HttpAnswer:
    data = None
    all_headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        all_headers["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        all_headers["content-type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            raw = response.read()
            status, answer_headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, answer_headers = error.read(), error.code, dict(error.headers)
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return HttpAnswer(status, {k.lower(): v for k, v in answer_headers.items()}, parsed)


def client_token(plan: LocalPlan, client_id: str, secret: str, audience: str | None = None) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    answer = http(
        "POST",
        f"{plan.issuer}/token",
        headers={"authorization": f"Basic {basic}"},
        form={"grant_type": "client_credentials", "resource": audience or plan.audience, "scope": "gateway"},
    )
    if answer.status != 200:
        raise RuntimeError(f"the local OpenID provider refused {client_id}: {answer.body}")
    return str(answer.body["access_token"])


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@dataclass(frozen=True)
class DemoRun:
    dag_id: str
    run_id: str
    state: str
    trigger_trace: str
    seconds: float


def trigger_and_wait(plan: LocalPlan, token: str, trigger_gateway: str, timeout: float = 180) -> DemoRun:
    began = time.monotonic()
    traceparent = new_traceparent()
    url = plan.gateway_url(trigger_gateway)
    answer = http(
        "POST",
        f"{url}/dags/{SAMPLE_DAG}/runs",
        headers={
            "authorization": f"Bearer {token}",
            "traceparent": traceparent,
            "idempotency-key": secrets.token_hex(8),
        },
        body={"conf": SAMPLE_CONF},
    )
    if answer.status not in (200, 201):
        raise RuntimeError(
            f"triggering {SAMPLE_DAG} through the gateway answered {answer.status}: {answer.body}"
        )
    run_id = str(answer.body["dag_run_id"])
    state = "queued"
    quoted = urllib.parse.quote(run_id, safe="")
    delay = 0.5
    while time.monotonic() - began < timeout:
        status = http(
            "GET", f"{url}/dags/{SAMPLE_DAG}/runs/{quoted}", headers={"authorization": f"Bearer {token}"}
        )
        if status.status == 200:
            state = str(status.body.get("state"))
            if state in ("success", "failed"):
                break
        time.sleep(delay)  # polling a remote run's state; nothing to subscribe to
        delay = min(delay * 1.5, 3)
    return DemoRun(SAMPLE_DAG, run_id, state, traceparent.split("-")[1], time.monotonic() - began)


def denied_attempt(plan: LocalPlan, token: str, trigger_gateway: str, run: DemoRun) -> HttpAnswer:
    return http(
        "POST",
        f"{plan.gateway_url(trigger_gateway)}/dags/{UNGRANTED_DAG}/runs",
        headers={
            "authorization": f"Bearer {token}",
            "traceparent": f"00-{run.trigger_trace}-{secrets.token_hex(8)}-01",
        },
        body={"conf": {}},
    )


def wait_for_line(log_file: Path, request_id: str, timeout: float = 10) -> bool:
    """workerd's stdout reaches the log file a moment after the response: wait for that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(record.get("request_id") == request_id for record in decision_lines(log_file)):
            return True
        time.sleep(0.1)
    return False


def decision_lines(log_file: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    if not log_file.exists():
        return lines
    for raw in log_file.read_text(errors="replace").splitlines():
        start = raw.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(raw[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and "decision" in record and "gateway" in record:
            lines.append(record)
    return lines


def trace_id(record: dict[str, Any]) -> str:
    parts = str(record.get("traceparent") or "").split("-")
    return parts[1] if len(parts) == 4 else ""


def run_trace_ids(run: DemoRun) -> set[str]:
    """The trigger request's trace and the one every task of the run sends (dags/airgate_http.py)."""
    from dags.airgate_http import traceparent

    task_trace = traceparent(run.dag_id, run.run_id, "any-task").split("-")[1]
    return {run.trigger_trace, task_trace} - {""}
