"""The `file://` backend the README recommends, `?metadata=skip`, and why: a read of a stack whose
metadata sidecar is being rewritten fails, and the program reads its own stack on every `up`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.project import EngineProject


@pytest.fixture
def project(tmp_path: Path) -> EngineProject:
    """A bare project (no program is run) on the engine tier's backend, `?metadata=skip`."""
    (tmp_path / "Pulumi.yaml").write_text("name: backend-check\nruntime: python\n")
    project = EngineProject(tmp_path, tmp_path / "home", tmp_path / "state", plugin_launchers={})
    project.backend.mkdir()
    return project


def test_a_half_written_sidecar_fails_a_stack_read(project: EngineProject) -> None:
    """The hazard itself, as the CLI meets it: the sidecar as `os.Create` leaves it, empty."""
    project.extra_env = {"PULUMI_BACKEND_URL": f"file://{project.backend}"}
    project.pulumi("stack", "init", "s")
    sidecar = project.backend / ".pulumi" / "stacks" / "backend-check" / "s.json.attrs"
    sidecar.write_text("")
    read = project.pulumi("stack", "output", "-s", "s", "--json", check=False)
    assert read.returncode != 0 and "failed to load checkpoint: EOF" in read.stderr


def test_metadata_skip_writes_no_sidecar_and_the_stack_reads_back(project: EngineProject) -> None:
    project.pulumi("stack", "init", "s")
    (project.root / "state.json").write_text(project.pulumi("stack", "export", "-s", "s").stdout)
    project.pulumi("stack", "import", "-s", "s", "--file", "state.json")
    assert list(project.backend.rglob("*.attrs")) == []
    assert project.pulumi("stack", "output", "-s", "s", "--json").stdout.strip() == "{}"
