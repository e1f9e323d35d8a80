"""Read-modify-write of `control` on every store of a stack. KV has no compare-and-swap: two
writers at the same moment can lose one change; and at the edge a write takes up to ~60 s to
reach every location (https://developers.cloudflare.com/kv/concepts/how-kv-works/)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from infra.control_store.stores import ControlStore
from infra.policy.control import Control, parse_control


@dataclass(frozen=True)
class Change:
    store: str
    before: Control
    after: Control


def update_control(stores: Sequence[ControlStore], edit: Callable[[Control], Control]) -> list[Change]:
    """Applies `edit` to each store's document. A malformed stored document stops everything before
    any write (ControlError): it is not silently replaced."""
    current = [(store, parse_control(store.read_control())) for store in stores]
    changes = []
    for store, before in current:
        wanted = edit(before)
        if wanted != before:
            store.write_control(wanted.text())
        changes.append(Change(store.label, before, wanted))
    return changes
