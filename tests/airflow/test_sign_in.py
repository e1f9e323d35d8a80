"""The sign-in plan and the `webserver_config.py` it becomes: the same stack gives the same bytes, no
secret is in it, and executed the way FAB executes it, it yields OAuth against the stack's issuer with
the group -> role mapping of `airflow.ui_roles`."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.airflow.sign_in import CLIENT_SECRET_ENV, plan_sign_in, roles_mapping, webserver_config
from infra.config.loader import load_stack

PROD = load_stack("prod").config


def executed(text: str) -> dict[str, Any]:
    """What FAB's `config.from_pyfile` keeps: the upper-case names the file defines."""
    namespace: dict[str, Any] = {"__file__": "webserver_config.py"}
    exec(compile(text, "webserver_config.py", "exec"), namespace)
    return {key: value for key, value in namespace.items() if key.isupper()}


def test_groups_map_to_airflow_roles() -> None:
    assert roles_mapping(PROD) == {"data-engineering": ("User",), "platform": ("Admin",)}


def test_the_config_names_the_issuer_client_and_mapping_and_holds_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = webserver_config(plan_sign_in(PROD))
    assert text == webserver_config(plan_sign_in(PROD))  # same stack, same bytes
    monkeypatch.setenv(CLIENT_SECRET_ENV, "the-client-secret")
    assert "the-client-secret" not in text
    config = executed(text)
    from flask_appbuilder.const import AUTH_OAUTH

    assert config["AUTH_TYPE"] == AUTH_OAUTH
    assert config["AUTH_ROLES_MAPPING"] == {"data-engineering": ["User"], "platform": ["Admin"]}
    assert config["AUTH_ROLES_SYNC_AT_LOGIN"] is True
    [provider] = config["OAUTH_PROVIDERS"]
    remote = provider["remote_app"]
    assert provider["name"] == "airgate"
    assert (
        remote["server_metadata_url"]
        == "https://acme.okta.com/oauth2/default/.well-known/openid-configuration"
    )
    assert remote["client_id"] == "0oa1airgateairflowui"
    assert remote["client_secret"] == "the-client-secret"  # from the environment, at start-up
    assert remote["client_kwargs"]["code_challenge_method"] == "S256"
    from airflow.providers.fab.auth_manager.security_manager.override import (
        FabAirflowSecurityManagerOverride,
    )

    assert issubclass(config["SECURITY_MANAGER_CLASS"], FabAirflowSecurityManagerOverride)


def test_a_missing_client_secret_stops_the_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLIENT_SECRET_ENV, raising=False)
    with pytest.raises(RuntimeError, match=CLIENT_SECRET_ENV):
        executed(webserver_config(plan_sign_in(PROD)))


@settings(max_examples=25, deadline=None)
@given(
    mapping=st.dictionaries(
        st.sampled_from(["Admin", "Op", "User", "Viewer"]),
        st.lists(st.sampled_from(["platform-admin", "data-engineer"]), min_size=1, max_size=2, unique=True),
        min_size=1,
    )
)
def test_every_mapped_group_gets_exactly_its_roles(mapping: dict[str, list[str]]) -> None:
    assert PROD.airflow is not None
    stack = PROD.model_copy(
        update={
            "airflow": PROD.airflow.model_copy(
                update={"ui_roles": {role: tuple(names) for role, names in mapping.items()}}
            )
        }
    )
    result = roles_mapping(stack)
    for airflow_role, names in mapping.items():
        for name in names:
            for group in stack.roles[name].groups:
                assert airflow_role in result[group]
    granted = {role for roles in result.values() for role in roles}
    assert granted == set(mapping)


def test_the_api_server_gets_the_config_its_secret_and_the_public_scheme() -> None:
    from infra.airflow.plan import plan_airflow

    plan = plan_airflow("prod", PROD)
    assert plan is not None and plan.kubernetes is not None
    values = plan.kubernetes.helm_values
    assert values["apiServer"]["apiServerConfig"] == webserver_config(plan_sign_in(PROD))
    [env] = values["apiServer"]["env"]
    assert env["name"] == CLIENT_SECRET_ENV
    assert env["valueFrom"]["secretKeyRef"]["name"] == plan.kubernetes.secret_names.sign_in
    assert values["config"]["fab"] == {"enable_proxy_fix": "True"}
    assert values["createUserJob"] == {
        "enabled": False,
        "serviceAccount": {"create": False},
    }  # no chart-made password account
    assert "defaultUser" not in values["apiServer"]  # the release's schema refuses it


def test_someone_refused_is_told_their_groups_and_the_groups_that_would_give_a_role() -> None:
    from airflow_gateway_auth.fab_sign_in import NO_ROLE_TEMPLATE, refusal
    from jinja2 import DictLoader, Environment

    # FAB's layout reduced to the block the page fills; autoescaping as Flask renders it.
    layout = Environment(
        loader=DictLoader({"appbuilder/base.html": "{% block content %}{% endblock %}"}), autoescape=True
    )
    mapping = {"platform": ["Admin"], "data-engineering": ["User", "Op"], "retired": []}
    person = {"username": "00u1", "email": "ana@acme-data.com", "role_keys": ["analytics", "<b>x</b>"]}
    page = layout.from_string(NO_ROLE_TEMPLATE).render(
        claim="groups", login_url="/auth/login/", **refusal(person, mapping)
    )
    assert "You signed in as <strong>ana@acme-data.com</strong>" in page
    assert "your groups (&lt;b&gt;x&lt;/b&gt;, analytics) give" in page
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", page)
    assert rows == [("data-engineering", "Op, User"), ("platform", "Admin")]
    assert '<a href="/auth/login/">sign in again</a>' in page

    nobody = layout.from_string(NO_ROLE_TEMPLATE).render(
        claim="groups", login_url="/auth/login/", **refusal({"username": "00u2", "role_keys": []}, {})
    )
    assert "You signed in as <strong>00u2</strong>" in nobody
    assert "carried no groups" in nobody and "maps none" in nobody
