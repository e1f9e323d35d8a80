"""Turns a recorded run into the plan document: resources (secrets masked), outputs, compiled
policies, the access matrix, DAG grants and identities. `airgate plan --json` writes it and
`airgate diff` compares two of them, so its shape is a published format (`format` below).
"""

from __future__ import annotations

import hashlib
from typing import Any

from infra.config.loader import LoadedStack
from infra.plan.format import PLAN_FORMAT, PlanDocument, ResourceEntry
from infra.plan.markers import MASK, UNKNOWN
from infra.plan.runner import RecordedResource, Recording, is_secret
from infra.plan.stack_facts import stack_sections
from infra.policy.compiler import access_matrix, compile_stack

EDGE_GATEWAY_TYPE = "airgate:edge:EdgeGateway"


def mask(value: Any) -> Any:
    if is_secret(value):
        return MASK
    if isinstance(value, dict):
        return {key: mask(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [mask(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return UNKNOWN


def _bindings(raw: Any) -> Any:
    """Pulumi marks a whole list secret when one element is; show the plain bindings anyway
    (they are plain by construction) and mask every secret_text value."""
    inner = raw["value"] if is_secret(raw) else raw
    if not isinstance(inner, list):
        return mask(raw)
    return [
        {**mask(item), "text": MASK}
        if isinstance(item, dict) and item.get("type") == "secret_text"
        else mask(item)
        for item in inner
    ]


def _summarise_inputs(resource: RecordedResource) -> dict[str, Any]:
    inputs = mask(resource.inputs)
    if resource.type.endswith("WorkersScript") and "bindings" in resource.inputs:
        inputs["bindings"] = _bindings(resource.inputs["bindings"])
    content = inputs.get("content")
    if resource.type.endswith("WorkersScript") and isinstance(content, str):
        digest = hashlib.sha256(content.encode()).hexdigest()
        inputs["content"] = f"sha256:{digest} ({len(content.encode())} bytes)"
    return dict(inputs)


def _gateway_of(resource: RecordedResource, by_name: dict[str, RecordedResource]) -> str | None:
    current: RecordedResource | None = resource
    while current is not None:
        if current.type == EDGE_GATEWAY_TYPE:
            return current.name
        current = by_name.get(current.parent) if current.parent else None
    return None


def plan_document(loaded: LoadedStack, recording: Recording) -> PlanDocument:
    stack = loaded.config
    by_name = {resource.name: resource for resource in recording.resources}
    resources: list[ResourceEntry] = [
        {
            "type": resource.type,
            "name": resource.name,
            "parent": resource.parent,
            "custom": resource.custom,
            "protect": resource.protect,
            "gateway": _gateway_of(resource, by_name),
            "inputs": _summarise_inputs(resource) if resource.custom else {},
        }
        for resource in recording.resources
    ]
    resources.sort(key=lambda r: (r["gateway"] or "", r["parent"] or "", r["type"], r["name"]))
    policies = compile_stack(stack)
    document: PlanDocument = {
        "format": PLAN_FORMAT,
        "project": "airgate",
        "stack": loaded.name,
        "environment": stack.environment,
        "protected": stack.protected,
        "resources": resources,
        "outputs": mask(recording.outputs),
        "policies": {
            name: {"version": policy.version, "document": policy.document}
            for name, policy in policies.items()
        },
        "access_matrix": [
            {
                "role": row.role,
                "gateway": row.gateway,
                "route": row.route,
                "path": row.path,
                "methods": list(row.methods),
            }
            for row in access_matrix(stack)
        ],
        **stack_sections(stack),
        "warnings": [
            f"secret airgate:{key} is not set yet (pulumi config set --secret airgate:{key} -s {loaded.name})"
            for key in loaded.missing_secrets
            if stack.environment != "local"
        ],
    }
    return document
