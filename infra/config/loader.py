"""Reads `stacks/Pulumi.<env>.yaml` (plus the shared file it extends) and validates it once.

The result is a frozen `StackConfig`, or a `ConfigError` naming the stack file, the key path and the
fix. Secrets never pass through here as values: the model holds only the names of Pulumi secret keys,
and this loader checks that those keys are stored encrypted (`secure:`), never in plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infra.config.airflow_model import airflow_secret_keys
from infra.config.errors import ConfigError, StackRuleError
from infra.config.model import StackConfig
from infra.config.yaml_strict import DuplicateKeyError, load_strict

PROJECT = "airgate"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = PROJECT_ROOT / "stacks"
SHARED_KEY = f"{PROJECT}:extends"


@dataclass(frozen=True)
class LoadedStack:
    name: str
    path: Path
    config: StackConfig
    secret_keys: frozenset[str]
    """`airgate:` keys present in the stack file as Pulumi secrets."""
    missing_secrets: tuple[str, ...]
    """Secret keys the config refers to that are not set yet (only the local stack may leave them)."""
    other_config: Mapping[str, Any]
    """Non-airgate keys (e.g. `kubernetes:context`), handed to Pulumi untouched."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The `airgate:` settings `config` was validated from, keys without the prefix: the
    `airgate:extends` file with the stack's own keys merged over it, secrets left out. Read-only."""

    @property
    def relative_path(self) -> str:
        return _shown(self.path)


def stack_file(name: str, stacks_dir: Path = STACKS_DIR) -> Path:
    return stacks_dir / f"Pulumi.{name}.yaml"


def available_stacks(stacks_dir: Path = STACKS_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))


def load_stack(name: str, stacks_dir: Path = STACKS_DIR) -> LoadedStack:
    path = stack_file(name, stacks_dir)
    shown = _shown(path)
    if not path.exists():
        known = ", ".join(available_stacks(stacks_dir)) or "none"
        raise ConfigError(shown, [("(file)", "no such stack file", f"use one of: {known}")])
    raw = _read_yaml(path, shown)
    config_section = raw.get("config") if isinstance(raw, dict) else None
    if not isinstance(config_section, dict):
        raise ConfigError(shown, [("config", "missing or not a mapping", "put the keys under config:")])

    own: dict[str, Any] = {}
    other: dict[str, Any] = {}
    secret_keys: set[str] = set()
    prefix = f"{PROJECT}:"
    for key, value in config_section.items():
        if not str(key).startswith(prefix):
            other[str(key)] = value
            continue
        short = str(key)[len(prefix) :]
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.add(short)
            continue
        own[short] = value

    document: dict[str, Any] = {}
    base_name = own.pop("extends", None)
    if base_name is not None:
        base_path = (path.parent / str(base_name)).resolve()
        if base_path.parent != path.parent.resolve() or not base_path.exists():
            raise ConfigError(
                shown,
                [(SHARED_KEY, f"shared file {base_name!r} not found", "name a file in stacks/")],
            )
        base = _read_yaml(base_path, _shown(base_path))
        if not isinstance(base, dict):
            raise ConfigError(_shown(base_path), [("(file)", "not a mapping", "write key: value")])
        document = base
    document = deep_merge(document, own)

    _reject_plaintext_secrets(shown, document)
    for key in sorted(_secret_names(document) & set(own)):
        raise ConfigError(
            shown,
            [
                (
                    f"{prefix}{key}",
                    "holds a plain-text value, but it is used as a secret",
                    f"remove it and run: pulumi config set --secret {prefix}{key} -s {name}",
                )
            ],
        )
    try:
        config = StackConfig.model_validate(document)
    except ValidationError as error:
        problems = [
            (where, problem, fix.replace("-s <stack>", f"-s {name}"))
            for where, problem, fix in _problems(error)
        ]
        raise ConfigError(shown, problems) from None

    missing = tuple(sorted(key for key in referenced_secrets(config) if key not in secret_keys))
    return LoadedStack(name, path, config, frozenset(secret_keys), missing, other, document)


def edge_secret_keys(config: StackConfig) -> set[str]:
    """The Pulumi secret config keys the edge reads: the IdP's client secret, upstream credentials
    and the Logpush ownership challenge."""
    keys = {config.identity.oidc.client_secret.secret}
    if config.logpush is not None and config.logpush.ownership_challenge is not None:
        keys.add(config.logpush.ownership_challenge.secret)
    for gateway in config.gateways.values():
        if gateway.upstream.credential is not None:
            keys.add(gateway.upstream.credential.secret)
    return keys


def referenced_secrets(config: StackConfig) -> set[str]:
    return edge_secret_keys(config) | airflow_secret_keys(config.airflow)


def _secret_names(node: Any) -> set[str]:
    """Every `secret: <key>` reference anywhere in the document."""
    if isinstance(node, Mapping):
        found = {str(node["secret"])} if isinstance(node.get("secret"), str) else set()
        for value in node.values():
            found |= _secret_names(value)
        return found
    if isinstance(node, list):
        return set().union(*(_secret_names(item) for item in node)) if node else set()
    return set()


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key (the stack wins); anything else is replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _reject_plaintext_secrets(shown: str, own: Mapping[str, Any]) -> None:
    """A secret value inline where a secret reference belongs is refused before it can spread."""

    def walk(node: Any, trail: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                here = (*trail, str(key))
                if key in ("client_secret", "credential") and isinstance(value, str):
                    name = "".join(part.title() for part in here[-2:]).replace("_", "")
                    name = name[0].lower() + name[1:]
                    raise ConfigError(
                        shown,
                        [
                            (
                                ".".join(here),
                                "a secret is written in plain text; only a Pulumi secret is allowed",
                                f"remove it, run `pulumi config set --secret airgate:{name}` and "
                                f"write {key}: {{secret: {name}}}",
                            )
                        ],
                    )
                walk(value, here)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*trail, str(index)))

    walk(own, ())


def _read_yaml(path: Path, shown: str) -> Any:
    try:
        return load_strict(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as error:
        raise ConfigError(
            shown,
            [(str(error.key), f"appears twice (line {error.line})", "keep one; names are unique")],
        ) from None
    except Exception as error:
        raise ConfigError(shown, [("(file)", f"not valid YAML: {error}", "fix the syntax")]) from None


def _problems(error: ValidationError) -> list[tuple[str, str, str]]:
    problems: list[tuple[str, str, str]] = []
    for item in error.errors():
        location = tuple(str(part) for part in item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, StackRuleError):
            problems.append((".".join((*location, *cause.path)) or "(top)", cause.problem, cause.fix))
            continue
        key_path = ".".join(location) or "(top)"
        kind = item["type"]
        message = str(item["msg"]).removeprefix("Value error, ")
        if kind == "extra_forbidden":
            problems.append((key_path, "unknown key", "remove it or correct its spelling"))
        elif kind == "missing":
            problems.append((key_path, "required key is missing", "add it"))
        else:
            problems.append((key_path, message, _fix_for(kind)))
    return problems


def _fix_for(kind: str) -> str:
    return {
        "string_pattern_mismatch": "use the format shown",
        "literal_error": "use one of the listed values",
        "int_parsing": "write a whole number",
        "greater_than_equal": "raise the value",
        "less_than_equal": "lower the value",
    }.get(kind, "")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
