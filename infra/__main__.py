"""Entry point for `pulumi up -s <env>`: load and validate the stack once, then define it."""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this file as a script from infra/; make the project root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi

from infra.config.errors import ConfigError
from infra.config.loader import load_stack
from infra.program import define

try:
    loaded = load_stack(pulumi.get_stack())
except ConfigError as error:
    raise pulumi.RunError(error.render()) from None
if loaded.config.environment == "local":
    raise pulumi.RunError(
        f"{loaded.relative_path} describes this machine: run it with `airgate up`, not `pulumi up`."
    )
# The engine's config is the authority (secrets may also come from the environment in CI).
unset = [key for key in loaded.missing_secrets if pulumi.runtime.get_config(f"airgate:{key}") is None]
if unset:
    missing = ", ".join(f"airgate:{key}" for key in unset)
    raise pulumi.RunError(
        f"{loaded.relative_path}: secrets not set: {missing}. Fix: pulumi config set --secret "
        f"<key> -s {loaded.name} for each; nothing was created."
    )
define(loaded)
