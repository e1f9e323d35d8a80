"""Bundles rendered Worker sources into one minified ES module with the project's pinned esbuild.

Output bytes depend only on the sources and the esbuild version: sources are written to a fresh
folder inside the project (so any npm import resolves from its node_modules), and minified output carries no
paths. Bundles are cached by that content, which keeps repeated plans and tests fast.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from infra.build.templates import ENTRY_MODULE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ESBUILD = PROJECT_ROOT / "node_modules" / ".bin" / "esbuild"
WORK_DIR = PROJECT_ROOT / "build" / ".bundle"
CACHE_DIR = WORK_DIR / "cache"


class BundleError(RuntimeError):
    pass


@functools.cache
def _esbuild_version() -> str:
    if not ESBUILD.exists():
        raise BundleError("esbuild is not installed: run the README's setup (it runs `npm ci`) and try again")
    result = subprocess.run(  # noqa: S603 - fixed local binary
        [str(ESBUILD), "--version"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def bundle(sources: dict[str, str]) -> bytes:
    version = _esbuild_version()
    digest = hashlib.sha256(version.encode())
    for relative in sorted(sources):
        digest.update(b"\0" + relative.encode() + b"\0" + sources[relative].encode())
    cached = CACHE_DIR / f"{digest.hexdigest()}.js"
    if cached.exists():
        return cached.read_bytes()

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK_DIR, prefix="src-") as tmp:
        root = Path(tmp)
        for relative, text in sources.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        out = root / "out.js"
        command = [
            str(ESBUILD),
            str(root / ENTRY_MODULE),
            "--bundle",
            "--format=esm",
            "--platform=neutral",
            "--target=es2022",
            "--minify",
            "--legal-comments=none",
            "--main-fields=module,main",
            "--conditions=workerd,worker,browser",
            f"--outfile={out}",
            "--log-level=error",
        ]
        result = subprocess.run(command, capture_output=True, text=True, cwd=root)  # noqa: S603
        if result.returncode != 0:
            raise BundleError(f"esbuild failed:\n{result.stderr.strip()}")
        data = out.read_bytes()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # A unique partial file, so two processes building at once never interleave their writes.
    with tempfile.NamedTemporaryFile(dir=CACHE_DIR, suffix=".partial", delete=False) as partial:
        partial.write(data)
    os.replace(partial.name, cached)
    return data
