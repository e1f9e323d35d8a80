"""A YAML reader that refuses duplicate keys, which plain YAML silently collapses to the last one."""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(ValueError):
    def __init__(self, key: object, line: int) -> None:
        self.key = key
        self.line = line
        super().__init__(f"key {key!r} appears twice (second time on line {line})")


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise DuplicateKeyError(key, key_node.start_mark.line + 1)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_strict(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
