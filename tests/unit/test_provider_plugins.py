"""The provider plugins' protocol decisions, without the engine: which changes replace (from the one
replace-on table), what a preview of a create leaves unknown, and how property values cross the
protocol (numbers, secrets, names). The engine tier runs the same plugins under the real engine."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pulumi.runtime.proto import provider_pb2

from infra.review.replacements import REPLACE_ON
from local_services.providers.properties import SECRET_SIG, SIG, UNKNOWN, camel, snake, to_dict, to_struct
from local_services.providers.random_resources import random_tables
from local_services.providers.server import Provider, Servicer

PASSWORD = "random:index/randomPassword:RandomPassword"
URN = f"urn:pulumi:dev::airgate::{PASSWORD}::pw"


class Aborted(Exception):
    pass


class Context:
    def abort(self, code: Any, details: str) -> None:
        raise Aborted(f"{code}: {details}")


def servicer() -> Servicer:
    service = Servicer(Provider("random", "4.21.4", random_tables))
    service.Configure(provider_pb2.ConfigureRequest(), Context())  # type: ignore[arg-type]
    return service


def diff(olds: dict[str, Any], news: dict[str, Any]) -> provider_pb2.DiffResponse:
    request = provider_pb2.DiffRequest(
        id="none",
        urn=URN,
        type=PASSWORD,
        old_inputs=to_struct(olds),
        olds=to_struct(olds),
        news=to_struct(news),
    )
    return servicer().Diff(request, Context())  # type: ignore[arg-type]


def test_a_change_to_a_replace_on_input_replaces_and_says_which() -> None:
    answer = diff({"length": 20, "special": False}, {"length": 24, "special": False})
    assert answer.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(answer.replaces) == ["length"]
    assert answer.detailedDiff["length"].kind == provider_pb2.PropertyDiff.UPDATE_REPLACE


def test_the_same_inputs_are_no_change_whatever_their_number_type() -> None:
    # The engine sends numbers as doubles: 20 and 20.0 are one value.
    answer = diff({"length": 20.0}, {"length": 20})
    assert answer.changes == provider_pb2.DiffResponse.DIFF_NONE
    assert not answer.replaces


def test_every_cloudflare_kind_the_program_uses_has_a_replace_on_entry() -> None:
    from local_services.providers.cloudflare_resources import cloudflare_tables

    tables = cloudflare_tables({"apiToken": "t", "baseUrl": "http://127.0.0.1:9/client/v4"})
    for token, kind in tables.resources.items():
        assert kind.replace_on == REPLACE_ON[token.rsplit(":", 1)[-1]], token


def test_a_preview_of_a_create_leaves_what_the_provider_decides_unknown() -> None:
    request = provider_pb2.CreateRequest(
        urn=URN, type=PASSWORD, properties=to_struct({"length": 8}), preview=True
    )
    answer = servicer().Create(request, Context())  # type: ignore[arg-type]
    outputs = to_dict(answer.properties)
    assert answer.id == ""
    assert outputs["result"] == UNKNOWN and outputs["length"] == 8


def test_a_password_has_the_length_and_classes_asked_for() -> None:
    request = provider_pb2.CreateRequest(
        urn=URN, type=PASSWORD, properties=to_struct({"length": 40, "special": False, "minNumeric": 5})
    )
    result = to_dict(servicer().Create(request, Context()).properties)["result"]  # type: ignore[arg-type]
    assert len(result) == 40 and result.isalnum()
    assert sum(c.isdigit() for c in result) >= 5


def test_an_impossible_password_is_refused_with_a_message_not_a_crash() -> None:
    request = provider_pb2.CreateRequest(
        urn=URN, type=PASSWORD, properties=to_struct({"length": 2, "minLower": 3})
    )
    with pytest.raises(Aborted, match="length must be at least 1 and cover every min_"):
        servicer().Create(request, Context())  # type: ignore[arg-type]


def test_an_unknown_resource_type_is_refused_by_name() -> None:
    request = provider_pb2.CheckRequest(urn=URN, type="random:index/randomUuid:RandomUuid")
    with pytest.raises(Aborted, match="unknown resource type random:index/randomUuid:RandomUuid"):
        servicer().Check(request, Context())  # type: ignore[arg-type]


def test_configuration_secrets_arrive_unwrapped() -> None:
    struct = to_struct({"apiToken": {SIG: SECRET_SIG, "value": "t0ken"}, "baseUrl": "http://x"})
    assert to_dict(struct) == {"apiToken": "t0ken", "baseUrl": "http://x"}


@given(st.from_regex(r"[a-z]+(_[a-z]+)*", fullmatch=True))
def test_api_names_survive_the_round_trip_through_pulumi_names(name: str) -> None:
    assert snake(camel(name)) == name
