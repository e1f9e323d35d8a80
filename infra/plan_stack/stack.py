"""The whole plan of one stack: the edge's parts (`infra.stack_plan`) and Airflow's
(`infra.airflow.plan`), decided once by `plan_stack` before any resource exists. Only the program's
wiring reads it whole; each component gets its own part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.airflow.plan import AirflowPlan
from infra.stack_plan import AccessPlan, GatewayPlan, LogpushPlan


@dataclass(frozen=True)
class StackPlan:
    stack_name: str
    environment: str
    account_id: str
    access: AccessPlan
    gateways: dict[str, GatewayPlan] = field(default_factory=dict)
    logpush: LogpushPlan | None = None
    secret_keys: tuple[str, ...] = ()
    """Every Pulumi secret config key the wiring reads."""
    airflow: AirflowPlan | None = None
    """Airflow's part (`infra.airflow.plan.plan_airflow`): connections, tunnel, cluster, trigger
    identity; None when the stack runs no Airflow."""
