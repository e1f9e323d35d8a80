"""Renders a gateway's Worker sources from `worker_templates/` with the project's one Jinja environment.

Jinja decides structure only (which modules a gateway imports and exports). Runtime values reach the
Worker as bindings; the few build facts that are inlined go through `| tojson`, which
`tests/test_templates.py` enforces for every `{{ }}` in a JS template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from infra.config.model import StackConfig

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "worker_templates"
ENTRY_TEMPLATE = "gateway.js.j2"
ENTRY_MODULE = "gateway.js"
RATE_LIMITER_CLASS = "RateLimiter"
IDEMPOTENCY_CLASS = "IdempotencyStore"


@dataclass(frozen=True)
class DurableObjectBinding:
    binding: str
    class_name: str


def durable_objects_for(stack: StackConfig, gateway_name: str) -> tuple[DurableObjectBinding, ...]:
    gateway = stack.gateways[gateway_name]
    bound = [DurableObjectBinding("RATE_LIMITER", RATE_LIMITER_CLASS)]
    if gateway.kind == "dag_trigger":
        bound.append(DurableObjectBinding("IDEMPOTENCY", IDEMPOTENCY_CLASS))
    return tuple(bound)


def exported_classes() -> tuple[str, ...]:
    """Every gateway Worker exports every class, so one migration history serves them all."""
    return (IDEMPOTENCY_CLASS, RATE_LIMITER_CLASS)


def tojson(value: Any) -> str:
    """JSON for inlining into JavaScript: sorted keys (deterministic bytes), `<`, `>` and `&`
    escaped so no value can close a tag or a comment, and an undefined value is an error."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def jinja_environment(templates_dir: Path = TEMPLATES_DIR) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - output is JavaScript; values are inlined only via tojson
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson"] = tojson
    return env


def template_context(stack: StackConfig, gateway_name: str) -> dict[str, Any]:
    gateway = stack.gateways[gateway_name]
    return {
        "gateway": {
            "name": gateway_name,
            "kind": gateway.kind,
            "auth": stack.gateway_auth(gateway),
            "environment": stack.environment,
        },
        "exported_classes": list(exported_classes()),
    }


def render_sources(stack: StackConfig, gateway_name: str) -> dict[str, str]:
    """Relative path → source text of every module the gateway's bundle starts from."""
    env = jinja_environment()
    context = template_context(stack, gateway_name)
    sources: dict[str, str] = {ENTRY_MODULE: env.get_template(ENTRY_TEMPLATE).render(context)}
    for path in sorted(TEMPLATES_DIR.rglob("*")):
        relative = path.relative_to(TEMPLATES_DIR).as_posix()
        if path.is_dir() or relative == ENTRY_TEMPLATE or "test" in path.parts:
            continue
        if relative.endswith(".j2"):
            sources[relative[: -len(".j2")]] = env.get_template(relative).render(context)
        elif relative.endswith(".js"):
            sources[relative] = path.read_text(encoding="utf-8")
    return sources
