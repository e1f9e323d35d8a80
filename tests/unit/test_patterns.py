"""Route patterns: syntax errors are explained, precedence is literal > one segment > rest."""

from __future__ import annotations

import pytest

from infra.config.patterns import parse_pattern


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("v1/events", "must start with '/'"),
        ("/v1/events/", "must not end with '/'"),
        ("/v1/**/x", "'**' may only be the last segment"),
        ("/v1//x", "empty, '.' or '..' segment"),
        ("/v1/../admin", "empty, '.' or '..' segment"),
        ("/v1/ev ents", "may use only letters"),
        ("/v1/%2F", "may use only letters"),
    ],
)
def test_bad_patterns_are_explained(source: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*").replace("(", r"\(")):
        parse_pattern(source)


def test_precedence_orders_literal_before_wildcards() -> None:
    ordered = sorted(
        ["/v1/**", "/v1/*", "/v1/tables", "/v1/{name}/x", "/v1/tables/**"],
        key=lambda p: parse_pattern(p).precedence,
    )
    assert ordered.index("/v1/tables") < ordered.index("/v1/*") < ordered.index("/v1/**")
    assert ordered.index("/v1/tables") < ordered.index("/v1/tables/**")


def test_shape_erases_parameter_names() -> None:
    assert parse_pattern("/a/{x}/b").shape == parse_pattern("/a/*/b").shape == "/a/*/b"


def test_rest_matches_zero_or_more_segments() -> None:
    rest = parse_pattern("/v1/tables/**")
    assert rest.matches(("v1", "tables"))
    assert rest.matches(("v1", "tables", "a", "b"))
    assert not rest.matches(("v1",))
    assert not parse_pattern("/v1/*").matches(("v1",))
    assert parse_pattern("/").matches(())
