"""The review and stack commands find the project as Pulumi does (the nearest Pulumi.yaml from the
current directory up), not where the package happens to be installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.config.loader import PROJECT_ROOT

AIRGATE = Path(sys.executable).parent / "airgate"


def airgate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AIRGATE), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_diff_of_refs_reads_the_repository_around_the_current_directory() -> None:
    inside = airgate(PROJECT_ROOT / "tests", "diff", "HEAD", "HEAD")
    assert inside.returncode == 0, inside.stderr
    assert "no changes" in inside.stdout


def test_outside_any_project_the_commands_say_so_and_exit_2(tmp_path: Path) -> None:
    for args in (("diff", "HEAD", "HEAD"), ("stack", "list")):
        result = airgate(tmp_path, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "no Pulumi.yaml" in result.stderr.replace("\n", " "), args
        assert "Pulumi workspace" not in result.stderr, args
