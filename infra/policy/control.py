"""The KV documents beside the compiled policies, their schema, and the pure edits `airgate revoke`
and `airgate kill-switch` make to the one mutable document, `control`.

Layout of a stack's KV namespace (docs/kv-layout.md says the same for people):
- `policy:<version>`: a gateway's compiled policy, canonical JSON, immutable (the version is the
  first 16 hex of its sha256; the Worker refuses text that does not hash to it).
- `control`: `{"revoked_subjects": [string], "disabled_roles": [string]}`, shared by every gateway
  of the stack, read at most every CONTROL_TTL_SECONDS. A revoked name is any identifier that can
  grant a role: an OIDC `sub`, a verified email, an OIDC client id, an Access service-token client id
  (or its name). A disabled role is taken away from every caller (the kill switch).
- `jwks:<16 hex of sha256(issuer)>`: `{"fetched_at": <unix s>, "keys": {...}}`, a key set cached by
  the Worker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CONTROL_KEY = "control"
JWKS_KEY_PREFIX = "jwks:"

CONTROL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "airgate KV `control` document",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "revoked_subjects": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "uniqueItems": True,
        },
        "disabled_roles": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
    },
}
JWKS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "airgate KV `jwks:<hash>` document (a cached key set)",
    "type": "object",
    "required": ["fetched_at", "keys"],
    "properties": {"fetched_at": {"type": "number"}, "keys": {"type": "object"}},
}
"""Documentation only (docs/kv-layout.md points here): the Worker writes and reads these itself."""


class ControlError(ValueError):
    """The stored `control` document is not what the schema says; nothing is written over it."""


def jwks_key(issuer: str) -> str:
    return JWKS_KEY_PREFIX + hashlib.sha256(issuer.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Control:
    revoked_subjects: frozenset[str] = frozenset()
    disabled_roles: frozenset[str] = frozenset()

    def document(self) -> dict[str, list[str]]:
        return {
            "revoked_subjects": sorted(self.revoked_subjects),
            "disabled_roles": sorted(self.disabled_roles),
        }

    def text(self) -> str:
        """Canonical JSON: the same control gives the same bytes."""
        return json.dumps(self.document(), sort_keys=True, separators=(",", ":"))


def _names(document: dict[str, Any], key: str) -> frozenset[str]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ControlError(f"`control`.{key} must be a list of non-empty strings, found {value!r}")
    return frozenset(value)


def parse_control(text: str | None) -> Control:
    """The stored document (None or empty: nothing revoked, nothing disabled)."""
    if text is None or not text.strip():
        return Control()
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ControlError(f"`control` is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise ControlError("`control` must be a JSON object")
    unknown = sorted(set(document) - set(CONTROL_SCHEMA["properties"]))
    if unknown:
        raise ControlError(f"`control` has unknown keys {unknown}; only revoked_subjects, disabled_roles")
    return Control(_names(document, "revoked_subjects"), _names(document, "disabled_roles"))


def revoke(control: Control, names: Iterable[str], *, undo: bool = False) -> Control:
    chosen = frozenset(names)
    subjects = control.revoked_subjects - chosen if undo else control.revoked_subjects | chosen
    return Control(subjects, control.disabled_roles)


def disable(control: Control, roles: Iterable[str], *, undo: bool = False) -> Control:
    chosen = frozenset(roles)
    disabled = control.disabled_roles - chosen if undo else control.disabled_roles | chosen
    return Control(control.revoked_subjects, disabled)
