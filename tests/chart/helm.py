"""Runs the real `helm` (toolchain/helm, linked into .tools/bin) on the released chart archive:
lint, template and a client-side install dry run (the only command that prints the chart's NOTES,
where its deprecation notes are)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / ".tools" / "bin" / "helm"
RELEASE = "airflow"


@dataclass(frozen=True)
class HelmResult:
    code: int
    output: str


def helm(*args: str) -> HelmResult:
    if not HELM.exists():
        raise RuntimeError(
            f"{HELM} is missing: run ./dev test chart (it builds helm) or toolchain/ensure helm"
        )
    done = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=300, check=False)
    return HelmResult(done.returncode, done.stdout + done.stderr)


def values_file(values: dict[str, Any], folder: Path) -> Path:
    path = folder / "values.json"  # JSON is YAML: helm reads it as a values file
    path.write_text(json.dumps(values))
    return path


def lint(chart: Path, values: Path, namespace: str, kube_version: str | None = None) -> HelmResult:
    extra = ["--kube-version", kube_version] if kube_version else []
    return helm("lint", "--strict", str(chart), "-f", str(values), "--namespace", namespace, *extra)


def render(
    chart: Path, values: Path, namespace: str, kube_version: str, *, hooks: bool = True
) -> list[dict[str, Any]]:
    """Every object `helm template` renders (`hooks=False`: what helm.v4.Chart deploys)."""
    args = ["template", RELEASE, str(chart), "-f", str(values), "--namespace", namespace]
    args += ["--kube-version", kube_version, *([] if hooks else ["--no-hooks"])]
    result = helm(*args)
    if result.code != 0:
        raise AssertionError(f"helm template failed:\n{result.output}")
    return [doc for doc in yaml.safe_load_all(result.output) if doc]


def notes(chart: Path, values: Path, namespace: str) -> HelmResult:
    """The install's NOTES as a client-side dry run prints them (no cluster is contacted)."""
    return helm(
        "install", RELEASE, str(chart), "-f", str(values), "--namespace", namespace, "--dry-run=client"
    )
