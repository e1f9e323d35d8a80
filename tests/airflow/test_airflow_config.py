"""A bad `airflow:` section stops the load with the key path, the problem and the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config.airflow_model import airflow_secret_keys, check_airflow
from infra.config.errors import ConfigError, StackRuleError
from infra.config.loader import LoadedStack


def rejected(load: Callable[[str], LoadedStack], name: str = "candidate") -> str:
    """The rendered error, whether the stack model runs `check_airflow` itself or not (yet)."""
    try:
        loaded = load(name)
    except ConfigError as error:
        message = error.render()
        assert f"stacks/Pulumi.{name}.yaml" in message
        return message
    with pytest.raises(StackRuleError) as caught:
        check_airflow(loaded.config)
    rule = caught.value
    return f"at {'.'.join(rule.path)}: {rule.problem}\n    fix: {rule.fix}"


def airflow(like: str = "dev", **changes: Any) -> dict[str, Any]:
    from tests.conftest import stack_document

    section = dict(stack_document(like)["config"]["airgate:airflow"])
    section.update(changes)
    return section


def test_example_stacks_pass_the_airflow_rules(load: Callable[[str], LoadedStack]) -> None:
    for name in ("local", "dev", "staging", "prod"):
        loaded = load(name)
        assert loaded.config.airflow is not None
        check_airflow(loaded.config)
    assert load("prod").config.airflow.executor == "KubernetesExecutor"  # type: ignore[union-attr]
    assert airflow_secret_keys(load("prod").config.airflow) == {
        "airflowDbUrl",
        "prodKubeconfig",
        "airflowUiOidcSecret",
    }


def test_unknown_executor(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(executor="SequentialExecutor")})
    message = rejected(load)
    assert "airflow.executor" in message
    assert "KubernetesExecutor" in message
    assert "fix: use one of the listed values" in message


def test_prod_without_a_database_secret(write_stack: Any, load: Any) -> None:
    write_stack(like="prod", set_keys={"airflow": airflow("prod", database={"bundled_postgres": True})})
    message = rejected(load)
    assert "airflow.database.url" in message
    assert "a prod stack needs an external metadata database" in message
    assert "pulumi config set --secret airgate:airflowDbUrl" in message


def test_no_database_at_all(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(database={})})
    message = rejected(load)
    assert "airflow.database.url: no metadata database is configured" in message


def test_database_url_in_plain_text(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(database={"url": "postgresql://u:p@db/airflow"})})
    message = rejected(load)
    assert "airflow.database.url" in message
    assert "a secret is written in plain text" in message
    assert "pulumi config set --secret" in message
    assert "u:p@db" not in message  # the error does not repeat the secret


@pytest.mark.parametrize("version", ["1.x", "^1.18.0", ">=1.18", "latest", "1.18"])
def test_unpinned_chart_version(write_stack: Any, load: Any, version: str) -> None:
    write_stack(set_keys={"airflow": airflow(chart={"version": version})})
    message = rejected(load)
    assert "airflow.chart.version" in message
    assert "is not pinned" in message
    assert "1.22.0" in message


def test_missing_chart_version(write_stack: Any, load: Any) -> None:
    # The stacks' sections merge over shared.yaml's, where the version is written once.
    write_stack(shared=lambda base: base["airflow"]["chart"].pop("version"))
    assert "airflow.chart.version: required key is missing" in rejected(load)


def test_chart_mirror_must_be_https_or_oci(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(chart={"repository": "http://mirror", "version": "1.18.0"})})
    assert "https:// or oci://" in rejected(load)


def test_undeclared_task_role(write_stack: Any, load: Any) -> None:
    write_stack(like="staging", set_keys={"airflow": airflow("staging", task_roles={"robot": {}})})
    message = rejected(load)
    assert "airflow.task_roles.robot" in message
    assert "role 'robot' is not declared" in message


def test_task_role_without_machine_identity(write_stack: Any, load: Any) -> None:
    write_stack(
        like="staging",
        set_keys={"airflow": airflow("staging", task_roles={"analyst": {}}, default_task_role="analyst")},
    )
    message = rejected(load)
    assert "airflow.task_roles.analyst" in message
    assert "no machine identity" in message


def test_oidc_gateway_needs_the_client_secret(write_stack: Any, load: Any) -> None:
    # dev's warehouse gateway is in oidc mode; drop the task role's client secret.
    write_stack(set_keys={"airflow": airflow(task_roles={"airflow-worker": {}})})
    message = rejected(load)
    assert "airflow.task_roles.airflow-worker.oidc_client_secret" in message
    assert "'warehouse' is in oidc mode" in message


def test_hostname_outside_the_zone(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(ui_hostname="airflow.example.org")})
    message = rejected(load)
    assert "airflow.ui_hostname" in message
    assert "outside the stack's zone" in message


def test_trigger_gateway_must_point_at_the_tunnel(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(api_hostname="airflow-private.dev.acme-data.com")})
    message = rejected(load)
    assert "gateways.trigger.upstream.url" in message
    assert "https://airflow-private.dev.acme-data.com" in message


def test_standalone_only_in_local(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(runtime="standalone")})
    message = rejected(load)
    assert "airflow.runtime" in message
    assert "local environment" in message


def test_pip_at_pod_start_refused_in_prod(write_stack: Any, load: Any) -> None:
    # Merges over shared.yaml's image (repository, tag).
    image = {"pip_additional_requirements": "airflow-gateway-auth"}
    write_stack(like="prod", set_keys={"airflow": airflow("prod", image=image)})
    message = rejected(load)
    assert "airflow.image.pip_additional_requirements" in message
    assert "development only" in message


def test_kubernetes_needs_sign_in(write_stack: Any, load: Any) -> None:
    write_stack(shared=lambda base: base["airflow"].pop("sign_in"))
    message = rejected(load)
    assert "airflow.sign_in" in message
    assert "identity provider" in message


def test_sign_in_secret_is_never_plain_text(write_stack: Any, load: Any) -> None:
    sign_in = {"client_id": "abc", "client_secret": "hunter2"}
    write_stack(set_keys={"airflow": airflow(sign_in=sign_in)})
    message = rejected(load)
    assert "airflow.sign_in.client_secret" in message
    assert "pulumi config set --secret" in message


def test_ui_roles_must_be_mapped(write_stack: Any, load: Any) -> None:
    write_stack(shared=lambda base: base["airflow"].pop("ui_roles"))
    message = rejected(load)
    assert "airflow.ui_roles" in message
    assert "nobody could sign in" in message


def test_ui_roles_name_people_roles_with_groups(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(ui_roles={"Viewer": ["airflow-worker"]})})
    message = rejected(load)
    assert "airflow.ui_roles.Viewer" in message
    assert "'airflow-worker' is not a declared role with IdP groups" in message


def test_ui_roles_must_pass_access(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(ui_roles={"Viewer": ["analyst"]})})
    message = rejected(load)
    assert "airflow.ui_roles.Viewer" in message
    assert "add analyst to airflow.ui_access_roles" in message


def test_only_airflows_own_roles_can_be_mapped(write_stack: Any, load: Any) -> None:
    write_stack(set_keys={"airflow": airflow(ui_roles={"Superuser": ["platform-admin"]})})
    message = rejected(load)
    assert "airflow.ui_roles" in message


def test_the_bundled_database_image_must_be_pinned(write_stack: Any, load: Any) -> None:
    database = {"bundled_postgres": True, "postgres_image": "postgres:latest"}
    write_stack(set_keys={"airflow": airflow(database=database)})
    message = rejected(load)
    assert "airflow.database.postgres_image" in message
    assert "not pinned" in message
