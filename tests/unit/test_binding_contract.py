"""The Worker binding contract has one source: the bindings the build plans, read from the public
outputs — `airgate build` (wrangler.json, manifest) for every stack, and the offline plan's
`WorkersScript` bindings for prod (bindings whose values are resource outputs, e.g. the Airflow
tunnel's service-token id, exist only there). Every `env.X` the Worker's JavaScript reads must be
planned, and every planned binding read, so a rename on either side fails here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from infra.config.loader import PROJECT_ROOT, available_stacks, load_stack

TEMPLATES = PROJECT_ROOT / "worker_templates"
ENV_READ = re.compile(r"\benv\??\.([A-Za-z_][A-Za-z0-9_]*)")
OPTIONAL = {
    "CONTROL_TTL_SECONDS": "tuning: absent means the Worker's default (10 s); the local environment sets it",
}


def worker_reads() -> set[str]:
    files = [*TEMPLATES.glob("lib/*.js"), *TEMPLATES.glob("*.j2")]
    return {name for path in files for name in ENV_READ.findall(path.read_text())}


def planned(out: Path) -> set[str]:
    from infra.build.artifacts import write_build

    names: set[str] = set()
    for stack in available_stacks():
        for item in write_build(out / stack, stack, load_stack(stack).config):
            folder = out / stack / item.gateway
            wrangler = json.loads((folder / "wrangler.json").read_text())
            manifest = json.loads((folder / "manifest.json").read_text())
            names |= set(wrangler.get("vars", {}))
            names |= {kv["binding"] for kv in wrangler.get("kv_namespaces", [])}
            names |= {d["name"] for d in wrangler.get("durable_objects", {}).get("bindings", [])}
            names |= set(manifest.get("secret_bindings", []))
    plan_file = out / "prod-plan.json"
    subprocess.run(
        [str(Path(sys.executable).parent / "airgate"), "plan", "-s", "prod", "--json", str(plan_file)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    )
    for resource in json.loads(plan_file.read_text())["resources"]:
        if resource["type"].endswith("WorkersScript"):
            names |= {binding["name"] for binding in resource["inputs"]["bindings"]}
    return names


def test_every_binding_the_worker_reads_is_planned_and_every_planned_one_is_read(tmp_path: Path) -> None:
    reads, plan = worker_reads(), planned(tmp_path)
    assert reads, "no env.X found: the pattern no longer matches the Worker's code"
    assert reads - plan - set(OPTIONAL) == set(), "read by the Worker but planned for no stack"
    assert plan - reads == set(), "planned but never read by the Worker"
