"""Builds every gateway of a stack and writes what `airgate build --out DIR` promises, per gateway:
`worker.js` (the bundle), `worker.js.sha256`, `wrangler.json` (same bindings, for `wrangler dev`),
`policy.json` (the KV value the Worker enforces) and `manifest.json`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.build.bindings import plan_bindings, policy_kv_key
from infra.build.bundle import bundle
from infra.build.migrations import all_steps
from infra.build.templates import ENTRY_MODULE, exported_classes, render_sources
from infra.config.model import StackConfig
from infra.policy.compiler import CompiledPolicy, compile_gateway
from infra.stack_plan import Binding


@dataclass(frozen=True)
class GatewayBuild:
    gateway: str
    script_name: str
    bundle: bytes
    policy: CompiledPolicy

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.bundle).hexdigest()


def script_prefix(stack_name: str) -> str:
    """What every name of this stack's Workers (and its Access objects) starts with; the decision
    Logpush job filters on it."""
    return f"airgate-{stack_name}"


def script_name(stack_name: str, gateway_name: str) -> str:
    return f"{script_prefix(stack_name)}-{gateway_name}"


def build_gateway(stack_name: str, stack: StackConfig, gateway_name: str) -> GatewayBuild:
    source = bundle(render_sources(stack, gateway_name))
    policy = compile_gateway(stack, gateway_name)
    return GatewayBuild(gateway_name, script_name(stack_name, gateway_name), source, policy)


def wrangler_config(
    stack: StackConfig, build: GatewayBuild, bindings: list[Binding], kv_id: str
) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for binding in bindings:
        if binding.late:
            continue  # another resource's output: wrangler dev users supply it themselves
        if binding.type == "plain_text":
            variables[binding.name] = binding.text
        elif binding.type == "json":
            variables[binding.name] = json.loads(binding.text or "null")
    return {
        "name": build.script_name,
        "main": ENTRY_MODULE,
        "compatibility_date": stack.compatibility_date,
        "no_bundle": True,
        "workers_dev": False,
        "vars": variables,
        "kv_namespaces": [{"binding": b.name, "id": kv_id} for b in bindings if b.type == "kv_namespace"],
        "durable_objects": {
            "bindings": [
                {"name": b.name, "class_name": b.class_name}
                for b in bindings
                if b.type == "durable_object_namespace"
            ]
        },
        "migrations": all_steps(stack),
        "observability": {"enabled": True, "logs": {"enabled": True}},
    }


def write_build(
    out_dir: Path,
    stack_name: str,
    stack: StackConfig,
    *,
    service_token_ids: Mapping[str, str] | None = None,
    access_audiences: Mapping[str, str] | None = None,
) -> list[GatewayBuild]:
    builds = []
    for gateway_name in sorted(stack.gateways):
        build = build_gateway(stack_name, stack, gateway_name)
        bindings = plan_bindings(
            stack,
            gateway_name,
            build.policy,
            access_audience=(access_audiences or {}).get(gateway_name),
            service_token_ids=service_token_ids,
        )
        target = out_dir / gateway_name
        target.mkdir(parents=True, exist_ok=True)
        (target / ENTRY_MODULE).write_bytes(build.bundle)
        (target / f"{ENTRY_MODULE}.sha256").write_text(f"{build.sha256}  {ENTRY_MODULE}\n")
        (target / "policy.json").write_text(build.policy.canonical + "\n")
        kv_id = hashlib.sha256(build.script_name.encode()).hexdigest()[:32]
        config = wrangler_config(stack, build, bindings, kv_id)
        (target / "wrangler.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        manifest = {
            "gateway": gateway_name,
            "script_name": build.script_name,
            "main_module": ENTRY_MODULE,
            "bundle_sha256": build.sha256,
            "bundle_bytes": len(build.bundle),
            "policy_version": build.policy.version,
            "policy_kv_key": policy_kv_key(build.policy.version),
            "exported_classes": list(exported_classes()),
            "secret_bindings": sorted(b.name for b in bindings if b.type == "secret_text"),
        }
        (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        builds.append(build)
    return builds
