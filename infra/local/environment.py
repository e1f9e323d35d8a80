"""`airgate up|down|status|logs` for the local stack: start each component in order, health-check
it before anything depends on it, and on any failure stop everything, show the failing log's tail
with a hint, and keep the state folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rich.console import Console

from infra.airflow.kubernetes_plan import TRIGGER_PASSWORD_ENV
from infra.airflow.trigger_account import account_command
from infra.build.artifacts import write_build
from infra.config.loader import PROJECT_ROOT, LoadedStack
from infra.local import health
from infra.local.plan import (
    NODE,
    TRIGGER_PASSWORD_SECRET,
    Component,
    LocalPlan,
    Ports,
    free_ports,
    plan_local,
    secret_names,
    stack_ports,
)
from infra.local.processes import Supervisor
from infra.local.secrets import load_existing, load_or_create

DEFAULT_STATE_DIR = PROJECT_ROOT / ".state" / "local"
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"
GROUP_ORDER = ("identity", "upstreams", "airflow", "gateways")
ACCOUNT_MARKER = "airgate-trigger-account.sha256"
"""In the Airflow home: the digest of the command and password the trigger account was last set with."""
STARTUP_TIMEOUT = {"identity": 30.0, "upstreams": 15.0, "airflow": 120.0, "gateways": 60.0}
HINTS = {
    "oidc": "the OpenID provider runs on Node 22 from node_modules: run ./dev setup",
    "gateways": "the Workers run in workerd via Miniflare (node_modules): run ./dev setup",
    "airflow-api-server": "Airflow comes from the `airflow` extra: run ./dev setup",
}


class LocalStartError(RuntimeError):
    """A start that failed; everything started was stopped and the state folder kept."""

    def __init__(self, message: str, component: str | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.component = component
        self.log_tail = log_tail
        self.hint = HINTS.get(component or "", "")


@dataclass(frozen=True)
class Started:
    plan: LocalPlan
    seconds: float


def _ports_file(state_dir: Path) -> Path:
    return state_dir / "ports.json"


def _resolve_ports(loaded: LoadedStack, state_dir: Path, want_free: bool) -> Ports:
    saved = _ports_file(state_dir)
    if saved.exists():
        data = json.loads(saved.read_text())
        return Ports(data["oidc"], data["airflow"], data["upstreams"], data["gateways"])
    ports = free_ports(loaded.config) if want_free else stack_ports(loaded.config)
    state_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(ports.__dict__, indent=2, sort_keys=True))
    return ports


def prepare(loaded: LoadedStack, state_dir: Path, *, free: bool = False, create: bool = True) -> LocalPlan:
    """The local plan from the saved ports and secrets; `create` makes and saves what is missing,
    without it a missing one is an error and nothing is written."""
    from infra.local.connections import local_airflow_connections

    if not create and not _ports_file(state_dir).exists():
        raise FileNotFoundError(f"{_ports_file(state_dir)} is missing: run `airgate up`")
    ports = _resolve_ports(loaded, state_dir, free)
    names, path = secret_names(loaded.config), state_dir / "secrets.json"
    secrets = load_or_create(path, names) if create else load_existing(path, names)
    connections = local_airflow_connections(loaded, ports, secrets)
    return plan_local(loaded, state_dir, ports, secrets, connections)


def _write_files(plan: LocalPlan) -> None:
    (plan.state_dir / "oidc.json").write_text(json.dumps(plan.oidc_config, indent=2))
    (plan.state_dir / "gateways.json").write_text(json.dumps(plan.gateways_config, indent=2))
    for path in (plan.state_dir / "oidc.json", plan.state_dir / "gateways.json"):
        path.chmod(0o600)


def check_tools() -> None:
    if not NODE.exists():
        raise LocalStartError("Node 22 is missing from node_modules", "oidc")
    if not AIRFLOW_BIN.exists():
        raise LocalStartError("Airflow is not installed in .venv", "airflow-api-server")


def up(loaded: LoadedStack, state_dir: Path, console: Console, *, free: bool = False) -> Started:
    began = time.monotonic()
    check_tools()
    plan = prepare(loaded, state_dir, free=free)
    supervisor = Supervisor(state_dir)
    if supervisor.running() and _all_healthy(plan, supervisor):
        console.print("The local environment is already up.", markup=False)
        return Started(plan, time.monotonic() - began)

    if not supervisor.running():
        busy = _busy_ports(plan)
        if busy:
            raise LocalStartError(
                f"port(s) already in use: {', '.join(map(str, busy))}; "
                "stop what holds them or run `airgate up --free-ports`"
            )

    with console.status("building the gateway Workers"):
        write_build(plan.build_dir, loaded.name, loaded.config)
    console.print(f"  built {len(loaded.config.gateways)} gateway Workers", markup=False)
    _write_files(plan)

    airflow_env = next(c.env for c in plan.components if c.group == "airflow")
    home = Path(airflow_env["AIRFLOW_HOME"])
    # The local database is Airflow's default SQLite file in its home: a new one has no account yet.
    new_database = not (home / "airflow.db").exists()
    with console.status("preparing Airflow's metadata database"):
        migrate = subprocess.run(  # noqa: S603 - our venv's airflow
            [str(AIRFLOW_BIN), "db", "migrate"],
            env={**os.environ, **airflow_env},
            capture_output=True,
            text=True,
        )
    if migrate.returncode != 0:
        raise LocalStartError("airflow db migrate failed", "airflow-api-server", migrate.stdout[-3000:])
    _ensure_trigger_account(plan, airflow_env, console, new_database=new_database)

    supervisor.write_config(plan.components)
    supervisor.start_daemon()
    try:
        for group in GROUP_ORDER:
            members = [c for c in plan.components if c.group == group]
            with console.status(f"starting {group}"):
                _start_group(supervisor, plan, members, STARTUP_TIMEOUT[group])
            console.print(f"  {group} up ({', '.join(c.name for c in members)})", markup=False)
    except LocalStartError:
        supervisor.shutdown()
        raise
    return Started(plan, time.monotonic() - began)


def _ensure_trigger_account(
    plan: LocalPlan, airflow_env: dict[str, str], console: Console, *, new_database: bool
) -> None:
    """Makes the trigger gateway's Airflow account what the bootstrap Job makes it on Kubernetes, by
    the same command (infra/airflow/trigger_account.py). The password lives in the state folder and
    rarely changes, and the command starts Airflow once more (seconds): skipped while the marker says
    this database already has this account, with this password, made by this program."""
    username = plan.trigger_account
    password = plan.secrets[TRIGGER_PASSWORD_SECRET]
    command = account_command(username, TRIGGER_PASSWORD_ENV, python=sys.executable)
    marker = Path(airflow_env["AIRFLOW_HOME"]) / ACCOUNT_MARKER
    wanted = hashlib.sha256("\0".join([*command[1:], password]).encode()).hexdigest()
    if not new_database and marker.exists() and marker.read_text() == wanted:
        return
    with console.status("preparing the trigger gateway's Airflow account"):
        account = subprocess.run(  # noqa: S603 - our venv's python, our program
            command,
            env={**os.environ, **airflow_env, TRIGGER_PASSWORD_ENV: password},
            capture_output=True,
            text=True,
        )
    if account.returncode != 0:
        raise LocalStartError(
            f"creating the trigger gateway's Airflow account {username!r} failed",
            "airflow-api-server",
            (account.stdout + account.stderr)[-3000:],
        )
    marker.write_text(wanted)
    marker.chmod(0o600)


def _busy_ports(plan: LocalPlan) -> list[int]:
    ports = [
        plan.ports.oidc,
        plan.ports.airflow,
        *plan.ports.upstreams.values(),
        *plan.ports.gateways.values(),
    ]
    return [port for port in ports if not health.port_is_free(port)]


def _health_checks(plan: LocalPlan, component: Component) -> list[tuple[str, Callable[[], bool]]]:
    """(what is checked, the check) for one component."""
    if component.name == "gateways":
        urls = [plan.gateway_url(name) + "/" for name in plan.ports.gateways]
        return [(f"at {url}", partial(health.answers, url)) for url in urls]
    url, key = component.health_url, component.health_key
    if url is None:
        return []
    if key is not None:
        return [(f"in Airflow's health report ({url}: {key})", partial(health.reports_healthy, url, key))]
    return [(f"at {url}", partial(health.answers, url))]


def _all_healthy(plan: LocalPlan, supervisor: Supervisor) -> bool:
    states = {p["name"]: p["statename"] for p in supervisor.info()}
    if any(states.get(c.name) != "RUNNING" for c in plan.components):
        return False
    return all(check() for c in plan.components for _, check in _health_checks(plan, c))


def _start_group(supervisor: Supervisor, plan: LocalPlan, members: list[Component], timeout: float) -> None:
    import xmlrpc.client

    for component in members:
        try:
            supervisor.start(component.name)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" in fault.faultString:
                continue
            raise LocalStartError(
                f"{component.name} failed to start ({fault.faultString})",
                component.name,
                supervisor.tail(component.name),
            ) from None
    for component in members:

        def alive(name: str = component.name) -> bool:
            return any(p["name"] == name and p["statename"] == "RUNNING" for p in supervisor.info())

        for where, check in _health_checks(plan, component):
            if not health.wait_until(check, timeout, alive):
                raise LocalStartError(
                    f"{component.name} did not become healthy {where} within {timeout:.0f}s",
                    component.name,
                    supervisor.tail(component.name),
                )


def down(state_dir: Path) -> bool:
    supervisor = Supervisor(state_dir)
    was_running = supervisor.running()
    supervisor.shutdown()
    return was_running


def status(state_dir: Path) -> list[dict[str, str]]:
    supervisor = Supervisor(state_dir)
    return [
        {"name": p["name"], "state": p["statename"], "pid": str(p["pid"] or ""), "uptime": p["description"]}
        for p in supervisor.info()
    ]
