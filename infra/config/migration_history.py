"""Decides whether the Durable Object migration history in the repository is still append-only.

Cloudflare keeps one migration tag per script and checks every upload's `old_tag` against it
(cloudflare/wrangler-legacy#1992; "Migration tag precondition failed", code 10079). A tag that a
live script already carries names the steps it ran; if the repository later says that tag means
something else, the live script and the repository disagree for ever. So every entry carries a
`digest` that chains its own steps to the digest of the entry before it: editing, removing or
reordering a written entry breaks the chain, and the stack is refused at load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from infra.config.errors import StackRuleError
from infra.config.sections import MigrationStep

HISTORY_KEY = "durable_object_migrations"


def step_content(step: MigrationStep) -> dict[str, object]:
    """What a tag means: everything of the entry except its seal."""
    return {
        "tag": step.tag,
        "new_sqlite_classes": list(step.new_sqlite_classes),
        "deleted_classes": list(step.deleted_classes),
        "allow_deleting_classes": step.allow_deleting_classes,
    }


def chained_digest(previous: str, step: MigrationStep) -> str:
    """The seal of `step` when the entry before it is sealed with `previous` ("" for the first)."""
    canonical = json.dumps(step_content(step), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()[:16]


def expected_digests(steps: Sequence[MigrationStep]) -> list[str]:
    digests: list[str] = []
    previous = ""
    for step in steps:
        previous = chained_digest(previous, step)
        digests.append(previous)
    return digests


def check_history(steps: Sequence[MigrationStep]) -> None:
    """Refuses a duplicated tag, an unsealed entry, and a sealed entry whose steps changed."""
    tags = [step.tag for step in steps]
    if len(set(tags)) != len(tags):
        raise StackRuleError(
            (HISTORY_KEY,),
            "a migration tag appears twice",
            "give every migration step a new tag (v1, v2, ...)",
        )
    for index, (step, expected) in enumerate(zip(steps, expected_digests(steps), strict=True)):
        where = (HISTORY_KEY, str(index), "digest")
        if step.digest is None:
            raise StackRuleError(
                where,
                f"migration {step.tag} is not sealed; the history is append-only, and the seal is "
                "what lets a later edit of an applied tag be refused",
                f"add `digest: {expected}` to this entry (it covers its steps and every entry before it)",
            )
        if step.digest != expected:
            raise StackRuleError(
                where,
                f"migration {step.tag} (or an entry before it) no longer matches what was sealed; "
                "a tag a live script may already carry cannot be rewritten, removed or reordered",
                "restore the entry as it was, and append a new tag with the change "
                f"(for example {_next_tag(tags)}) instead",
            )


def _next_tag(tags: Sequence[str]) -> str:
    numbers = [int(tag[1:]) for tag in tags if tag[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1}"
