"""Conversions between the engine's property structs and plain Python values, and the two naming
schemes in play: Pulumi's camelCase property names and the Cloudflare API's snake_case fields."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format, struct_pb2

# The engine's marker for a value not known until apply (pulumi/runtime/rpc.py: UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# A secret travels as {SIG: SECRET_SIG, "value": ...} (pulumi/runtime/rpc.py: _special_sig_key).
SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - a protocol marker


def to_dict(struct: struct_pb2.Struct | None) -> dict[str, Any]:
    if struct is None:
        return {}
    return _plain(json_format.MessageToDict(struct))


def to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(_drop_none(values))
    return struct


def has_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return value == UNKNOWN


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_api(value: Any) -> Any:
    """Pulumi inputs (camelCase keys, nested) as the API's JSON (snake_case keys)."""
    if isinstance(value, dict):
        return {snake(k): to_api(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_api(v) for v in value]
    return value


def from_api(value: Any) -> Any:
    """The API's JSON as Pulumi outputs (camelCase keys, nested)."""
    if isinstance(value, dict):
        return {camel(k): from_api(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_api(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    # Struct numbers are doubles; the API and the diff want 1, not 1.0. Provider configuration
    # arrives with its secrets still wrapped, whatever Configure answered about accepting them.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if value.get(SIG) == SECRET_SIG:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
