"""The stack plan and what is refused before it: the sealed migration history, the Logpush
ownership challenge, rotation fields, protection per environment, and components that only wire."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config.errors import ConfigError
from infra.config.loader import PROJECT_ROOT, LoadedStack, load_stack
from infra.config.migration_history import expected_digests
from infra.config.sections import MigrationStep, Rotation
from infra.plan_stack.planner import plan_stack

Load = Callable[[str], LoadedStack]


def rejected(load: Load, name: str = "candidate") -> str:
    with pytest.raises(ConfigError) as caught:
        load(name)
    message = caught.value.render()
    assert f"stacks/Pulumi.{name}.yaml" in message and "nothing was created" in message
    return message


def test_an_appended_migration_needs_its_seal_and_is_told_the_value(write_stack: Any, load: Load) -> None:
    write_stack(
        shared=lambda base: base["durable_object_migrations"].append(
            {"tag": "v2", "new_sqlite_classes": ["Audit"]}
        )
    )
    message = rejected(load)
    steps = [
        MigrationStep(tag="v1", new_sqlite_classes=("RateLimiter", "IdempotencyStore")),
        MigrationStep(tag="v2", new_sqlite_classes=("Audit",)),
    ]
    digest = expected_digests(steps)[1]
    assert "durable_object_migrations.1.digest" in message
    assert f"digest: {digest}" in message

    def sealed(base: dict[str, Any]) -> None:  # the shared file already holds the unsealed v2
        base["durable_object_migrations"][-1]["digest"] = digest

    write_stack(shared=sealed)
    assert [s.tag for s in load("candidate").config.durable_object_migrations] == ["v1", "v2"]


@pytest.mark.parametrize(
    "edit",
    [
        lambda history: history[0]["new_sqlite_classes"].append("Extra"),
        lambda history: history[0].update(tag="v0"),
        lambda history: history.insert(0, {"tag": "v0", "digest": history[0]["digest"]}),
    ],
    ids=["steps changed", "tag renamed", "entry inserted before"],
)
def test_rewriting_an_applied_tag_is_refused_at_load(
    write_stack: Any, load: Load, edit: Callable[[list[dict[str, Any]]], None]
) -> None:
    write_stack(shared=lambda base: edit(base["durable_object_migrations"]))
    message = rejected(load)
    assert "durable_object_migrations.0.digest" in message
    assert "cannot be rewritten, removed or reordered" in message
    assert "append a new tag" in message


def test_a_storage_logpush_destination_without_a_challenge_says_how_to_get_one(
    write_stack: Any, load: Load
) -> None:
    write_stack(set_keys={"logpush": {"destination_conf": "s3://logs-bucket/dev?region=eu-west-1"}})
    message = rejected(load)
    assert "at logpush.ownership_challenge" in message
    assert "incorrect ownership challenge (1002)" in message
    assert "logpush/ownership" in message
    assert "pulumi config set --secret airgate:logpushOwnershipChallenge -s candidate" in message
    assert "ownership_challenge: {secret: logpushOwnershipChallenge}" in message


def test_an_http_logpush_destination_needs_no_challenge(write_stack: Any, load: Load) -> None:
    write_stack(set_keys={"logpush": {"destination_conf": "https://logs.example.com/ingest?header_x=1"}})
    assert load("candidate").config.logpush is not None


def test_the_challenge_is_a_secret_the_stack_must_set(load: Load) -> None:
    assert "logpushOwnershipChallenge" in load("prod").missing_secrets


def test_a_rotated_token_names_when_the_previous_secret_ends(write_stack: Any, load: Load) -> None:
    write_stack(set_keys={"service_tokens": {"ci": {"rotation": {"version": 2}}}})
    message = rejected(load)
    assert "service_tokens.ci.rotation" in message
    assert "previous_secret_expires_at" in message


@pytest.mark.parametrize(("stack", "protected"), [("prod", True), ("staging", False), ("dev", False)])
def test_protection_follows_the_environment(stack: str, protected: bool) -> None:
    plan = plan_stack(stack, load_stack(stack).config)
    for gateway in plan.gateways.values():
        for protection in (gateway.namespace_protection, gateway.script_protection):
            assert protection.protect is protected
            assert protection.retain_on_delete is protected
            assert bool(protection.why) is protected
    assert plan.access.token_protection.protect is protected


def test_the_plan_is_a_pure_value() -> None:
    config = load_stack("prod").config
    assert plan_stack("prod", config) == plan_stack("prod", config)
    plan = plan_stack("prod", config)
    assert plan.logpush is not None and plan.logpush.ownership_challenge_key == "logpushOwnershipChallenge"
    assert "logpushOwnershipChallenge" in plan.secret_keys
    trigger = plan.gateways["trigger"]
    assert trigger.migrations.tags == ("v1",)
    assert {b.name for b in trigger.bindings if b.fill} == {"IDENTITY", "ACCESS_CLIENTS", "JWKS_KV_MAC_KEY"}


def test_components_import_no_planner() -> None:
    """A component turns its part of the plan into resources: it imports the plan's values, never
    the config model or a planner."""
    allowed = ("pulumi", "pulumi_cloudflare", "infra.stack_plan", "infra.components", "__future__")
    for path in sorted((PROJECT_ROOT / "infra" / "components").glob("*.py")):
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.startswith("infra"):
                    assert module.startswith(allowed), f"{path.name} imports {module}"


def test_a_rotation_sends_its_version_only_with_the_previous_expiry() -> None:
    never = Rotation()
    assert never.secret_version is None and never.previous_expiry_text is None
    rotated = Rotation(version=3, previous_secret_expires_at=dt.datetime(2026, 12, 15, tzinfo=dt.UTC))
    assert rotated.secret_version == 3
    assert rotated.previous_expiry_text == "2026-12-15T00:00:00Z"
