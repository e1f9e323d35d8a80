"""People's sign-in to Airflow through FAB's OAuth login against the stack's OpenID provider.

airgate writes a two-line `webserver_config.py` (infra/airflow/sign_in.py) that calls `configure()`
with the issuer, the client, the groups claim and the group -> Airflow role mapping; FAB reads the
upper-case names it returns. The client secret is read from an environment variable at start-up
(a Kubernetes Secret on the API server only), never written into the file.

`AirgateSecurityManager` reads the person from the provider's userinfo endpoint (standard OIDC claims:
`sub`, `email`, and the groups claim), and refuses anyone in none of the mapped groups: there is no
default role for strangers, and no password account for people.

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


def AirgateSecurityManager() -> type:
    """Built on first use so importing this module does not import FAB (and Flask)."""
    from airflow.providers.fab.auth_manager.security_manager.override import (
        FabAirflowSecurityManagerOverride,
    )
    from flask import current_app

    class _AirgateSecurityManager(FabAirflowSecurityManagerOverride):  # type: ignore[misc]
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
                return None
            return super().auth_user_oauth(userinfo, rotate_session_id)

    return _AirgateSecurityManager
