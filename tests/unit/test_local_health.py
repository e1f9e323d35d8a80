"""The local Airflow runs every component Airflow's health report names, and `airgate up` waits until
the report says each one is healthy: nobody's first page shows a red badge."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from infra.config.loader import load_stack
from infra.local.health import reports_healthy
from infra.local.plan import free_port, plan_local, secret_names, stack_ports
from infra.local.secrets import load_or_create

# What Airflow 3.3 answered right after `airgate up` before the triggerer ran locally.
WITHOUT_TRIGGERER = {
    "metadatabase": {"status": "healthy"},
    "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "2026-12-05T07:19:26+00:00"},
    "triggerer": {"status": None, "latest_triggerer_heartbeat": None},
    "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": "2026-12-05T07:19:30+00:00"},
}


class _Report:
    document: Any = WITHOUT_TRIGGERER
    status = 200


@pytest.fixture
def airflow_health() -> Iterator[tuple[str, type[_Report]]]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(_Report.document).encode()
            self.send_response(_Report.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v2/monitor/health", _Report
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        _Report.document, _Report.status = WITHOUT_TRIGGERER, 200


def test_a_component_counts_as_healthy_only_when_airflow_reports_it(
    airflow_health: tuple[str, type[_Report]],
) -> None:
    url, report = airflow_health
    assert reports_healthy(url, "scheduler")
    assert not reports_healthy(url, "triggerer")  # never heartbeat: the red badge
    report.document = {**WITHOUT_TRIGGERER, "triggerer": {"status": "unhealthy"}}
    assert not reports_healthy(url, "triggerer")
    report.document = {**WITHOUT_TRIGGERER, "triggerer": {"status": "healthy"}}
    assert reports_healthy(url, "triggerer")
    report.document, report.status = "starting", 503
    assert not reports_healthy(url, "scheduler")
    assert not reports_healthy(f"http://127.0.0.1:{free_port()}/api/v2/monitor/health", "scheduler")


def test_the_local_airflow_runs_and_waits_for_every_component_in_airflows_health_report(
    tmp_path: Path,
) -> None:
    from airflow.api_fastapi.core_api.datamodels.monitor import HealthInfoResponse

    loaded = load_stack("local")
    secrets = load_or_create(tmp_path / "secrets.json", secret_names(loaded.config))
    plan = plan_local(loaded, tmp_path, stack_ports(loaded.config), secrets, {})
    airflow = [c for c in plan.components if c.group == "airflow"]
    waited_for = {c.health_key for c in airflow if c.health_key is not None}
    # The metadata database is the SQLite file `airgate up` migrates before anything starts.
    assert waited_for == set(HealthInfoResponse.model_fields) - {"metadatabase"}
    assert all(c.health_url == f"{plan.airflow_url}/api/v2/monitor/health" for c in airflow)
    commands = {c.command[1] for c in airflow}
    assert commands == {"api-server", "scheduler", "dag-processor", "triggerer"}
