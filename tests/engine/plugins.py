"""The provider plugins a test's PULUMI_HOME gets, keyed `name@version` as the engine asks for them.

The program's SDKs ask for their own versions (pulumi_cloudflare 6.23.1, pulumi_random 4.21.4,
pulumi_kubernetes 4.34.2). The Go module proxy serves none of cloudflare or random, so those are
this project's plugins (local_services/providers); of kubernetes it serves one version, v4.25.0
(toolchain/pulumi-kubernetes), installed under the version the SDK asks for: the engine looks a
plugin up by that number, and the plugin reports its own (4.25.0) in every answer.
"""

from __future__ import annotations

import importlib.metadata
import stat
import sys
from pathlib import Path

from infra.config.loader import PROJECT_ROOT

TOOLS = PROJECT_ROOT / ".tools" / "bin"


def _launcher(folder: Path, provider: str) -> Path:
    path = folder / f"pulumi-resource-{provider}"
    path.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{PROJECT_ROOT}' exec '{sys.executable}' -m local_services.providers {provider} \"$@\"\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def provider_plugins(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    plugins = {
        f"cloudflare@{importlib.metadata.version('pulumi_cloudflare')}": _launcher(folder, "cloudflare"),
        f"random@{importlib.metadata.version('pulumi_random')}": _launcher(folder, "random"),
    }
    kubernetes = TOOLS / "pulumi-resource-kubernetes"
    if kubernetes.exists():
        plugins[f"kubernetes@{importlib.metadata.version('pulumi_kubernetes')}"] = kubernetes
    return plugins
