"""Fixtures for the review tier: real offline plans of the example stacks, built from a stub
Worker (the diff and the rules never look inside the bundle, so the tier does not depend on the
gateway JavaScript), and a helper to change one thing in a copy of a plan."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.config.loader import STACKS_DIR, load_stack
from infra.rules import RuleConfig

TODAY = dt.date(2026, 11, 29)
STUB_ENTRY = """// Stub gateway Worker for review tests: the plan only needs some bundle bytes.
export class RateLimiter {}
export class IdempotencyStore {}
const BUILD = {{ gateway | tojson }};
export default { fetch() { return new Response(JSON.stringify(BUILD)); } };
"""


def write_stub_templates(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gateway.js.j2").write_text(STUB_ENTRY)
    return folder


# Package scope: the stub replaces the real templates only while this tier's tests run.
@pytest.fixture(scope="package")
def stub_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import infra.build.templates as templates

    folder = write_stub_templates(tmp_path_factory.mktemp("worker_templates"))
    saved = (templates.TEMPLATES_DIR, templates.jinja_environment.__defaults__)
    templates.TEMPLATES_DIR = folder
    templates.jinja_environment.__defaults__ = (folder,)
    yield folder
    templates.TEMPLATES_DIR, templates.jinja_environment.__defaults__ = saved


def plan_stack(name: str, stacks_dir: Path = STACKS_DIR) -> dict[str, Any]:
    from infra.plan.document import plan_document
    from infra.plan.runner import run_plan

    loaded = load_stack(name, stacks_dir)
    return plan_document(loaded, run_plan(loaded))


@pytest.fixture(scope="package")
def plans(stub_templates: Path) -> dict[str, dict[str, Any]]:
    return {name: plan_stack(name) for name in ("local", "dev", "staging", "prod")}


@pytest.fixture
def plan_of(plans: dict[str, dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    """A private deep copy of an example plan, to change one thing in."""
    return lambda name: copy.deepcopy(plans[name])


@pytest.fixture
def rules_config() -> RuleConfig:
    return RuleConfig(today=TODAY)


def resource(plan: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in plan["resources"] if r["name"] == name)


def add_resource(plan: dict[str, Any], type_: str, name: str, inputs: dict[str, Any], **extra: Any) -> None:
    plan["resources"].append(
        {
            "type": type_,
            "name": name,
            "parent": extra.get("parent"),
            "custom": True,
            "protect": extra.get("protect", False),
            "gateway": extra.get("gateway"),
            "inputs": inputs,
        }
    )
