"""Does one route pattern match every path another one matches? Decides "a widened wildcard".

Segments are a literal, one-segment (`*`, `{name}`) or a final `**` (zero or more segments), as in
`infra.config.patterns`. `covers(a, b)` is exact for this language, so a path change is reported
as widening precisely when the new pattern reaches a path the old one did not.
"""

from __future__ import annotations

from infra.config.patterns import KIND_LITERAL, KIND_ONE, KIND_REST, parse_pattern


def covers(wide: str, narrow: str) -> bool:
    """True when every path that `narrow` matches is matched by `wide`."""
    a, b = parse_pattern(wide), parse_pattern(narrow)
    return _covers(a.segments, a.kinds, b.segments, b.kinds)


def _covers(a: tuple[str, ...], ak: tuple[int, ...], b: tuple[str, ...], bk: tuple[int, ...]) -> bool:
    i = 0
    while True:
        if i < len(a) and ak[i] == KIND_REST:
            return True
        if i >= len(a):
            return i >= len(b)
        if i >= len(b) or bk[i] == KIND_REST:
            # `narrow` ends here (or goes on arbitrarily) while `wide` still needs segments.
            return False
        if ak[i] == KIND_LITERAL and (bk[i] != KIND_LITERAL or a[i] != b[i]):
            return False
        assert ak[i] in (KIND_LITERAL, KIND_ONE)
        i += 1


def widens(old: str, new: str) -> bool:
    """The new pattern reaches a path the old one did not."""
    try:
        return not covers(old, new)
    except ValueError:
        return True
