"""`airgate can-i` takes a request as people paste it: a URL printed by `./dev up`
(http://127.0.0.1:<port>/..., placed through the ports `airgate up` saved), a bare path (the one
gateway with a route for it), and deployed URLs as before."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.cli.main import app
from infra.config.loader import load_stack
from infra.policy.can_i import Asker, AskError, LocalPorts, ask

LOCAL = load_stack("local").config
PROD = load_stack("prod").config
PORTS = {
    "oidc": 41400,
    "airflow": 41480,
    "upstreams": {"ingest": 41501, "warehouse": 41502},
    "gateways": {"ingest": 41601, "trigger": 41602, "warehouse": 41603},
}
runner = CliRunner()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / "ports.json").write_text(json.dumps(PORTS))
    return state


def can_i(*args: str) -> tuple[int, Any, str]:
    result = runner.invoke(app, ["can-i", *args])
    try:
        return result.exit_code, json.loads(result.stdout), result.stderr
    except ValueError:
        return result.exit_code, None, result.stderr


def test_a_local_url_is_answered_for_the_gateway_on_that_port(state_dir: Path) -> None:
    code, answer, _ = can_i(
        "-s", "local", "--as", "analyst", "--state-dir", str(state_dir), "--json",
        "GET", "http://127.0.0.1:41603/v1/tables/revenue?limit=5",
    )  # fmt: skip
    assert code == 0
    assert (answer["gateway"], answer["route"], answer["path"]) == (
        "warehouse",
        "tables",
        "/v1/tables/revenue",
    )
    by_host = ask(
        LOCAL, Asker("role", "analyst"), "GET", "https://warehouse.airgate.localhost/v1/tables/revenue"
    )
    assert answer == by_host
    code, answer, _ = can_i(
        "-s", "local", "--as", "analyst", "--state-dir", str(state_dir), "--json",
        "POST", "http://localhost:41601/v1/events",
    )  # fmt: skip
    assert (code, answer["gateway"], answer["decision"]) == (1, "ingest", "role_not_allowed")


def test_a_local_url_on_another_component_names_it_and_the_gateways(state_dir: Path) -> None:
    code, _, stderr = can_i(
        "-s", "local", "--as", "analyst", "--state-dir", str(state_dir), "GET", "http://127.0.0.1:41480/api/v2/dags"
    )  # fmt: skip
    assert code == 2
    assert "port 41480 is the local Airflow, not a gateway" in stderr
    assert "warehouse (http://127.0.0.1:41603)" in stderr
    code, _, stderr = can_i(
        "-s", "local", "--as", "analyst", "--state-dir", str(state_dir), "GET", "http://127.0.0.1:1/v1/query"
    )  # fmt: skip
    assert code == 2 and "no local gateway listens on 'http://127.0.0.1:1/v1/query'" in stderr


def test_a_local_url_without_a_local_environment_says_to_start_it(tmp_path: Path) -> None:
    code, _, stderr = can_i(
        "-s", "local", "--as", "analyst", "--state-dir", str(tmp_path / "none"), "GET", "http://127.0.0.1:9603/v1/query"
    )  # fmt: skip
    assert code == 2
    assert "run `airgate up`" in stderr and "--gateway" in stderr
    assert not (tmp_path / "none").exists()


def test_a_broken_ports_file_is_named_not_guessed_around(state_dir: Path) -> None:
    (state_dir / "ports.json").write_text('{"gateways": ')
    code, _, stderr = can_i(
        "-s", "local", "--as", "analyst", "--state-dir", str(state_dir), "GET", "http://127.0.0.1:41603/v1/query"
    )  # fmt: skip
    assert code == 2 and "ports.json: not the ports `airgate up` writes" in stderr
    assert (state_dir / "ports.json").read_text() == '{"gateways": '


def test_a_local_url_asked_of_a_deployed_stack_points_to_its_hostname() -> None:
    local = LocalPorts({41603: "warehouse"}, {})
    with pytest.raises(
        AskError, match=r"local environment's gateway 'warehouse'.*https://warehouse.acme-data.com/"
    ):
        ask(PROD, Asker("role", "analyst"), "GET", "http://127.0.0.1:41603/v1/tables/x", local=local)


def test_a_bare_path_goes_to_the_one_gateway_with_a_route_for_it() -> None:
    for path, gateway in (
        ("/v1/tables/revenue", "warehouse"),
        ("/v1/batches/b-1/rows", "ingest"),
        ("/dags/refresh_dashboards/runs", "trigger"),
    ):
        answer = ask(PROD, Asker("role", "data-engineer"), "GET", path)
        assert answer["gateway"] == gateway
        assert answer == ask(PROD, Asker("role", "data-engineer"), "GET", path, gateway=gateway)
    with pytest.raises(
        AskError, match=r"no gateway has a route for '/v2/nothing'.*warehouse \(warehouse.acme"
    ):
        ask(PROD, Asker("role", "analyst"), "GET", "/v2/nothing")
    with pytest.raises(AskError, match="names no host"):
        ask(PROD, Asker("role", "analyst"), "GET", "v1/tables/x")


def test_a_path_several_gateways_serve_lists_them(write_stack: Callable[..., Path], stacks_dir: Path) -> None:
    def overlap(shared: dict[str, Any]) -> None:
        shared["gateways"]["warehouse"]["routes"]["health"] = {
            "path": "/v1/health",
            "methods": ["GET"],
            "roles": ["platform-admin"],
        }

    write_stack("overlap", like="prod", shared=overlap)
    stack = load_stack("overlap", stacks_dir).config
    with pytest.raises(AskError) as refused:
        ask(stack, Asker("role", "platform-admin"), "GET", "/v1/health")
    assert str(refused.value) == (
        "'/v1/health' is served by several gateways: ingest (ingest.acme-data.com), "
        "warehouse (warehouse.acme-data.com); give a full URL or --gateway NAME"
    )
    assert ask(stack, Asker("role", "platform-admin"), "GET", "/v1/health", gateway="warehouse")["allowed"]


def test_deployed_hostnames_answer_as_before() -> None:
    code, answer, _ = can_i(
        "-s", "prod", "--as", "analyst", "--json", "GET", "https://warehouse.acme-data.com/v1/tables/revenue"
    )  # fmt: skip
    assert (code, answer["gateway"], answer["route"]) == (0, "warehouse", "tables")
