"""Finds the released Apache Airflow chart archive and proves it is the release: the pinned version's
sha256 is kept here, and every archive is checked against it however it arrived.

Three ways, in order (`locate_chart`), as a user's machine would find it:
1. `AIRGATE_AIRFLOW_CHART`: a path to the archive (an air-gapped mirror, a CI cache);
2. `../shared/charts/airflow-<version>.tgz` beside the project's root, when it exists;
3. `helm pull` of the pinned version from the official repository into a cache outside the clone.
An archive that exists but is not the release is refused, never passed over for the next way.
`AIRGATE_AIRFLOW_CHART` is also what `pulumi up` deploys from when set (`archive_from_environment`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

CHART_ENV = "AIRGATE_AIRFLOW_CHART"
OFFICIAL_REPOSITORY = "https://airflow.apache.org"
RELEASE_SHA256 = {
    # The official 1.22.0 release as the chart repository serves it (Chart.yaml appVersion 3.2.2).
    "1.22.0": "1f7d1dfe3d58e2c54899950aba907a43625a18c8b6fb3c54760c21592129a5b6",
}


class ChartNotFound(RuntimeError):
    """No way found the archive, or an archive is not the pinned release."""


def archive_name(version: str) -> str:
    return f"airflow-{version}.tgz"


def pinned_sha256(version: str) -> str:
    try:
        return RELEASE_SHA256[version]
    except KeyError:
        raise ChartNotFound(
            f"no sha256 is pinned for Airflow chart {version} (pinned: {', '.join(sorted(RELEASE_SHA256))}); "
            "add the release's digest to infra/airflow/chart.py RELEASE_SHA256"
        ) from None


def verify_archive(path: Path, version: str, source: str) -> Path:
    """The archive at `path` if its sha256 is the pinned release's; `source` says where it came from."""
    want = pinned_sha256(version)
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != want:
        raise ChartNotFound(
            f"{source}: {path} is not the Airflow chart {version} release (sha256 {got}, expected {want}); "
            "use the archive the official repository serves"
        )
    return path


def archive_from_environment(version: str) -> Path | None:
    """`AIRGATE_AIRFLOW_CHART` checked, or None when it is unset."""
    value = os.environ.get(CHART_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ChartNotFound(f"{CHART_ENV}={value}: no such file; point it at {archive_name(version)}")
    return verify_archive(path.resolve(), version, CHART_ENV)


def shared_archive(root: Path, version: str) -> Path:
    return root.parent / "shared/charts" / archive_name(version)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "airgate" / "charts"


def pull_archive(helm: str, version: str, cache: Path, repository: str) -> Path:
    """`helm pull` into `cache` (kept for the next run); raises with helm's own words on failure."""
    target = cache / archive_name(version)
    if target.is_file():
        return verify_archive(target, version, f"the cached helm pull in {cache}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as staging:
        pulled = subprocess.run(  # noqa: S603 - helm with fixed arguments
            [helm, "pull", "airflow", "--repo", repository, "--version", version, "--destination", staging],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if pulled.returncode != 0:
            raise ChartNotFound(
                (pulled.stderr or pulled.stdout).strip() or f"helm exited {pulled.returncode}"
            )
        archive = Path(staging) / archive_name(version)
        verify_archive(archive, version, f"helm pull from {repository}")
        archive.replace(target)
    return target


def locate_chart(
    root: Path,
    version: str,
    *,
    helm: str = "helm",
    cache: Path | None = None,
    repository: str = OFFICIAL_REPOSITORY,
) -> Path:
    """The verified archive by the first way that has one; `ChartNotFound` naming all three if none."""
    from_env = archive_from_environment(version)
    if from_env is not None:
        return from_env
    shared = shared_archive(root, version)
    if shared.is_file():
        return verify_archive(shared, version, "the shared chart folder")
    try:
        return pull_archive(helm, version, cache or default_cache(), repository)
    except (ChartNotFound, OSError, subprocess.TimeoutExpired) as pull_error:
        raise ChartNotFound(
            f"the Airflow chart {version} archive was not found in any of the three ways:\n"
            f"  1. {CHART_ENV}: not set (set it to the path of {archive_name(version)});\n"
            f"  2. {shared}: no such file;\n"
            f"  3. helm pull airflow --repo {repository} --version {version}: {pull_error}"
        ) from pull_error
