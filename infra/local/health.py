"""Readiness checks for local components: a URL answers, Airflow reports a component healthy, a port
is free."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def answers(url: str, timeout: float = 2.0) -> bool:
    """True once the URL answers HTTP at all (any status: a 401 from a gateway is alive)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - loopback URLs we built
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def reports_healthy(url: str, component: str, timeout: float = 2.0) -> bool:
    """True once Airflow's health document at `url` (`/api/v2/monitor/health`) says `component`
    (`scheduler`, `dag_processor`, `triggerer`, `metadatabase`) is healthy: its heartbeat is recent.
    Running is not enough: the home page shows a component red until it reports."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - loopback URLs we built
            document = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    entry = document.get(component) if isinstance(document, dict) else None
    return isinstance(entry, dict) and entry.get("status") == "healthy"


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(check: Callable[[], bool], timeout: float, still_running: Callable[[], bool]) -> bool:
    """Polls `check` until it holds, the component died, or time runs out."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if check():
            return True
        if not still_running():
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    return False
