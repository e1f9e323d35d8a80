"""Turns the stack's append-only Durable Object migration history into the plan's `MigrationHistory`
and into wrangler's `[[migrations]]` list.

Which of its steps a deploy sends is decided at deploy time from the tag the live script carries
(`MigrationHistory.to_send`); see docs/design/migrations.md.
"""

from __future__ import annotations

from typing import Any

from infra.config.model import StackConfig
from infra.stack_plan import MigrationEntry, MigrationHistory


def migration_history(stack: StackConfig) -> MigrationHistory:
    return MigrationHistory(
        tuple(
            MigrationEntry(step.tag, tuple(step.new_sqlite_classes), tuple(step.deleted_classes))
            for step in stack.durable_object_migrations
        )
    )


def all_steps(stack: StackConfig) -> list[dict[str, Any]]:
    """wrangler's `[[migrations]]`: wrangler itself reads the live tag and sends only newer steps."""
    return [{"tag": entry.tag, **entry.step()} for entry in migration_history(stack).entries]
