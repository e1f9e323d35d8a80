"""Reference evaluation of a compiled policy: which route a request hits and whether roles may call it.

The Worker implements the same decision in JavaScript; this version is what the property tests and
`airgate plan` reason with, and the shared corpus tests hold the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Decision = Literal["allow", "no_route", "method_not_allowed", "role_not_allowed"]


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    route: str | None


def matches(segments: list[str], path: tuple[str, ...]) -> bool:
    for index, segment in enumerate(segments):
        if segment == "**":
            return True
        if index >= len(path):
            return False
        if segment != "*" and not segment.startswith("{") and segment != path[index]:
            return False
    return len(path) == len(segments)


def evaluate(policy: dict[str, Any], method: str, path: tuple[str, ...], roles: frozenset[str]) -> Verdict:
    path_matched = False
    for route in policy["routes"]:
        if not matches(route["segments"], path):
            continue
        path_matched = True
        if method not in route["methods"]:
            continue
        if roles.intersection(route["roles"]):
            return Verdict("allow", route["name"])
        return Verdict("role_not_allowed", route["name"])
    return Verdict("method_not_allowed" if path_matched else "no_route", None)
