"""The `file://` backend the README recommends, `?metadata=skip`, and why: a read of a stack whose
metadata sidecar is being rewritten fails, and the program reads its own stack on every `up`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.engine.project import PASSPHRASE, file_backend_url

TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "bin"


def pulumi(folder: Path, backend_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(TOOLS), os.environ["PATH"]]),
        "PULUMI_HOME": str(folder / "home"),
        "PULUMI_BACKEND_URL": backend_url,
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    return subprocess.run(
        ["pulumi", "--non-interactive", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: backend-check\nruntime: python\n")
    (tmp_path / "state").mkdir()
    return tmp_path


def test_a_half_written_sidecar_fails_a_stack_read(project: Path) -> None:
    """The hazard itself, as the CLI meets it: the sidecar as `os.Create` leaves it, empty."""
    url = f"file://{project / 'state'}"
    assert pulumi(project, url, "stack", "init", "s").returncode == 0
    sidecar = project / "state" / ".pulumi" / "stacks" / "backend-check" / "s.json.attrs"
    sidecar.write_text("")
    read = pulumi(project, url, "stack", "output", "-s", "s", "--json")
    assert read.returncode != 0 and "failed to load checkpoint: EOF" in read.stderr


def test_metadata_skip_writes_no_sidecar_and_the_stack_reads_back(project: Path) -> None:
    url = file_backend_url(project / "state")
    assert pulumi(project, url, "stack", "init", "s").returncode == 0
    exported = pulumi(project, url, "stack", "export", "-s", "s")
    assert exported.returncode == 0
    (project / "state.json").write_text(exported.stdout)
    assert pulumi(project, url, "stack", "import", "-s", "s", "--file", "state.json").returncode == 0
    assert list((project / "state").rglob("*.attrs")) == []
    read = pulumi(project, url, "stack", "output", "-s", "s", "--json")
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "{}"
