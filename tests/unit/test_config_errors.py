"""Every way a stack can be wrong stops the load with the file, the key path and the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config.errors import ConfigError
from infra.config.loader import LoadedStack
from tests.conftest import stack_document


def rejected(load: Callable[[str], LoadedStack], name: str = "candidate") -> str:
    with pytest.raises(ConfigError) as caught:
        load(name)
    message = caught.value.render()
    assert f"stacks/Pulumi.{name}.yaml" in message
    assert "nothing was created" in message
    return message


def test_example_stacks_load(load: Callable[[str], LoadedStack]) -> None:
    for name in ("local", "dev", "staging", "prod"):
        loaded = load(name)
        assert loaded.config.environment == name
        assert set(loaded.config.gateways) == {"ingest", "warehouse", "trigger"}


def test_unknown_key(write_stack: Any, load: Any) -> None:
    write_stack(
        set_keys={
            "gateways": {
                "ingest": {
                    "hostname": "ingest.dev.acme-data.com",
                    "upstrem": {"url": "https://x.dev.acme-data.com"},
                }
            }
        }
    )
    message = rejected(load)
    assert "gateways.ingest.upstrem: unknown key" in message
    assert "fix: remove it or correct its spelling" in message


def test_unknown_top_level_key(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"gatewayz": {}})
    assert "at gatewayz: unknown key" in rejected(load)


@pytest.mark.parametrize(
    ("section", "text"),
    [
        (
            "gateways",
            "  airgate:gateways:\n    ingest: {hostname: a.dev.acme-data.com}\n"
            "    ingest: {hostname: b.dev.acme-data.com}\n",
        ),
        ("roles", "  airgate:roles:\n    analyst: {groups: [a]}\n    analyst: {groups: [b]}\n"),
        (
            "routes",
            "  airgate:gateways:\n    ingest:\n      routes:\n"
            "        health: {path: /a, methods: [GET], roles: [analyst]}\n"
            "        health: {path: /b, methods: [GET], roles: [analyst]}\n",
        ),
    ],
)
def test_duplicate_names(write_stack: Any, load: Any, section: str, text: str) -> None:
    write_stack(raw="config:\n  airgate:extends: shared.yaml\n  airgate:environment: dev\n" + text)
    message = rejected(load)
    assert "appears twice" in message
    assert "names are unique" in message


def test_route_grants_undeclared_role(write_stack: Any, load: Any) -> None:
    def change(base: dict[str, Any]) -> None:
        base["gateways"]["ingest"]["routes"]["health"]["roles"].append("interns")

    write_stack(shared=change)
    message = rejected(load)
    assert "gateways.ingest.routes.health.roles: role 'interns' is not declared" in message
    assert "declare it under roles" in message


def test_role_without_members(write_stack: Any, load: Any) -> None:
    write_stack(shared=lambda base: base["roles"].update({"auditor": {"description": "none"}}))
    message = rejected(load)
    assert "roles.auditor: role has no members" in message
    assert "add groups, emails, service_tokens or oidc_clients" in message


def test_hostname_outside_zone(write_stack: Any, load: Any) -> None:
    write_stack(
        set_keys={
            "gateways": {
                "ingest": {
                    "hostname": "ingest.evil.example",
                    "upstream": {"url": "https://i.dev.acme-data.com"},
                },
                "warehouse": {
                    "hostname": "warehouse.dev.acme-data.com",
                    "auth": "oidc",
                    "behind_access": False,
                    "upstream": {"url": "https://w.dev.acme-data.com"},
                },
                "trigger": {
                    "hostname": "trigger.dev.acme-data.com",
                    "upstream": {"url": "https://a.dev.acme-data.com"},
                },
            }
        }
    )
    message = rejected(load)
    assert "gateways.ingest.hostname: 'ingest.evil.example' is outside the stack's zone" in message
    assert "use a name ending in .dev.acme-data.com" in message


def test_shadowing_routes(write_stack: Any, load: Any) -> None:
    def change(base: dict[str, Any]) -> None:
        base["gateways"]["ingest"]["routes"]["batch-any"] = {
            "path": "/v1/batches/*",
            "methods": ["GET", "DELETE"],
            "roles": ["data-engineer"],
        }

    write_stack(shared=change)
    message = rejected(load)
    assert "gateways.ingest.routes.batch-any.path" in message
    assert "shadows route 'batch-status'" in message
    assert "make one path more specific" in message


@pytest.mark.parametrize("value", [0, -5])
def test_rate_limit_must_be_positive(write_stack: Any, load: Any, value: int) -> None:
    def change(base: dict[str, Any]) -> None:
        base["gateways"]["warehouse"]["routes"]["query"]["rate_limit"]["requests"] = value

    write_stack(shared=change)
    message = rejected(load)
    assert "gateways.warehouse.routes.query.rate_limit.requests: must be greater than 0" in message


@pytest.mark.parametrize("value", ["2026-13-01", "01/11/2026", "2026-1-5", "soon"])
def test_malformed_compatibility_date(write_stack: Any, load: Any, value: str) -> None:
    write_stack(set_keys={"compatibility_date": value})
    message = rejected(load)
    assert "compatibility_date:" in message
    assert "YYYY-MM-DD" in message


def test_prod_requires_access_on_every_gateway(write_stack: Any, load: Any) -> None:
    document_gateways = {
        "ingest": {"hostname": "ingest.acme-data.com", "upstream": {"url": "https://i.acme-data.com"}},
        "warehouse": {
            "hostname": "warehouse.acme-data.com",
            "auth": "oidc",
            "behind_access": False,
            "upstream": {"url": "https://w.acme-data.com"},
        },
        "trigger": {"hostname": "trigger.acme-data.com", "upstream": {"url": "https://a.acme-data.com"}},
    }
    write_stack(like="prod", set_keys={"gateways": document_gateways})
    message = rejected(load)
    assert "gateways.warehouse.behind_access: a prod gateway must sit behind Cloudflare Access" in message


def test_inline_secret_is_refused(write_stack: Any, load: Any) -> None:
    write_stack(
        set_keys={
            "identity": {
                "mode": "access",
                "access": {"team_domain": "acme-dev.cloudflareaccess.com"},
                "oidc": {"client_secret": "hunter2-but-longer"},
            }
        }
    )
    message = rejected(load)
    assert "identity.oidc.client_secret: a secret is written in plain text" in message
    assert "pulumi config set --secret airgate:oidcClientSecret" in message
    assert "hunter2" not in message


def test_plain_value_for_a_secret_key_is_refused(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"oktaClientSecret": "not-encrypted"})
    message = rejected(load)
    assert "airgate:oktaClientSecret: holds a plain-text value, but it is used as a secret" in message
    assert "pulumi config set --secret airgate:oktaClientSecret -s candidate" in message
    assert "not-encrypted" not in message


def test_encrypted_secret_is_accepted(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"oktaClientSecret": {"secure": "v1:abcdef"}})
    loaded = load("candidate")
    assert "oktaClientSecret" in loaded.secret_keys
    assert "oktaClientSecret" not in loaded.missing_secrets


def test_plain_http_upstream_outside_local(write_stack: Any, load: Any) -> None:
    write_stack(
        set_keys={
            "gateways": {
                "ingest": {
                    "hostname": "ingest.dev.acme-data.com",
                    "upstream": {"url": "http://10.0.0.5:8080"},
                },
                "warehouse": {
                    "hostname": "warehouse.dev.acme-data.com",
                    "auth": "oidc",
                    "behind_access": False,
                    "upstream": {"url": "https://w.dev.acme-data.com"},
                },
                "trigger": {
                    "hostname": "trigger.dev.acme-data.com",
                    "upstream": {"url": "https://a.dev.acme-data.com"},
                },
            }
        }
    )
    message = rejected(load)
    assert "gateways.ingest.upstream.url: 'http://10.0.0.5:8080' is not https" in message


def test_plain_http_upstream_allowed_in_local(load: Any) -> None:
    assert load("local").config.gateways["ingest"].upstream.url.startswith("http://127.0.0.1")


def test_dag_grant_to_unknown_gateway(write_stack: Any, load: Any) -> None:
    write_stack(
        shared=lambda base: base["dag_grants"].append({"gateway": "airflow", "role": "ci", "dags": ["x"]})
    )
    message = rejected(load)
    assert "dag_grants.4.gateway: gateway 'airflow' is not declared" in message
    assert "use one of: ingest, trigger, warehouse" in message


def test_dag_grant_on_a_proxy_gateway(write_stack: Any, load: Any) -> None:
    write_stack(
        shared=lambda base: base["dag_grants"].append({"gateway": "ingest", "role": "ci", "dags": ["x"]})
    )
    assert "is a proxy gateway, not a dag_trigger one" in rejected(load)


def test_access_auth_needs_access_app(write_stack: Any, load: Any) -> None:
    gateways = stack_document("dev")["config"]["airgate:gateways"]
    gateways["ingest"]["behind_access"] = False
    write_stack(set_keys={"gateways": gateways})
    message = rejected(load)
    assert "gateways.ingest.behind_access" in message
    assert "auth 'access' validates the Access JWT" in message


def test_missing_stack_file_lists_known_stacks(load: Any) -> None:
    message = rejected(load, "nope")
    assert "no such stack file" in message
    assert "local, prod, staging" in message.replace("dev, ", "")


def test_invalid_yaml(write_stack: Any, load: Any) -> None:
    write_stack(raw="config: [unclosed\n")
    assert "not valid YAML" in rejected(load)


def test_deleting_a_durable_object_class_needs_a_flag(write_stack: Any, load: Any) -> None:
    write_stack(
        shared=lambda base: base["durable_object_migrations"].append(
            {"tag": "v2", "deleted_classes": ["RateLimiter"]}
        )
    )
    message = rejected(load)
    assert "durable_object_migrations.1.deleted_classes" in message
    assert "allow_deleting_classes: true" in message


def test_config_is_frozen(load: Any) -> None:
    config = load("dev").config
    with pytest.raises(ValueError, match="frozen"):
        config.zone = "other.example"  # type: ignore[misc]
