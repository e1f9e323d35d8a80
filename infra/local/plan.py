"""Decides the local environment from the `local` stack: ports, processes, their environment,
health checks and start order. Pure: `airgate up` turns this plan into running processes.

Ports default to the ones the stack names (issuer, upstream URLs) so URLs stay stable for a user;
tests ask for free ports instead. The Workers are the same bundles a deploy would upload; only
their targets (issuer, upstreams) and secrets differ, laid over the built wrangler.json.
"""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from infra.airflow.kubernetes_plan import FAB_AUTH_MANAGER
from infra.airflow.sign_in import CALLBACK_PATH, CLIENT_SECRET_ENV, SIGN_IN_SETTINGS_ENV, plan_sign_in
from infra.airflow.trigger_account import trigger_account_name
from infra.build.bindings import AIRFLOW_PASSWORD_BINDING, identity_document, upstream_document
from infra.config.loader import PROJECT_ROOT, LoadedStack
from infra.config.model import StackConfig

NODE = PROJECT_ROOT / "node_modules" / ".bin" / "node"
LOCAL_DIR = PROJECT_ROOT / "local_services"
DAGS_DIR = PROJECT_ROOT / "dags"
GATEWAY_BASE_PORT = 9601
TRIGGER_PASSWORD_SECRET = "airflow-trigger-password"  # noqa: S105 - the name of a generated secret
"""The local password of the trigger gateway's Airflow account (infra/airflow/trigger_account.py: the
same account, role and program as on Kubernetes). People sign in through the provider; no one else
has an Airflow password."""
AIRFLOW_UI_CLIENT_ID = "airgate-local-airflow-ui"
"""The OAuth client Airflow's UI signs people in with (authorization code + PKCE, with a secret)."""
AIRFLOW_WEBSERVER_CONFIG = Path(__file__).resolve().parent / "airflow_webserver_config.py"
HUMAN_CLIENT_ID = "airgate-local-human"
HUMAN_REDIRECT_URI = "http://127.0.0.1/airgate-callback"
"""Never served: the sign-in helper reads the code from the redirect itself."""
LOCAL_ADMIN_SECRET = "local-kv-admin-token"  # noqa: S105 - the name of a generated secret
"""Bearer token of the gateways' loopback KV endpoint (the local writer of `control`)."""
CONTROL_TTL_SECONDS = "1"
"""Locally a revocation or kill switch is enforced within a second (at the edge: KV propagation
plus the Worker's default 10 s)."""
OTHER_AUDIENCE = "http://elsewhere.localhost"
"""A second audience the local provider issues tokens for, so a wrong-audience token is real."""


@dataclass(frozen=True)
class Ports:
    oidc: int
    airflow: int
    upstreams: dict[str, int]
    """proxy gateway name → its sample upstream's port"""
    gateways: dict[str, int]


@dataclass(frozen=True)
class Component:
    name: str
    description: str
    command: tuple[str, ...]
    health_url: str | None
    env: dict[str, str] = field(default_factory=dict)
    group: str = ""
    """Components of one group start together and are health-checked together."""
    health_key: str | None = None
    """This component's entry in Airflow's health document at `health_url`, which must report it
    healthy (its heartbeat); without one, `health_url` answering at all is enough."""


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def stack_ports(stack: StackConfig) -> Ports:
    gateways = sorted(stack.gateways)
    trigger = [g for g in gateways if stack.gateways[g].kind == "dag_trigger"]
    airflow = _port(stack.gateways[trigger[0]].upstream.url) if trigger else 9480
    return Ports(
        oidc=_port(stack.identity.oidc.issuer),
        airflow=airflow,
        upstreams={
            g: _port(stack.gateways[g].upstream.url) for g in gateways if stack.gateways[g].kind == "proxy"
        },
        gateways={g: GATEWAY_BASE_PORT + index for index, g in enumerate(gateways)},
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports(stack: StackConfig) -> Ports:
    base = stack_ports(stack)
    return Ports(
        oidc=free_port(),
        airflow=free_port(),
        upstreams={name: free_port() for name in base.upstreams},
        gateways={name: free_port() for name in base.gateways},
    )


def machine_clients(stack: StackConfig) -> list[str]:
    return sorted({client for role in stack.roles.values() for client in role.oidc_clients})


def test_users(stack: StackConfig) -> list[dict[str, object]]:
    """One human test user per role that admits IdP groups: `<role>-person`, in that role's groups."""
    return [
        {
            "account_id": f"{name}-person",
            "email": f"{name}-person@{stack.zone}",
            "groups": sorted(role.groups),
        }
        for name, role in sorted(stack.roles.items())
        if role.groups
    ]


def secret_names(stack: StackConfig) -> list[str]:
    names = [f"oidc-client-{client}" for client in machine_clients(stack)]
    names += sorted(
        {
            gateway.upstream.credential.secret
            for gateway in stack.gateways.values()
            if gateway.upstream.credential is not None
        }
    )
    return [*names, TRIGGER_PASSWORD_SECRET, "airflow-ui-client-secret", LOCAL_ADMIN_SECRET]


@dataclass(frozen=True)
class LocalPlan:
    state_dir: Path
    build_dir: Path
    ports: Ports
    issuer: str
    audience: str
    components: tuple[Component, ...]
    oidc_config: dict[str, object]
    gateways_config: dict[str, object]
    secrets: dict[str, str]
    """The generated local secrets (from state/secrets.json); never printed."""
    trigger_account: str
    """The Airflow account the trigger gateway signs in as (the stack's `airflow.trigger_api_user`)."""

    def gateway_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports.gateways[name]}"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.airflow}"


def airflow_env(state_dir: Path, ports: Ports) -> dict[str, str]:
    home = state_dir / "airflow"
    api = f"http://127.0.0.1:{ports.airflow}"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # LocalExecutor forks `parallelism` workers up front (~130 MiB each): 4 is plenty here.
        "AIRFLOW__CORE__PARALLELISM": "4",
        # As on Kubernetes: FAB's auth manager, people through the OpenID provider (airflow_sign_in_env).
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__FAB__CONFIG_FILE": str(AIRFLOW_WEBSERVER_CONFIG),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(ports.airflow),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "PYTHONPATH": str(PROJECT_ROOT),
        "NO_PROXY": "127.0.0.1,localhost",
    }


def airflow_sign_in_env(stack: StackConfig, issuer: str, client_secret: str) -> dict[str, str]:
    """The same sign-in as on Kubernetes (infra/airflow/sign_in.py), against the local provider."""
    plan = plan_sign_in(stack, client_id=AIRFLOW_UI_CLIENT_ID, issuer=issuer, scope="openid email groups")
    return {
        SIGN_IN_SETTINGS_ENV: json.dumps(plan.settings(), sort_keys=True),
        CLIENT_SECRET_ENV: client_secret,
    }


def plan_local(
    loaded: LoadedStack,
    state_dir: Path,
    ports: Ports,
    secrets: dict[str, str],
    airflow_connections: dict[str, str],
) -> LocalPlan:
    """`airflow_connections` maps AIRFLOW_CONN_<ID> → connection JSON (from the same builder as
    the Kubernetes Secrets)."""
    stack = loaded.config
    issuer = f"http://127.0.0.1:{ports.oidc}"
    audience = stack.identity.oidc.audience
    build_dir = state_dir / "build"
    python = sys.executable
    components: list[Component] = [
        Component(
            "oidc",
            "OpenID provider (npm oidc-provider)",
            (str(NODE), str(LOCAL_DIR / "oidc_provider.mjs"), str(state_dir / "oidc.json")),
            f"{issuer}/.well-known/openid-configuration",
            group="identity",
        )
    ]
    for name, port in sorted(ports.upstreams.items()):
        components.append(
            Component(
                f"upstream-{name}",
                f"sample upstream for {name} (echoes requests)",
                (python, str(LOCAL_DIR / "echo_upstream.py"), "--port", str(port), "--name", name),
                f"http://127.0.0.1:{port}/",
                group="upstreams",
            )
        )
    env = {
        **airflow_env(state_dir, ports),
        **airflow_sign_in_env(stack, issuer, secrets["airflow-ui-client-secret"]),
        **airflow_connections,
    }
    airflow_bin = str(Path(python).parent / "airflow")  # the venv's console script
    airflow_health = f"http://127.0.0.1:{ports.airflow}/api/v2/monitor/health"
    # Every component the chart runs on Kubernetes, so Airflow's health document (and the home
    # page's badges) reports each one: the triggerer too, where deferred tasks resume.
    # --skip-serve-logs: their log servers would listen on every interface at fixed ports (8793,
    # 8794), clashing between environments; the API server reads the log files from disk here.
    for role, args, key in (
        ("api-server", ("api-server", "--port", str(ports.airflow)), None),
        ("scheduler", ("scheduler", "--skip-serve-logs"), "scheduler"),
        ("dag-processor", ("dag-processor",), "dag_processor"),
        ("triggerer", ("triggerer", "--skip-serve-logs"), "triggerer"),
    ):
        components.append(
            Component(
                f"airflow-{role}",
                f"Airflow {role}",
                (airflow_bin, *args),
                airflow_health,
                env,
                "airflow",
                health_key=key,
            )
        )
    components.append(
        Component(
            "gateways",
            "gateway Workers in workerd (Miniflare)",
            (str(NODE), str(LOCAL_DIR / "gateways.mjs"), str(state_dir / "gateways.json")),
            None,
            {"WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_CF_FETCH_ENABLED": "false"},
            group="gateways",
        )
    )

    clients = [
        {
            "client_id": client,
            "client_secret": secrets[f"oidc-client-{client}"],
            "groups": [],
        }
        for client in machine_clients(stack)
    ]
    oidc_config: dict[str, object] = {
        "issuer": issuer,
        "port": ports.oidc,
        "keys_file": str(state_dir / "oidc-keys.json"),
        "audiences": [audience, OTHER_AUDIENCE],
        "clients": clients,
        "users": test_users(stack),
        "human_client": {"client_id": HUMAN_CLIENT_ID, "redirect_uri": HUMAN_REDIRECT_URI},
        "airflow_ui_client": {
            "client_id": AIRFLOW_UI_CLIENT_ID,
            "client_secret": secrets["airflow-ui-client-secret"],
            "redirect_uri": f"http://127.0.0.1:{ports.airflow}{CALLBACK_PATH}",
        },
        "token_ttl_seconds": 600,
    }
    trigger_account = trigger_account_name(stack)
    gateways: list[dict[str, object]] = []
    for name in sorted(stack.gateways):
        gateway = stack.gateways[name]
        upstream_port = ports.upstreams.get(name, ports.airflow)
        gateway_secrets: dict[str, str] = {}
        variables: dict[str, object] = {}
        if gateway.upstream.credential is not None:
            gateway_secrets["UPSTREAM_CREDENTIAL"] = secrets[gateway.upstream.credential.secret]
        if gateway.kind == "dag_trigger":
            variables["AIRFLOW_USERNAME"] = trigger_account
            gateway_secrets[AIRFLOW_PASSWORD_BINDING] = secrets[TRIGGER_PASSWORD_SECRET]
        gateways.append(
            {
                "name": name,
                "dir": str(build_dir / name),
                "port": ports.gateways[name],
                "vars": {
                    **variables,
                    "CONTROL_TTL_SECONDS": CONTROL_TTL_SECONDS,
                    "IDENTITY": {**identity_document(stack, name), "issuer": issuer, "jwks_url": None},
                    "UPSTREAM": {
                        **upstream_document(stack, name),
                        "url": f"http://127.0.0.1:{upstream_port}",
                    },
                },
                "secrets": gateway_secrets,
            }
        )
    gateways_config: dict[str, object] = {
        "persist_dir": str(state_dir / "workers"),
        "admin": {"token": secrets[LOCAL_ADMIN_SECRET]},
        "gateways": gateways,
    }
    return LocalPlan(
        state_dir=state_dir,
        build_dir=build_dir,
        ports=ports,
        issuer=issuer,
        audience=audience,
        components=tuple(components),
        oidc_config=oidc_config,
        gateways_config=gateways_config,
        secrets=secrets,
        trigger_account=trigger_account,
    )
