"""Decides a Worker's Durable Object migrations from the tags kept in the stack.

Cloudflare stores migrations write-only, so the provider cannot tell what the live script already
has. The stack records the full history and each gateway's `deployed_migration_tag`; the plan sends
only the steps after it, with `old_tag` set explicitly, so a re-run never replays a step.
"""

from __future__ import annotations

from typing import Any

from infra.config.model import MigrationStep, StackConfig


def step_document(step: MigrationStep) -> dict[str, Any]:
    document: dict[str, Any] = {"tag": step.tag}
    if step.new_sqlite_classes:
        document["new_sqlite_classes"] = list(step.new_sqlite_classes)
    if step.deleted_classes:
        document["deleted_classes"] = list(step.deleted_classes)
    return document


def all_steps(stack: StackConfig) -> list[dict[str, Any]]:
    return [step_document(step) for step in stack.durable_object_migrations]


def pending_migrations(stack: StackConfig, gateway_name: str) -> dict[str, Any] | None:
    """The `migrations` input for the gateway's WorkersScript, or None when nothing is pending."""
    steps = list(stack.durable_object_migrations)
    deployed = stack.gateways[gateway_name].deployed_migration_tag
    tags = [step.tag for step in steps]
    pending = steps[tags.index(deployed) + 1 :] if deployed is not None else steps
    if not pending:
        return None
    plan: dict[str, Any] = {
        "new_tag": pending[-1].tag,
        "steps": [
            {key: value for key, value in step_document(step).items() if key != "tag"} for step in pending
        ],
    }
    if deployed is not None:
        plan["old_tag"] = deployed
    return plan


def migrated_classes(stack: StackConfig) -> set[str]:
    """Classes that exist after every step: created and not deleted since."""
    alive: set[str] = set()
    for step in stack.durable_object_migrations:
        alive |= set(step.new_sqlite_classes)
        alive -= set(step.deleted_classes)
    return alive
