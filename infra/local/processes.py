"""Runs the local components under supervisord (the `supervisor` package), which outlives the
`airgate up` command, keeps one log per component, and stops whole process groups so nothing is
orphaned. airgate only writes its config and drives it over its XML-RPC socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

from infra.config.loader import PROJECT_ROOT
from infra.local.logs import last_lines
from infra.local.plan import Component


class Supervisor:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.conf = state_dir / "supervisord.conf"
        self.socket = state_dir / "supervisor.sock"
        self.pidfile = state_dir / "supervisord.pid"
        self.logs = state_dir / "logs"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def write_config(self, components: tuple[Component, ...]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        env_dir = self.state_dir / "env"
        env_dir.mkdir(exist_ok=True)
        lines = [
            "[unix_http_server]",
            f"file={self.socket}",
            "chmod=0600",
            "[supervisord]",
            f"logfile={self.logs / 'supervisord.log'}",
            f"pidfile={self.pidfile}",
            f"childlogdir={self.logs}",
            f"directory={PROJECT_ROOT}",
            "nodaemon=false",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{self.socket}",
        ]
        for component in components:
            env_file = env_dir / f"{component.name}.json"
            descriptor = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(component.env, handle)
            command = " ".join(
                _quote(part)
                for part in (sys.executable, "-m", "infra.local.launch", str(env_file), *component.command)
            )
            lines += [
                f"[program:{component.name}]",
                f"command={command}",
                f"directory={PROJECT_ROOT}",
                "autostart=false",
                "autorestart=false",
                "startsecs=1",
                "startretries=0",
                "stopasgroup=true",
                "killasgroup=true",
                "stopwaitsecs=15",
                "redirect_stderr=true",
                f"stdout_logfile={self.log_file(component.name)}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=1",
                f"environment=PYTHONPATH={_quote(str(PROJECT_ROOT))}",
            ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.conf.chmod(0o600)

    def rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(self.rpc().supervisor.getState()["statecode"] == 1)
        except (OSError, xmlrpc.client.Fault):
            return False

    def start_daemon(self) -> None:
        if self.running():
            self.rpc().supervisor.reloadConfig()
            return
        supervisord = Path(sys.executable).parent / "supervisord"
        subprocess.run([str(supervisord), "-c", str(self.conf)], check=True, cwd=PROJECT_ROOT)  # noqa: S603
        deadline = time.monotonic() + 15
        while not self.running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"supervisord did not start; see {self.logs / 'supervisord.log'}")
            time.sleep(0.1)

    def start(self, name: str) -> None:
        self.rpc().supervisor.startProcess(name, True)

    def info(self) -> list[dict[str, Any]]:
        if not self.running():
            return []
        return list(self.rpc().supervisor.getAllProcessInfo())

    def stop_all(self) -> None:
        if self.running():
            self.rpc().supervisor.stopAllProcesses(True)

    def shutdown(self, timeout: float = 30) -> None:
        """Stops every component (whole process groups), then supervisord itself."""
        if not self.running():
            return
        pid = int(self.pidfile.read_text()) if self.pidfile.exists() else None
        self.stop_all()
        self.rpc().supervisor.shutdown()
        deadline = time.monotonic() + timeout
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def tail(self, name: str, lines: int = 40) -> str:
        # Only the file's end is read: a component's log may hold up to 20 MB.
        return "\n".join(last_lines(self.log_file(name), lines).decode(errors="replace").splitlines())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _quote(part: str) -> str:
    if all(c.isalnum() or c in "/._-=:@" for c in part):
        return part
    return "'" + part.replace("'", "'\"'\"'") + "'"
