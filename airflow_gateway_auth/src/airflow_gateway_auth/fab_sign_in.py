"""People's sign-in to Airflow through FAB's OAuth login against the stack's OpenID provider.

airgate writes a two-line `webserver_config.py` (infra/airflow/sign_in.py) that calls `configure()`
with the issuer, the client, the groups claim and the group -> Airflow role mapping; FAB reads the
upper-case names it returns. The client secret is read from an environment variable at start-up
(a Kubernetes Secret on the API server only), never written into the file.

`AirgateSecurityManager` reads the person from the provider's userinfo endpoint (standard OIDC claims:
`sub`, `email`, and the groups claim), and refuses anyone in none of the mapped groups: there is no
default role for strangers, and no password account for people. The refused person gets a page (403)
saying so, with the groups they hold and the groups that would give them a role, instead of FAB's
"Invalid login. Please try again.", which sends them back to a login that would refuse them again.

FAB behaviour relied on (apache-airflow-providers-fab 3.10, flask-appbuilder 5): `AUTH_ROLES_MAPPING`
maps `role_keys` to FAB roles and `AUTH_ROLES_SYNC_AT_LOGIN` re-applies it at every sign-in
(https://flask-appbuilder.readthedocs.io/en/latest/security.html#role-based); `OAUTH_PROVIDERS`
entries take authlib's `server_metadata_url` for OIDC discovery.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

PROVIDER_NAME = "airgate"
NO_ROLE_TEMPLATE = """{% extends "appbuilder/base.html" %}
{% block content %}
<div class="container" style="max-width: 46em; margin-top: 2em">
  <h2>No Airflow role for your groups</h2>
  <p>You signed in as <strong>{{ who }}</strong>, but
  {% if held %}your groups ({{ held | join(", ") }}) give{% else %}your sign-in carried no groups
  (claim <code>{{ claim }}</code>), which gives{% endif %} no Airflow role, so Airflow did not sign
  you in.</p>
  {% if would %}
  <p>These groups would give you one:</p>
  <table class="table table-condensed" id="airgate-role-groups">
    <thead><tr><th>group</th><th>Airflow role</th></tr></thead>
    <tbody>
    {% for group, roles in would %}<tr><td>{{ group }}</td><td>{{ roles | join(", ") }}</td></tr>{% endfor %}
    </tbody>
  </table>
  <p>Ask whoever manages these groups at your identity provider to add you to one, then
  <a href="{{ login_url }}">sign in again</a>.</p>
  {% else %}
  <p>No group gives an Airflow role here: the deployment maps none (<code>airflow.ui_roles</code>).</p>
  {% endif %}
</div>
{% endblock %}
"""


def configure(settings: dict[str, Any]) -> dict[str, Any]:
    """The FAB settings for `settings` = {issuer, client_id, client_secret_env, scope, roles_claim,
    roles_mapping: {group: [Airflow role, ...]}}."""
    from flask_appbuilder.const import AUTH_OAUTH

    secret_env = settings["client_secret_env"]
    secret = os.environ.get(secret_env)
    if not secret:
        raise RuntimeError(f"sign-in: the OAuth client secret is missing from ${secret_env}")
    issuer = str(settings["issuer"]).rstrip("/")
    return {
        "AUTH_TYPE": AUTH_OAUTH,
        "AUTH_USER_REGISTRATION": True,
        "AUTH_USER_REGISTRATION_ROLE": "Public",  # unused: roles come from the mapping only
        "AUTH_ROLES_SYNC_AT_LOGIN": True,
        "AUTH_ROLES_MAPPING": {group: list(roles) for group, roles in settings["roles_mapping"].items()},
        "AIRGATE_ROLES_CLAIM": settings["roles_claim"],
        "SECURITY_MANAGER_CLASS": AirgateSecurityManager(),
        "WTF_CSRF_ENABLED": True,
        "OAUTH_PROVIDERS": [
            {
                "name": PROVIDER_NAME,
                "icon": "fa-openid",
                "token_key": "access_token",
                "remote_app": {
                    "client_id": settings["client_id"],
                    "client_secret": secret,
                    "server_metadata_url": f"{issuer}/.well-known/openid-configuration",
                    "client_kwargs": {"scope": settings["scope"], "code_challenge_method": "S256"},
                },
            }
        ],
    }


def refusal(userinfo: dict[str, Any], mapping: dict[str, list[str]]) -> dict[str, Any]:
    """What the refusal page says: who signed in, the groups they hold, and (group, Airflow roles)
    for each group that would give a role."""
    who = userinfo.get("email") or userinfo["username"]
    return {
        "who": who,
        "held": sorted(str(group) for group in userinfo.get("role_keys", [])),
        "would": [(group, sorted(roles)) for group, roles in sorted(mapping.items()) if roles],
    }


def AirgateSecurityManager() -> type:
    """Built on first use so importing this module does not import FAB (and Flask)."""
    from airflow.providers.fab.auth_manager.security_manager.override import (
        FabAirflowSecurityManagerOverride,
    )
    from airflow.providers.fab.auth_manager.views.auth_oauth import CustomAuthOAuthView
    from flask import current_app, g, render_template_string, session
    from flask_appbuilder import expose

    class _AirgateAuthOAuthView(CustomAuthOAuthView):
        @expose("/oauth-authorized/<provider>")
        def oauth_authorized(self, provider: str) -> Any:
            response = super().oauth_authorized(provider)
            refused = g.pop("airgate_refused", None)
            if refused is None:
                return response
            # FAB queued "Invalid login" for the login page and kept the provider's token in the
            # session: neither is wanted by someone who is not signed in and is told why here.
            for key in ("_flashes", "oauth", "oauth_provider"):
                session.pop(key, None)
            page = render_template_string(
                NO_ROLE_TEMPLATE,
                base_template=self.appbuilder.base_template,
                appbuilder=self.appbuilder,
                claim=current_app.config.get("AIRGATE_ROLES_CLAIM", "groups"),
                login_url=self.appbuilder.get_url_for_login,
                **refused,
            )
            return page, 403

    class _AirgateSecurityManager(FabAirflowSecurityManagerOverride):  # type: ignore[misc]
        authoauthview = _AirgateAuthOAuthView

        def get_oauth_user_info(self, provider: str, resp: dict[str, Any]) -> dict[str, Any]:
            data = self.oauth_remotes[provider].userinfo()
            claim = current_app.config.get("AIRGATE_ROLES_CLAIM", "groups")
            groups = data.get(claim) or []
            if isinstance(groups, str):
                groups = [groups]
            return {
                "username": data["sub"],
                "email": data.get("email", ""),
                "first_name": data.get("given_name", ""),
                "last_name": data.get("family_name", ""),
                "role_keys": list(groups),
            }

        def _oauth_calculate_user_roles(self, userinfo: dict[str, Any]) -> list[Any]:
            # Only the mapped roles: FAB would add AUTH_USER_REGISTRATION_ROLE to everyone.
            return list(self.get_roles_from_keys(userinfo.get("role_keys", [])))

        def auth_user_oauth(self, userinfo: dict[str, Any], rotate_session_id: bool = True) -> Any:
            if not self.get_roles_from_keys(userinfo.get("role_keys", [])):
                log.warning(
                    "sign-in refused: %s is in no group mapped to an Airflow role", userinfo["username"]
                )
                g.airgate_refused = refusal(userinfo, current_app.config.get("AUTH_ROLES_MAPPING", {}))
                return None
            return super().auth_user_oauth(userinfo, rotate_session_id)

    return _AirgateSecurityManager
