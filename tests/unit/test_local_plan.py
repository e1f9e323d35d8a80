"""The local environment's plan: stable ports from the stack, local targets laid over the built
bindings, and secrets kept out of supervisord's config and out of the Workers' plain vars."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from infra.config.loader import load_stack
from infra.local.plan import free_ports, plan_local, secret_names, stack_ports
from infra.local.processes import Supervisor
from infra.local.secrets import load_existing, load_or_create


def test_ports_follow_the_stack_by_default() -> None:
    ports = stack_ports(load_stack("local").config)
    assert ports.oidc == 9400
    assert ports.airflow == 9480
    assert ports.upstreams == {"ingest": 9501, "warehouse": 9502}
    assert ports.gateways == {"ingest": 9601, "trigger": 9602, "warehouse": 9603}


def test_free_ports_are_distinct() -> None:
    ports = free_ports(load_stack("local").config)
    every = [ports.oidc, ports.airflow, *ports.upstreams.values(), *ports.gateways.values()]
    assert len(set(every)) == len(every)


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    names = secret_names(load_stack("local").config)
    first = load_or_create(tmp_path / "secrets.json", names)
    again = load_or_create(tmp_path / "secrets.json", names)
    assert first == again
    assert len(set(first.values())) == len(names)
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_a_reader_gets_the_saved_secrets_and_creates_none(tmp_path: Path) -> None:
    names = secret_names(load_stack("local").config)
    with pytest.raises(RuntimeError, match="airgate up"):
        load_existing(tmp_path / "secrets.json", names)
    assert not (tmp_path / "secrets.json").exists()
    saved = load_or_create(tmp_path / "secrets.json", names[:-1])
    with pytest.raises(RuntimeError, match=names[-1]):
        load_existing(tmp_path / "secrets.json", names)
    assert json.loads((tmp_path / "secrets.json").read_text()) == saved
    assert load_existing(tmp_path / "secrets.json", names[:-1]) == saved


def test_gateways_get_local_targets_and_no_secret_in_plain_vars(tmp_path: Path) -> None:
    loaded = load_stack("local")
    ports = stack_ports(loaded.config)
    secrets = load_or_create(tmp_path / "secrets.json", secret_names(loaded.config))
    plan = plan_local(loaded, tmp_path, ports, secrets, {})
    gateways = {g["name"]: g for g in plan.gateways_config["gateways"]}  # type: ignore[union-attr]
    ingest = gateways["ingest"]
    assert ingest["vars"]["IDENTITY"]["issuer"] == "http://127.0.0.1:9400"
    assert ingest["vars"]["IDENTITY"]["mode"] == "oidc"
    assert ingest["vars"]["UPSTREAM"]["url"] == "http://127.0.0.1:9501"
    assert gateways["trigger"]["vars"]["UPSTREAM"]["url"] == "http://127.0.0.1:9480"
    assert set(ingest["secrets"]) == {"UPSTREAM_CREDENTIAL"}
    plain = json.dumps([g["vars"] for g in gateways.values()])
    assert not any(value in plain for value in secrets.values())


def test_supervisor_config_holds_no_secret(tmp_path: Path) -> None:
    loaded = load_stack("local")
    secrets = load_or_create(tmp_path / "secrets.json", secret_names(loaded.config))
    plan = plan_local(
        loaded, tmp_path, stack_ports(loaded.config), secrets, {"AIRFLOW_CONN_X": json.dumps(secrets)}
    )
    supervisor = Supervisor(tmp_path)
    supervisor.write_config(plan.components)
    config = supervisor.conf.read_text()
    assert not any(value in config for value in secrets.values())
    assert "[program:gateways]" in config and "killasgroup=true" in config
    env_file = tmp_path / "env" / "airflow-scheduler.json"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert json.loads(env_file.read_text())["AIRFLOW_CONN_X"]
