"""Generates the local environment's secrets once and keeps them in the state folder (mode 0600):
OIDC client secrets, upstream credentials, the trigger gateway's Airflow password. Never printed whole."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def load_or_create(path: Path, names: list[str]) -> dict[str, str]:
    existing: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in names if name not in existing]
    if missing:
        existing.update({name: secrets.token_urlsafe(24) for name in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(existing, handle, indent=2, sort_keys=True)
    return {name: existing[name] for name in names}


def load_existing(path: Path, names: list[str]) -> dict[str, str]:
    """The secrets `load_or_create` saved, creating none: a reader (`airgate verify`) must present
    what the running environment knows, and a secret made up now would not be."""
    existing: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in names if name not in existing]
    if missing:
        raise RuntimeError(f"{path} lacks {', '.join(missing)}: run `airgate up`")
    return {name: existing[name] for name in names}
