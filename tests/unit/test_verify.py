"""`airgate verify` against gateways that answer the decision endpoint's contract (standins.py):
a faithful edge verifies, a broken one (a role switched off, another policy version, a gateway
that answers strangers) fails with the rows that differ, and the CLI exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from infra.config.loader import PROJECT_ROOT, load_stack
from infra.policy.compiler import compile_stack
from infra.verify.probes import machine_identities, plan_probes, uncoverable
from infra.verify.run import Report, run_probes
from tests.unit.standins import decision_handler, serve

DEV = load_stack("dev").config
POLICIES = compile_stack(DEV)
IDENTITIES = machine_identities(DEV)
AIRGATE = Path(sys.executable).parent / "airgate"
PYTHON = Path(sys.executable).parent / "python"


def run_against(broken: dict[str, dict[str, str]]) -> Report:
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(serve(decision_handler(DEV, name, broken.get(name, {}))))
            for name in sorted(DEV.gateways)
        }
        return run_probes(
            plan_probes(DEV, POLICIES, IDENTITIES),
            urls,
            {i: {"authorization": f"Bearer tok-{i}"} for i in IDENTITIES},
            {name: p.version for name, p in POLICIES.items()},
            uncoverable(DEV, POLICIES),
        )


def test_the_matrix_becomes_probes_for_every_identity_route_and_method() -> None:
    probes = plan_probes(DEV, POLICIES, IDENTITIES)
    routes = sum(len(p.document["routes"]) for p in POLICIES.values())
    assert IDENTITIES == ["ai-agent", "airflow-worker", "ci"]
    assert len(probes) == routes * (1 + 3 * 7)
    assert {p.expected for p in probes} >= {
        "allow",
        "method_not_allowed",
        "role_not_allowed",
        "unauthenticated",
    }
    granted = [
        p for p in probes if p.identity == "ai-agent" and p.route == "trigger-run" and p.method == "POST"
    ]
    assert [(p.path, p.expected) for p in granted] == [("/dags/refresh_dashboards/runs", "allow")]
    not_granted = [
        p for p in probes if p.identity == "ci" and p.route == "trigger-run" and p.method == "POST"
    ]
    assert not_granted[0].path == "/dags/gateway_smoke_test/runs"
    people_only = {(row.role, row.gateway, row.route) for row in uncoverable(DEV, POLICIES)}
    assert ("analyst", "warehouse", "query") in people_only
    assert all(row[0] in ("analyst", "data-engineer", "platform-admin") for row in people_only)


def test_a_faithful_edge_verifies() -> None:
    report = run_against({})
    assert report.passed, [o for o in report.mismatched][:3]
    assert len(report.verified) == len(plan_probes(DEV, POLICIES, IDENTITIES))
    assert report.versions == {name: {p.version} for name, p in POLICIES.items()}


def test_a_role_switched_off_at_one_gateway_is_a_mismatch() -> None:
    report = run_against({"warehouse": {"disable_role": "ai-agent"}})
    assert not report.passed
    wrong = {(o.probe.identity, o.probe.gateway, o.probe.route, o.probe.method) for o in report.mismatched}
    # Exactly what ai-agent may do at the warehouse (query POST, tables GET; HEAD is not granted).
    assert wrong == {("ai-agent", "warehouse", "query", "POST"), ("ai-agent", "warehouse", "tables", "GET")}
    assert all(o.got == "role_not_allowed" for o in report.mismatched)


def test_another_policy_version_fails_even_when_every_decision_agrees() -> None:
    report = run_against({"ingest": {"version": "0123456789abcdef"}})
    assert not report.mismatched
    assert not report.passed
    assert report.version_problems == [
        f"gateway ingest runs policy 0123456789abcdef, expected {POLICIES['ingest'].version}"
    ]


def test_a_gateway_that_answers_strangers_fails_the_unauthenticated_probes() -> None:
    report = run_against({"trigger": {"open": "yes"}})
    wrong = report.mismatched
    assert wrong and all(o.probe.identity is None and o.probe.gateway == "trigger" for o in wrong)


def test_an_access_login_redirect_refuses_the_unauthenticated_but_a_redirect_elsewhere_does_not() -> None:
    login = "https://acme-dev.cloudflareaccess.com/cdn-cgi/access/login/x"
    assert run_against({"ingest": {"access_login": login}}).passed
    wrong = run_against({"ingest": {"access_login": "https://evil.example/login"}}).mismatched
    assert wrong and all(o.probe.identity is None and o.probe.gateway == "ingest" for o in wrong)


def verify_cli(tmp_path: Path, urls: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({i: {"authorization": f"Bearer tok-{i}"} for i in IDENTITIES}))
    args = [f"--url={name}={url}" for name, url in urls.items()]
    return subprocess.run(
        [
            str(PYTHON),
            "-X",
            "importtime",
            "-m",
            "infra.cli.main",
            "verify",
            "-s",
            "dev",
            "--credentials",
            str(credentials),
            *args,
            *extra,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=120,
    )


def test_verify_command_exit_codes_and_summary(tmp_path: Path) -> None:
    for broken, code in (({}, 0), ({"disable_role": "ci"}, 1)):
        with ExitStack() as stack:
            urls = {
                name: stack.enter_context(serve(decision_handler(DEV, name, broken))) for name in DEV.gateways
            }
            result = verify_cli(tmp_path, urls)
            as_json: Any = json.loads(verify_cli(tmp_path, urls, "--json").stdout)
        assert result.returncode == code, result.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        assert "infra.verify.run" in imported and not any(m.startswith("pulumi") for m in imported)
        first = result.stdout.splitlines()[0]
        assert first.startswith("verify dev: ") and " not coverable (human-only roles)" in first
        assert as_json["passed"] is (code == 0)
        if code:
            assert (
                "MISMATCH ci ingest GET /v1/health: expected allow via health, got role_not_allowed"
                in result.stdout
            )
            assert {row["identity"] for row in as_json["mismatched"]} == {"ci"}


def test_verify_without_credentials_for_a_deployed_stack_says_what_to_give() -> None:
    result = subprocess.run(
        [str(AIRGATE), "verify", "-s", "dev"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--credentials" in result.stderr
