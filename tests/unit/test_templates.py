"""Worker templates: Jinja decides structure only; every inlined value goes through `| tojson`."""

from __future__ import annotations

import re

import jinja2
import pytest

from infra.build.templates import TEMPLATES_DIR, jinja_environment, render_sources
from infra.config.loader import load_stack

EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)


def test_every_expression_in_a_js_template_goes_through_tojson() -> None:
    templates = sorted(TEMPLATES_DIR.rglob("*.j2"))
    assert templates, "no templates found"
    offenders = [
        f"{path.relative_to(TEMPLATES_DIR)}: {{{{{body}}}}}"
        for path in templates
        for body in EXPRESSION.findall(path.read_text())
        if not re.search(r"\|\s*tojson\s*$", body.strip())
    ]
    assert offenders == []


def test_the_check_catches_a_bare_expression(tmp_path: object) -> None:
    bad = "const x = {{ gateway.name }};"
    assert not re.search(r"\|\s*tojson\s*$", EXPRESSION.findall(bad)[0].strip())


def test_missing_template_variable_fails_loudly() -> None:
    env = jinja_environment()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ nothing_here | tojson }}").render()


def test_runtime_values_are_not_inlined() -> None:
    stack = load_stack("prod").config
    for gateway_name, gateway in stack.gateways.items():
        text = "\n".join(render_sources(stack, gateway_name).values())
        assert gateway.upstream.url not in text
        assert gateway.hostname not in text
        assert stack.identity.oidc.client_id not in text


def test_structure_follows_the_gateway_kind_and_auth() -> None:
    dev = load_stack("dev").config
    ingest = render_sources(dev, "ingest")["gateway.js"]
    warehouse = render_sources(dev, "warehouse")["gateway.js"]
    trigger = render_sources(dev, "trigger")["gateway.js"]
    assert "accessVerifier" in ingest and "oidcVerifier" not in ingest
    assert "oidcVerifier" in warehouse
    assert "dagTriggerHandler" in trigger and "proxyHandler" not in trigger
