"""The Airflow part of a stack for the chart tier: infra/airflow/program.py's `deploy_cluster` on the
stack's own plan, deployed by the real `pulumi` into the tier's API server.

What the Cloudflare side would hand over (connection documents, the tunnel's token, the trigger
user's password) comes from this stack's `chart-tier:*` secrets, which the tier sets with values
it generates; the chart is `AIRGATE_AIRFLOW_CHART`, checked against its pinned sha256.

The cluster has no nodes and no controllers, so one transform (tests/engine/no_controllers.py, the
engine tier's too) uses the provider's documented switches for that: `pulumi.com/skipAwait: "true"`
(nothing will ever become ready) and `pulumi.com/deletionPropagationPolicy: background` (a foreground
deletion waits for the garbage collector, a controller, and so would never end).
"""

from __future__ import annotations

import json
from pathlib import Path

# Registers the one transform a cluster without nodes or controllers needs (tests/engine/no_controllers.py,
# copied beside this file by the tier).
import no_controllers  # noqa: F401
import pulumi

from infra.airflow.plan import plan_airflow
from infra.airflow.program import deploy_cluster
from infra.config.loader import load_stack

# The stack files beside this program (the project's Pulumi.yaml names them: stackConfigDir).
STACKS = Path(__file__).resolve().parents[1] / "stacks"
loaded = load_stack(pulumi.get_stack(), STACKS)
settings = loaded.config.airflow
plan = plan_airflow(loaded.name, loaded.config)
assert settings is not None and settings.chart is not None and settings.sign_in is not None
assert plan is not None and plan.kubernetes is not None
tier = pulumi.Config("chart-tier")
seed = tier.require_secret("connectionSeed")


def connection(env_name: str) -> pulumi.Output[str]:
    return pulumi.Output.secret(
        seed.apply(
            lambda value: json.dumps(
                {"conn_type": "http", "host": f"https://{env_name.lower()}.invalid", "password": value}
            )
        )
    )


cluster = deploy_cluster(
    plan.kubernetes,
    settings,
    connection_values={name: connection(name) for name in plan.kubernetes.connection_env_names},
    tunnel_token=tier.require_secret("tunnelToken"),
    trigger_api_password=tier.require_secret("triggerPassword"),
)
pulumi.export("airflow_namespace", cluster.namespace)
