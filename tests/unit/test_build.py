"""The Worker build is deterministic: same config, same bytes, in this checkout and another."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.build import bundle as bundle_module
from infra.build.artifacts import build_gateway, write_build
from infra.build.bindings import plan_bindings
from infra.config.loader import PROJECT_ROOT, load_stack
from infra.policy.compiler import compile_gateway


def test_same_config_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stack = load_stack("dev").config
    monkeypatch.setattr(bundle_module, "CACHE_DIR", tmp_path / "cache-a")
    first = build_gateway("dev", stack, "trigger").bundle
    monkeypatch.setattr(bundle_module, "CACHE_DIR", tmp_path / "cache-b")
    second = build_gateway("dev", stack, "trigger").bundle
    assert first == second
    assert first.startswith(b"var ") or b"export" in first


def test_gateways_differ_where_their_structure_differs() -> None:
    stack = load_stack("dev").config
    assert build_gateway("dev", stack, "ingest").bundle != build_gateway("dev", stack, "trigger").bundle


def test_build_output_per_gateway(tmp_path: Path) -> None:
    loaded = load_stack("local")
    write_build(tmp_path, "local", loaded.config)
    for gateway in ("ingest", "warehouse", "trigger"):
        folder = tmp_path / gateway
        worker = (folder / "gateway.js").read_bytes()
        digest = (folder / "gateway.js.sha256").read_text().split()[0]
        assert digest == hashlib.sha256(worker).hexdigest()
        policy = compile_gateway(loaded.config, gateway)
        assert (folder / "policy.json").read_text().strip() == policy.canonical
        wrangler = json.loads((folder / "wrangler.json").read_text())
        assert wrangler["main"] == "gateway.js"
        assert wrangler["vars"]["POLICY_VERSION"] == policy.version
        planned = {
            b.name for b in plan_bindings(loaded.config, gateway, policy) if b.type in ("plain_text", "json")
        }
        assert set(wrangler["vars"]) == planned
        classes = {d["class_name"] for d in wrangler["durable_objects"]["bindings"]}
        migrated = {c for step in wrangler["migrations"] for c in step.get("new_sqlite_classes", [])}
        assert classes <= migrated
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["bundle_sha256"] == digest
        assert manifest["policy_kv_key"] == f"policy:{policy.version}"


def test_same_bytes_from_another_checkout(tmp_path: Path) -> None:
    """A second copy of the project, with an empty cache, builds byte-identical bundles."""
    clone = tmp_path / "elsewhere" / "airgate"
    for part in ("infra", "worker_templates", "stacks"):
        shutil.copytree(PROJECT_ROOT / part, clone / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", clone / "Pulumi.yaml")  # the project file marks the root
    (clone / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
    env = {**os.environ, "PYTHONPATH": str(clone)}
    for root, out in ((clone, tmp_path / "there"), (PROJECT_ROOT, tmp_path / "here")):
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from infra.cli.main import app; app()",
                "build",
                "--stack",
                "prod",
                "--out",
                str(out),
            ],
            cwd=root,
            env={**env, "PYTHONPATH": str(root)},
            check=True,
            capture_output=True,
        )
    for gateway in ("ingest", "warehouse", "trigger"):
        here = (tmp_path / "here" / gateway / "gateway.js").read_bytes()
        there = (tmp_path / "there" / gateway / "gateway.js").read_bytes()
        assert here == there, gateway
