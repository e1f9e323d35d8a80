"""What `./dev` decides before it runs anything: which interpreter stands for each supported Python
(the pythons tier), and what setup says where Chromium is missing and apt-get is not there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from infra.config.loader import PROJECT_ROOT

DEV = (PROJECT_ROOT / "dev").read_text()


def function(name: str) -> str:
    found = re.search(rf"^{name}\(\) {{\n.*?^}}\n", DEV, re.MULTILINE | re.DOTALL)
    assert found, name
    return found.group(0)


def bash(script: str, cwd: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", "-c", script], cwd=cwd, env={"PATH": path}, capture_output=True, text=True, timeout=60
    )


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def test_the_supported_pythons_are_the_ones_pyproject_admits() -> None:
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.14"' in pyproject
    assert "supported_pythons=(3.11 3.12 3.13)" in DEV


def test_find_python_takes_an_interpreter_that_runs_as_that_version(tmp_path: Path) -> None:
    pyenv, bin_dir = tmp_path / "pyenv", tmp_path / "bin"
    # pyenv's shims exist for every installed version but run only the selected one.
    executable(
        bin_dir / "python3.12", "#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n"
    )
    executable(pyenv / "versions/3.12.1/bin/python3.12", "#!/bin/sh\necho 3.12\n")
    executable(pyenv / "versions/3.12.9/bin/python3.12", "#!/bin/sh\necho 3.12\n")
    executable(pyenv / "versions/3.13.0/bin/python3.13", "#!/bin/sh\necho 3.11\n")  # not what it says
    script = f"PYENV_ROOT={pyenv}\n{function('find_python')}\n"
    path = f"{bin_dir}:/usr/bin:/bin"
    found = bash(script + "find_python 3.12", tmp_path, path)
    assert (found.returncode, found.stdout.strip()) == (0, str(pyenv / "versions/3.12.9/bin/python3.12"))
    assert bash(script + "find_python 3.13", tmp_path, path).returncode == 1
    (bin_dir / "python3.12").unlink()
    executable(bin_dir / "python3.14", "#!/bin/sh\necho 3.14\n")
    on_path = bash(script + "find_python 3.14", tmp_path, path)
    assert on_path.stdout.strip() == str(bin_dir / "python3.14")


def test_setup_without_apt_get_says_how_to_get_chromium(tmp_path: Path) -> None:
    script = (
        f'say() {{ echo "$*"; }}\nchromium_bin={tmp_path / "chromium"}\n{function("setup_chromium")}\n'
        "setup_chromium"
    )
    result = bash(script, tmp_path, str(tmp_path / "empty"))  # no apt-get on PATH
    assert result.returncode == 1
    assert "is missing and there is no apt-get here" in result.stderr
    assert "with this system's package manager" in result.stderr
    executable(tmp_path / "chromium", "#!/bin/sh\n")
    assert bash(script, tmp_path, str(tmp_path / "empty")).returncode == 0  # present: nothing to do
