"""`pulumi up -s <env>` runs infra/__main__.py: a bad or incomplete stack stops it before any
resource is registered."""

from __future__ import annotations

import runpy

import pulumi
import pytest

from infra.config.loader import PROJECT_ROOT, load_stack, referenced_secrets
from infra.plan.mocks import AirgateMocks
from infra.plan.runner import Recording, RecordingMonitor

MAIN = PROJECT_ROOT / "infra" / "__main__.py"


def run_main(
    stack: str, recording: Recording | None = None, config: dict[str, str] | None = None
) -> Recording:
    recording = recording if recording is not None else Recording()
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        AirgateMocks(),
        project="airgate",
        stack=stack,
        preview=True,
        monitor=RecordingMonitor(AirgateMocks(), recording),
    )
    pulumi.runtime.set_all_config(config or {}, list(config or {}))

    @pulumi.runtime.test  # type: ignore[misc]
    def body() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    body()
    return recording


def test_unknown_stack_is_a_run_error_naming_the_file() -> None:
    with pytest.raises(pulumi.RunError, match=r"(?s)stacks/Pulumi\.nope\.yaml.*no such stack file"):
        run_main("nope")


def test_prod_without_its_secrets_creates_nothing() -> None:
    recording = Recording()
    with pytest.raises(pulumi.RunError) as caught:
        run_main("prod", recording)
    message = str(caught.value)
    assert "secrets not set: " in message
    assert "airgate:ingestUpstreamToken" in message and "airgate:airflowDbUrl" in message
    assert "pulumi config set --secret" in message
    assert recording.resources == []


def test_the_local_stack_is_not_for_pulumi_up() -> None:
    with pytest.raises(pulumi.RunError, match="run it with `airgate up`, not `pulumi up`"):
        run_main("local")


def test_the_same_entrypoint_defines_the_stack_when_secrets_exist() -> None:
    secrets = referenced_secrets(load_stack("dev").config)
    recording = run_main("dev", config={f"airgate:{key}": "s3cr3t-value" for key in secrets})
    assert {r.name for r in recording.of_type("WorkersScript")} == {
        "ingest-script",
        "trigger-script",
        "warehouse-script",
    }
