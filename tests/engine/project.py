"""The project as a user's `pulumi` sees it, run by the real CLI and engine on a file backend.

`EngineProject` lays out a copy of the project in a temporary folder (Pulumi.yaml as committed,
`infra/`, `worker_templates/`, `stacks/`, `policy_pack/`; `.venv` and `node_modules` linked), gives
the CLI its own PULUMI_HOME with the provider plugins installed, a `file://` backend and a
passphrase secrets provider, and runs `pulumi` there. Every run's engine events (`--json`) are
parsed into `Run`: what the engine did to which resource, its errors and the policy packs'
violations, as the engine itself reports them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.config.loader import PROJECT_ROOT

PASSPHRASE = "airgate-engine-tests"
# What a run that needs no input may take at most; a hang is a defect, reported as such.
RUN_TIMEOUT = 600

Change = tuple[str, str, str]
"""(operation, resource kind, logical name), as the engine reports a step."""


def file_backend_url(folder: Path) -> str:
    """A `file://` backend without metadata sidecars. gocloud's fileblob writes each blob's
    `.attrs` sidecar by truncating it and then writing it, not atomically (blob/fileblob/attrs.go,
    setAttrs), and a read that meets it empty fails ("failed to load checkpoint: EOF"). The program
    reads its own stack (a StackReference) while the engine writes checkpoints, and a first
    `pulumi up` once failed on that read; `metadata=skip` writes no sidecar
    (tests/engine/test_file_backend.py)."""
    return f"file://{folder}?metadata=skip"


# Set in `EngineProject.extra_env` for previews whose policy events a test reads.
STREAMING_PREVIEW = {"PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true"}

# The engine's step operations that change something (`same` and `read` do not).
CHANGING = {"create", "update", "delete", "replace", "create-replacement", "delete-replaced"}


# Component resources own nothing in an account or cluster: the program's own, the stack, and
# pulumi-kubernetes' helm.v4.Chart (a component whose children are the chart's objects).
COMPONENTS = ("airgate:", "pulumi:pulumi:Stack", "kubernetes:helm.sh/v4:Chart")


def kind_of(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class PolicyViolation:
    policy: str
    level: str
    """`mandatory` or `advisory`, as the pack declared the policy."""
    message: str
    urn: str


@dataclass
class Run:
    command: list[str]
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def steps(self) -> list[Change]:
        """Every step the engine finished (up) or planned (preview), in its order."""
        return [(op, kind_of(type_), name) for op, type_, name in self._steps()]

    def _steps(self) -> list[tuple[str, str, str]]:
        found: list[tuple[str, str, str]] = []
        for event in self.events:
            meta = (event.get("resOutputsEvent") or {}).get("metadata")
            if meta is None and self.is_preview:
                meta = (event.get("resourcePreEvent") or {}).get("metadata")
            if meta is not None:
                found.append((meta["op"], meta["type"], meta["urn"].rsplit("::", 1)[-1]))
        return found

    @property
    def changes(self) -> set[Change]:
        """The steps that change something in the account or cluster, `replace` standing for the
        whole create-and-delete. Components (`COMPONENTS`) own nothing there and are left out:
        the engine reports them only as their children settle."""
        result: set[Change] = set()
        for op, type_, name in self._steps():
            if op in {"create-replacement", "delete-replaced"}:
                op = "replace"
            if op in CHANGING and not type_.startswith(COMPONENTS):
                result.add((op, kind_of(type_), name))
        return result

    @property
    def failed(self) -> list[Change]:
        return [
            (
                e["resOpFailedEvent"]["metadata"]["op"],
                kind_of(e["resOpFailedEvent"]["metadata"]["type"]),
                e["resOpFailedEvent"]["metadata"]["urn"].rsplit("::", 1)[-1],
            )
            for e in self.events
            if "resOpFailedEvent" in e
        ]

    @property
    def errors(self) -> str:
        messages = [
            e["diagnosticEvent"]["message"]
            for e in self.events
            if e.get("diagnosticEvent", {}).get("severity") == "error"
        ]
        return "".join(messages) + self.stderr

    @property
    def policy_violations(self) -> list[PolicyViolation]:
        """What the policy packs reported, as the engine relays it (`policyEvent`). A preview's
        `--json` is one document without them; with STREAMING_PREVIEW in `extra_env` it streams
        the same events as `up --json`, these included."""
        found = []
        for event in self.events:
            violation = event.get("policyEvent")
            if violation is not None:
                # The engine prefixes the policy's description to the message, one line each.
                lines = violation["message"].rstrip("\n").split("\n", 1)
                found.append(
                    PolicyViolation(
                        violation["policyName"],
                        violation["enforcementLevel"],
                        lines[-1],
                        violation.get("resourceUrn", ""),
                    )
                )
        return found

    @property
    def policies_run(self) -> dict[str, list[str]]:
        """The stack policies each pack ran, `passed` and `failed` (`policyAnalyzeStackSummaryEvent`)."""
        for event in self.events:
            summary = event.get("policyAnalyzeStackSummaryEvent")
            if summary is not None:
                return {
                    "passed": list(summary.get("passed") or []),
                    "failed": list(summary.get("failed") or []),
                }
        return {"passed": [], "failed": []}

    @property
    def is_preview(self) -> bool:
        return "preview" in self.command

    @property
    def summary(self) -> dict[str, int]:
        for event in reversed(self.events):
            if "summaryEvent" in event:
                return dict(event["summaryEvent"].get("resourceChanges") or {})
        return {}

    def describe(self) -> str:
        return f"`{' '.join(self.command)}` exited {self.returncode}:\n{self.errors[-4000:]}"


@dataclass
class EngineProject:
    root: Path
    pulumi_home: Path
    backend: Path
    plugin_launchers: Mapping[str, Path]
    """Provider plugins to install: name@version → an executable that serves it."""
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def lay_out(cls, base: Path, plugin_launchers: Mapping[str, Path]) -> EngineProject:
        root = base / "project"
        root.mkdir(parents=True)
        shutil.copy2(PROJECT_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
        # policy_pack/ is copied, not linked: it finds the rules and the stack files beside itself.
        for folder in ("infra", "worker_templates", "stacks", "policy_pack"):
            shutil.copytree(
                PROJECT_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        # What the program reads but never writes: linked, so a copy costs nothing.
        for linked in (".venv", "node_modules", "airflow_gateway_auth", "dags"):
            (root / linked).symlink_to(PROJECT_ROOT / linked)
        project = cls(root, base / "pulumi-home", base / "backend", plugin_launchers)
        project.backend.mkdir()
        for spec, launcher in plugin_launchers.items():
            name, version = spec.split("@")
            project.pulumi("plugin", "install", "resource", name, version, "--file", str(launcher))
        return project

    def without_controllers(self) -> None:
        """For a cluster with no nodes: the copy's program imports tests/engine/no_controllers.py
        first (its one transform), right after the line that makes the project importable."""
        shutil.copy2(Path(__file__).with_name("no_controllers.py"), self.root / "no_controllers.py")
        entry = self.root / "infra" / "__main__.py"
        anchor = "sys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n"
        text = entry.read_text()
        assert anchor in text, "infra/__main__.py no longer makes the project importable the known way"
        entry.write_text(text.replace(anchor, anchor + "import no_controllers  # noqa: E402, F401\n", 1))

    @property
    def stacks_dir(self) -> Path:
        return self.root / "stacks"

    def env(self) -> dict[str, str]:
        tools = PROJECT_ROOT / ".tools"
        return {
            **os.environ,
            # The CLI and language host (./dev setup links them), and uv for Pulumi.yaml's toolchain.
            "PATH": os.pathsep.join(
                [str(tools / "bin"), str(tools / "bootstrap" / "bin"), os.environ["PATH"]]
            ),
            "PULUMI_HOME": str(self.pulumi_home),
            "PULUMI_BACKEND_URL": file_backend_url(self.backend),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            **self.extra_env,
        }

    def pulumi(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["pulumi", "--non-interactive", *args],
            cwd=self.root,
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"`pulumi {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def run(self, *args: str) -> Run:
        """An engine operation with `--json` events; the caller decides what its exit means."""
        done = self.pulumi(*args, "--json", check=False)
        events = _events(done.stdout)
        return Run(["pulumi", *args], done.returncode, events, done.stderr)

    # -- stacks -------------------------------------------------------------------------------------

    def init_stack(self, stack: str, config: Mapping[str, str], secrets: Mapping[str, str]) -> None:
        """`pulumi stack init` plus the config a user sets by hand (`pulumi config set [--secret]`)."""
        self.pulumi("stack", "init", stack)
        # One `config set-all` instead of a `config set` per key: the same file, a second not ten.
        values = [arg for key, value in config.items() for arg in ("--plaintext", f"{key}={value}")]
        values += [arg for key, value in secrets.items() for arg in ("--secret", f"{key}={value}")]
        if values:
            self.pulumi("config", "set-all", "-s", stack, *values)

    def up(self, stack: str, *extra: str) -> Run:
        return self.run("up", "-s", stack, "--yes", "--skip-preview", *extra)

    def preview(self, stack: str, *extra: str) -> Run:
        return self.run("preview", "-s", stack, *extra)

    def destroy(self, stack: str, *extra: str) -> Run:
        return self.run("destroy", "-s", stack, "--yes", "--skip-preview", *extra)

    def refresh(self, stack: str, *extra: str) -> Run:
        return self.run("refresh", "-s", stack, "--yes", "--skip-preview", *extra)

    def resources(self, stack: str) -> list[dict[str, Any]]:
        exported = json.loads(self.pulumi("stack", "export", "-s", stack).stdout)
        return list(exported["deployment"].get("resources") or [])

    def resource_ids(self, stack: str, kind: str) -> dict[str, str]:
        """Logical name → provider id of the stack's resources of one kind, from the engine's state."""
        return {
            r["urn"].rsplit("::", 1)[-1]: r.get("id", "")
            for r in self.resources(stack)
            if kind_of(r["type"]) == kind
        }

    def outputs(self, stack: str) -> dict[str, Any]:
        found = json.loads(self.pulumi("stack", "output", "-s", stack, "--json", "--show-secrets").stdout)
        assert isinstance(found, dict)
        return found

    def edit(self, stack_file: str, change: Any) -> None:
        """Edit `stacks/<stack_file>` as a person would: load, change the config mapping, save."""
        path = self.stacks_dir / stack_file
        document = yaml.safe_load(path.read_text())
        change(document["config"])
        path.write_text(yaml.safe_dump(document, sort_keys=False))


def _events(stdout: str) -> list[dict[str, Any]]:
    """`up`, `destroy` and `refresh --json` stream one engine event per line; `preview --json`
    prints one document with its planned steps, turned here into the same events."""
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if not isinstance(document, dict) or "steps" not in document:
        return []
    planned: list[dict[str, Any]] = [
        {"resourcePreEvent": {"metadata": {"op": s["op"], "urn": s["urn"], "type": _type_of(s["urn"])}}}
        for s in document["steps"]
    ]
    diagnostics = [{"diagnosticEvent": d} for d in document.get("diagnostics") or []]
    return (
        planned + diagnostics + [{"summaryEvent": {"resourceChanges": document.get("changeSummary") or {}}}]
    )


def _type_of(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]
