"""Route path patterns: their syntax, their precedence, and matching a normalised path.

A pattern is `/`-separated segments: a literal, `*` or `{name}` (exactly one segment), or a final `**`
(zero or more segments). Of the patterns that match, the most specific wins: a literal beats `*`, `*`
beats `**`, and a pattern that ends beats one that continues with `**`. Two patterns of the same shape
are ambiguous, which the stack model refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,=:@-]+$")
PARAM = re.compile(r"^\{[a-z_][a-z0-9_]*\}$")
KIND_LITERAL, KIND_ONE, KIND_REST = 0, 1, 2
END = -1


@dataclass(frozen=True)
class RoutePattern:
    source: str
    segments: tuple[str, ...]

    @property
    def kinds(self) -> tuple[int, ...]:
        return tuple(_kind(segment) for segment in self.segments)

    @property
    def shape(self) -> str:
        """The pattern with parameter names erased: equal shapes match exactly the same paths."""
        marks = {KIND_ONE: "*", KIND_REST: "**"}
        return "/" + "/".join(marks.get(_kind(s), s) for s in self.segments)

    @property
    def precedence(self) -> tuple[tuple[int, ...], str]:
        """Sort key, most specific first; ties cannot happen between routes sharing a method."""
        kinds = self.kinds
        if not kinds or kinds[-1] != KIND_REST:
            kinds = (*kinds, END)
        return kinds, self.shape

    def matches(self, path_segments: tuple[str, ...]) -> bool:
        for index, segment in enumerate(self.segments):
            kind = _kind(segment)
            if kind == KIND_REST:
                return True
            if index >= len(path_segments):
                return False
            if kind == KIND_LITERAL and segment != path_segments[index]:
                return False
        return len(path_segments) == len(self.segments)


def _kind(segment: str) -> int:
    if segment == "**":
        return KIND_REST
    if segment == "*" or PARAM.match(segment):
        return KIND_ONE
    return KIND_LITERAL


def parse_pattern(source: str) -> RoutePattern:
    if not source.startswith("/"):
        raise ValueError(f"path {source!r} must start with '/'")
    if source == "/":
        return RoutePattern(source, ())
    body = source[1:]
    if body.endswith("/"):
        raise ValueError(f"path {source!r} must not end with '/'; trailing slashes are ignored")
    segments = tuple(body.split("/"))
    for index, segment in enumerate(segments):
        if segment == "**":
            if index != len(segments) - 1:
                raise ValueError(f"path {source!r}: '**' may only be the last segment")
            continue
        if segment in ("", ".", ".."):
            raise ValueError(f"path {source!r} has an empty, '.' or '..' segment")
        if segment == "*" or PARAM.match(segment):
            continue
        if not LITERAL.match(segment):
            raise ValueError(
                f"path {source!r}: segment {segment!r} may use only letters, digits and -._~!$&'()+,=:@"
            )
    return RoutePattern(source, segments)
