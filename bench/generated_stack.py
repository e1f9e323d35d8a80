"""A prod stack with N generated routes, for the benchmarks (plan_scaling, diff_500).

Routes spread over the example gateways, each with two roles, a method set and a rate limit;
`changed=True` alters one route in ten the way a risky review would see (a new role, a gained
method, a path widened to `**`, a looser limit).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from infra.config.loader import STACKS_DIR

ROLES = ["data-engineer", "analyst", "airflow-worker", "ai-agent", "ci", "platform-admin"]
METHODS = [["GET"], ["POST"], ["GET", "POST"], ["PUT", "DELETE"]]


def write_stack(folder: Path, routes: int, changed: bool = False) -> str:
    """Writes stacks/ into `folder` with `routes` generated routes; returns the stack name."""
    shutil.copytree(STACKS_DIR, folder, dirs_exist_ok=True)
    shared = yaml.safe_load((folder / "shared.yaml").read_text())
    gateways = list(shared["gateways"])
    for gateway in gateways:
        shared["gateways"][gateway]["routes"] = {}
    for index in range(routes):
        gateway = gateways[index % len(gateways)]
        roles = [ROLES[index % len(ROLES)], ROLES[(index * 7 + 1) % len(ROLES)]]
        methods = list(METHODS[index % len(METHODS)])
        path = f"/v{index % 3}/area-{index}/{{item}}"
        limit = {"requests": 10 + index, "per_seconds": 60}
        if changed and index % 10 == 0:
            roles.append(ROLES[(index + 3) % len(ROLES)])
            methods = sorted(set(methods) | {"PATCH"})
            path = f"/v{index % 3}/area-{index}/**"
            limit = {"requests": 1000 + index, "per_seconds": 60}
        shared["gateways"][gateway]["routes"][f"route-{index}"] = {
            "path": path,
            "methods": methods,
            "roles": sorted(set(roles)),
            "rate_limit": limit,
        }
    (folder / "shared.yaml").write_text(yaml.safe_dump(shared, sort_keys=False))
    return "prod"
