"""`pulumi preview --policy-pack policy_pack` through the real CLI: the engine starts the Python pack
(our language host's RunPlugin), hands it every resource it is about to create, and fails the
preview on a mandatory violation. On the same stacks the pack's findings are `airgate lint`'s.

The stacks are the example stacks without Airflow, as `airgate stack create` writes them (the
Kubernetes part needs a cluster and a provider plugin this tier does not have), each with
violations the loader lets through, the rules' own:
- `pr-1`, from dev: an exception for a rule that does not exist (`review-exceptions`, advisory), so
  its preview passes and only advises;
- `pr-2`, from staging, as derived;
- `seeded-prod`: prod's own file with its Airflow section left out (prod is never a test stack's
  base, so nothing else changes: hostnames, protection, Logpush stay prod's), plus a service token
  living 17520h (over the 8760h bound: `service-token-duration`), a schema-less DAG grant no longer
  named as an exception (`prod-dag-conf-schema`), both mandatory, and the unknown exception. Every
  other prod rule runs on it and passes, as in lint.
A prod gateway outside Access cannot be seeded: the loader refuses that stack before any engine
sees it ("a prod gateway must sit behind Cloudflare Access"). The previews run at once.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli.main import app
from infra.config.loader import load_stack, referenced_secrets, stack_file
from infra.ephemeral.model import derive_stack_file, inline_settings
from local_services.cloudflare_api.testing import running_emulator
from policy_pack.airgate_pack import policies, rule_of
from tests.engine.project import STREAMING_PREVIEW, EngineProject, Run

Config = dict[str, Any]
Finding = tuple[str, str, str]
"""(rule, severity, message with its fix), as lint prints it and the pack reports it."""
LEVELS = {"mandatory": "error", "advisory": "warning"}
UNKNOWN_RULE = "no-such-rule"


def derived(base: str, pr: int) -> Callable[[Path], Config]:
    """What `airgate stack create --pr <pr> --base <base>` writes (Airflow left out by default)."""

    def make(stacks: Path) -> Config:
        loaded = load_stack(base, stacks)
        document = yaml.safe_load(stack_file(base, stacks).read_text())
        return derive_stack_file(document, loaded.config, base, pr, False, loaded.settings)["config"]  # type: ignore[no-any-return]

    return make


def prod_without_airflow(stacks: Path) -> Config:
    loaded = load_stack("prod", stacks)
    document = yaml.safe_load(stack_file("prod", stacks).read_text())
    return inline_settings(document["config"], loaded.settings, drop=("airflow",))


def with_unknown_exception(config: Config) -> Config:
    config.setdefault("airgate:review", {}).setdefault("exceptions", {})[UNKNOWN_RULE] = ["anything"]
    return config


def seeded_prod(stacks: Path) -> Config:
    config = prod_without_airflow(stacks)
    config["airgate:service_tokens"]["ci"]["duration"] = "17520h"
    config["airgate:review"]["exceptions"]["prod-dag-conf-schema"].remove("trigger/ci/gateway_smoke_test")
    return with_unknown_exception(config)


STACKS: dict[str, Callable[[Path], Config]] = {
    "pr-1": lambda stacks: with_unknown_exception(derived("dev", 1)(stacks)),
    "pr-2": derived("staging", 2),
    "seeded-prod": seeded_prod,
}


@dataclass
class Checked:
    preview: Run
    lint: list[dict[str, Any]]
    lint_exit: int

    @property
    def pack_findings(self) -> set[Finding]:
        return {(rule_of(v.policy), LEVELS[v.level], v.message) for v in self.preview.policy_violations}

    @property
    def lint_findings(self) -> set[Finding]:
        return {(f["rule"], f["severity"], f"{f['message']}. Fix: {f['fix']}") for f in self.lint}


def lint(project: EngineProject, stack: str) -> tuple[list[dict[str, Any]], int]:
    """`airgate lint --format json` on the project copy's stack file."""
    done = CliRunner().invoke(
        app, ["lint", "--stack", stack, "--stacks-dir", str(project.stacks_dir), "--format", "json"]
    )
    assert done.exit_code in (0, 1), f"airgate lint -s {stack} exited {done.exit_code}: {done.output}"
    return json.loads(done.stdout), done.exit_code


@pytest.fixture(scope="module")
def checked(
    tmp_path_factory: pytest.TempPathFactory, plugin_launchers: dict[str, Path]
) -> Iterator[dict[str, Checked]]:
    base = tmp_path_factory.mktemp("policy-pack")
    project = EngineProject.lay_out(base, plugin_launchers)
    project.extra_env.update(STREAMING_PREVIEW)
    for name, make in STACKS.items():
        config = make(project.stacks_dir)
        stack_file(name, project.stacks_dir).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    token = secrets.token_urlsafe(24)
    with ExitStack() as running:
        emulators: dict[str, str] = {}
        for name in STACKS:
            stack = load_stack(name, project.stacks_dir).config
            if stack.account_id not in emulators:
                api = running.enter_context(
                    running_emulator(
                        base / "state" / f"{stack.account_id}.json",
                        token,
                        stack.account_id,
                        {stack.zone_id: stack.zone},
                    )
                )
                emulators[stack.account_id] = api.base_url
            keys = sorted(referenced_secrets(stack))
            project.init_stack(
                name,
                {"cloudflare:baseUrl": emulators[stack.account_id]},
                {"cloudflare:apiToken": token, **{f"airgate:{key}": f"secret-{name}-{key}" for key in keys}},
            )
        with ThreadPoolExecutor(max_workers=len(STACKS)) as pool:
            previews = {
                name: pool.submit(project.preview, name, "--policy-pack", "policy_pack") for name in STACKS
            }
            # Lint plans in this process (Pulumi's mocks), one stack at a time, while the engine works.
            lints = {name: lint(project, name) for name in STACKS}
            yield {name: Checked(previews[name].result(), *lints[name]) for name in STACKS}


def ran_every_policy(preview: Run) -> bool:
    ran = preview.policies_run
    return sorted(ran["passed"] + ran["failed"]) == sorted(policy.name for policy in policies())


@pytest.mark.parametrize("stack", ["pr-1", "pr-2"])
def test_the_test_stacks_pass_the_pack_as_they_pass_lint(checked: dict[str, Checked], stack: str) -> None:
    found = checked[stack]
    assert found.preview.ok, found.preview.describe()
    assert ran_every_policy(found.preview)
    assert {v.level for v in found.preview.policy_violations} <= {"advisory"}
    assert found.pack_findings == found.lint_findings
    assert found.lint_exit == 0


def test_a_mandatory_violation_fails_the_preview_and_names_its_rule(checked: dict[str, Checked]) -> None:
    found = checked["seeded-prod"]
    assert not found.preview.ok
    assert "preview failed" in found.preview.errors
    assert ran_every_policy(found.preview)
    # Every other policy, the prod rules included, passed on prod's resources, as lint found.
    assert sorted(found.preview.policies_run["failed"]) == [
        "prod-dag-conf-schema",
        "review-exceptions",
        "service-token-duration",
    ]
    by_level = {(v.policy, v.level) for v in found.preview.policy_violations}
    assert by_level == {
        ("service-token-duration", "mandatory"),
        ("prod-dag-conf-schema", "mandatory"),
        ("review-exceptions", "advisory"),
    }
    [token] = [v for v in found.preview.policy_violations if v.policy == "service-token-duration"]
    assert token.urn.endswith("::identity-token-ci") and "17520h" in token.message
    assert found.pack_findings == found.lint_findings
    assert found.lint_exit == 1
    # The secrets the engine handed the pack in clear never come back in a message.
    assert "secret-seeded-prod-" not in json.dumps(found.preview.events)


def test_an_advisory_violation_is_reported_and_the_preview_passes(checked: dict[str, Checked]) -> None:
    found = checked["pr-1"]
    assert found.preview.ok, found.preview.describe()
    [advice] = found.preview.policy_violations
    assert (advice.policy, advice.level) == ("review-exceptions", "advisory")
    assert repr(UNKNOWN_RULE) in advice.message
    assert found.preview.policies_run["failed"] == ["review-exceptions"]
    assert found.pack_findings == found.lint_findings
