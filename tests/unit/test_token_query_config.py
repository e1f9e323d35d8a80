"""Stack settings of gateway v3: `identity.oidc.accepted_token_types` (what the IdP's access tokens
say they are) and a route's `forward_query` (query parameters the gateway otherwise refuses),
validated strictly and carried to the Worker; and the key-set MAC secret every Worker is bound to."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.build.bindings import JWKS_KV_MAC_BINDING, identity_document, plan_bindings
from infra.config.errors import ConfigError
from infra.config.loader import PROJECT_ROOT, load_stack
from infra.config.model import StackConfig
from infra.config.sections import REFUSED_QUERY_PARAMETERS
from infra.policy.compiler import compile_gateway

BASE = load_stack("dev").config.model_dump(mode="json")


def stack_with(edit: Any) -> StackConfig:
    document = json.loads(json.dumps(BASE))
    edit(document)
    return StackConfig.model_validate(document)


def rejected(write_stack: Any, load: Any, set_keys: dict[str, Any]) -> str:
    write_stack(set_keys=set_keys)
    with pytest.raises(ConfigError) as caught:
        load()
    return caught.value.render()


def test_each_stack_says_what_its_idp_issues_and_the_worker_is_told() -> None:
    local, dev = load_stack("local").config, load_stack("dev").config
    assert local.identity.oidc.accepted_token_types == ("at+jwt",)
    assert dev.identity.oidc.accepted_token_types == ("untyped",)
    assert identity_document(local, "warehouse")["accepted_token_types"] == ["at+jwt"]
    assert identity_document(dev, "warehouse")["accepted_token_types"] == ["untyped"]
    # Access gateways verify Cloudflare's application tokens, whatever the OIDC IdP issues.
    assert dev.gateway_auth(dev.gateways["ingest"]) == "access"
    assert identity_document(dev, "ingest", "aud")["accepted_token_types"] == ["jwt", "untyped"]


def test_the_default_is_rfc_9068_access_tokens_only() -> None:
    stack = stack_with(lambda d: d["identity"]["oidc"].pop("accepted_token_types"))
    assert stack.identity.oidc.accepted_token_types == ("at+jwt",)


@pytest.mark.parametrize(
    ("value", "words"),
    [(["id_token"], "at+jwt"), ([], "at least one token type"), (["jwt", "jwt"], "listed twice")],
)
def test_bad_token_types_name_the_key_and_the_fix(
    write_stack: Any, load: Any, value: Any, words: str
) -> None:
    identity = {**BASE["identity"], "oidc": {**BASE["identity"]["oidc"], "accepted_token_types": value}}
    identity["oidc"]["client_secret"] = {"secret": "oktaClientSecret"}
    message = rejected(write_stack, load, {"identity": identity})
    assert "identity.oidc.accepted_token_types" in message
    assert words in message


def test_forward_query_reaches_the_route_document_in_canonical_spelling() -> None:
    def edit(document: dict[str, Any]) -> None:
        document["gateways"]["warehouse"]["routes"]["tables"]["forward_query"] = ["Access-Token", "_method"]

    routes = {r["name"]: r for r in compile_gateway(stack_with(edit), "warehouse").document["routes"]}
    assert routes["tables"]["forward_query"] == ["_method", "access_token"]
    assert routes["query"]["forward_query"] == []


@pytest.mark.parametrize(
    ("value", "words"),
    [(["limit"], "forwarded anyway"), (["access_token", "ACCESS-TOKEN"], "listed twice")],
)
def test_forward_query_names_only_refused_parameters(
    write_stack: Any, load: Any, value: Any, words: str
) -> None:
    gateways = json.loads(
        json.dumps(load_stack("dev").config.model_dump(mode="json", exclude_defaults=True)["gateways"])
    )
    gateways["warehouse"]["routes"]["tables"]["forward_query"] = value
    message = rejected(write_stack, load, {"gateways": gateways})
    assert "gateways.warehouse.routes.tables.forward_query" in message
    assert words in message


def test_the_refused_parameter_list_is_the_workers() -> None:
    source = (PROJECT_ROOT / "worker_templates" / "lib" / "query.js").read_text()
    overrides = re.search(r"METHOD_OVERRIDES = new Set\(\s*\((.*?)\)\.split", source, re.S)
    credentials = re.search(r"CREDENTIALS = new Set\(\[(.*?)\]\)", source, re.S)
    assert overrides and credentials
    names = " ".join(re.findall(r'"([^"]*)"', overrides.group(1))).split()
    names += re.findall(r'"([^"]*)"', credentials.group(1))
    assert set(names) == REFUSED_QUERY_PARAMETERS


def test_every_worker_is_bound_to_its_own_key_set_mac_secret() -> None:
    stack = load_stack("prod").config
    for gateway in stack.gateways:
        policy = compile_gateway(stack, gateway)
        (binding,) = [b for b in plan_bindings(stack, gateway, policy) if b.name == JWKS_KV_MAC_BINDING]
        assert binding.type == "secret_text"
        assert binding.fill == "random_secret"
        assert binding.text is None, "made by the deploy, never read from config"
