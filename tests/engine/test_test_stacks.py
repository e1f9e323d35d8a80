"""`airgate stack create/list/destroy/sweep` through the Automation API against the real CLI and
engine: a pull request's stack is derived from dev, deployed into the Cloudflare API emulator,
listed, refused while it holds a protected resource, let expire and swept, after which the
backend no longer has it and the account holds nothing again. A protected stack (prod) is refused
and never swept.

The commands run as a user runs them: from the project folder, the Pulumi CLI found by the
workspace itself (the project's `.tools/bin`, not PATH), the backend, passphrase and Cloudflare
credentials from the environment (CLOUDFLARE_API_TOKEN and CLOUDFLARE_BASE_URL, which both the
provider and the official client read), the test stack's secrets as AIRGATE_SECRET_*. Only the
clock is moved, to let the stack expire.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

import infra.cli.stacks as stacks_cli
from infra.cli.main import app
from infra.config.loader import PROJECT_ROOT, load_stack, referenced_secrets
from infra.ephemeral.service import secret_env_name
from infra.ephemeral.workspace import CloudflareUsage
from tests.engine.conftest import Deployment
from tests.engine.project import EngineProject

# What the account holds, kind by kind, in the emulator's state file.
HOLDINGS = ("scripts", "kv_namespaces", "worker_domains", "logpush_jobs", "tunnels", "access")


def holdings(deployment: Deployment) -> dict[str, Any]:
    account = deployment.account("dev")
    return {kind: account[kind] for kind in HOLDINGS}


def airgate(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def stack_names(deployment: Deployment) -> set[str]:
    listed = json.loads(deployment.project.pulumi("stack", "ls", "--json").stdout)
    return {entry["name"] for entry in listed}


def test_a_pull_requests_stack_is_created_deployed_expired_and_swept(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = deployment.project
    (project.root / ".tools").symlink_to(PROJECT_ROOT / ".tools")  # what ./dev setup leaves in a checkout
    environment = project.env()
    for key in ("PULUMI_HOME", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_SKIP_UPDATE_CHECK"):
        monkeypatch.setenv(key, environment[key])
    monkeypatch.setenv("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
    # The CLI is not on PATH: the workspace must find the project's own.
    monkeypatch.setenv(
        "PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if ".tools" not in p)
    )
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", deployment.token)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", deployment.api.base_url)
    for key in referenced_secrets(load_stack("dev", project.stacks_dir).config):
        monkeypatch.setenv(secret_env_name(key), f"pr-42-{key}")
    monkeypatch.chdir(project.root)
    empty = holdings(deployment)
    project.pulumi("stack", "init", "prod")  # a long-lived, protected stack in the same backend

    created = airgate("stack", "create", "--pr", "42")
    assert created.exit_code == 0, created.output
    assert "created pr-42 from dev" in created.stdout
    scripts = deployment.account("dev")["scripts"]
    assert isinstance(scripts, dict)
    assert sorted(scripts) == [f"airgate-pr-42-{gateway}" for gateway in ("ingest", "trigger", "warehouse")]
    # The caps are counted from what the account really holds, through the official client.
    usage = CloudflareUsage(
        load_stack("dev", project.stacks_dir).config.account_id, deployment.token
    ).in_use()
    assert usage == {"service_tokens": 3, "access_apps": 2, "identity_providers": 1}

    listed = airgate("stack", "list")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "ephemeral" in rows["pr-42"] and "base=dev" in rows["pr-42"] and "live" in rows["pr-42"]
    assert "long-lived" in rows["prod"] and "protected" in rows["prod"]

    refused = airgate("stack", "destroy", "--stack", "prod")
    assert refused.exit_code == 1 and "not an ephemeral" in refused.stderr

    # A resource someone protected by hand in the pr stack's state stops its destroy.
    [namespace] = [r["urn"] for r in project.resources("pr-42") if r["urn"].endswith("::ingest-kv")]
    project.pulumi("state", "protect", "-s", "pr-42", namespace, "--yes")
    refused = airgate("stack", "destroy", "--stack", "pr-42")
    assert refused.exit_code == 1 and "holds 1 protected resource" in refused.stderr
    assert sorted(deployment.account("dev")["scripts"]) == sorted(scripts)  # type: ignore[call-overload]
    project.pulumi("state", "unprotect", "-s", "pr-42", namespace, "--yes")

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=72, minutes=1)
    monkeypatch.setattr(stacks_cli, "now", lambda: expires)
    swept = airgate("stack", "sweep")
    assert swept.exit_code == 0, swept.output
    outcome = {
        line.split()[0]: line
        for line in swept.stdout.splitlines()
        if line.split()[:1] in (["pr-42"], ["prod"])
    }
    assert "destroy" in outcome["pr-42"] and "expired at" in outcome["pr-42"]
    assert "skip" in outcome["prod"]

    assert stack_names(deployment) == {"prod"}
    assert not (project.stacks_dir / "Pulumi.pr-42.yaml").exists()
    assert holdings(deployment) == empty


def test_pulumi_config_set_stores_a_top_level_null_as_empty(
    tmp_path: Path, plugin_launchers: dict[str, Path]
) -> None:
    """Why `stack create` writes no null (pulumi/pulumi#19483): the first `pulumi config set` of a
    secret rewrites the file, a top-level null coming back as "" (nested ones stay null)."""
    project = EngineProject.lay_out(tmp_path, plugin_launchers)
    path = project.stacks_dir / "Pulumi.pr-9.yaml"
    path.write_text(
        yaml.safe_dump({"config": {"airgate:airflow": None, "airgate:review": {"exceptions": None}}})
    )
    project.pulumi("stack", "init", "pr-9")
    project.pulumi("config", "set", "-s", "pr-9", "--secret", "airgate:oktaClientSecret", "--", "value")
    config = yaml.safe_load(path.read_text())["config"]
    assert config["airgate:airflow"] == ""
    assert config["airgate:review"] == {"exceptions": None}
    assert set(config["airgate:oktaClientSecret"]) == {"secure"}
