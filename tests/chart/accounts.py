"""Finds what in rendered Kubernetes objects would create an account or carry a default password:
a container running `users create` (or another user-creating command), a password given on a
command line, a literal password-like env value, or a Secret holding a well-known default."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Iterator
from typing import Any

CREATES_ACCOUNT = re.compile(r"\busers\s+(create|add)\b|\bcreateuser\b|\bfab\s+create-user\b", re.IGNORECASE)
PASSWORD_FLAG = re.compile(r"^(-p|--password)$")
SECRET_NAME = re.compile(r"pass(word)?|secret|token", re.IGNORECASE)
WELL_KNOWN = {"admin", "airflow", "postgres", "password", "changeme", "secret"}


def _pod_specs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "containers" in node and isinstance(node["containers"], list):
            yield node
        for value in node.values():
            yield from _pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pod_specs(value)


def account_findings(objects: list[dict[str, Any]]) -> list[str]:
    findings: list[str] = []
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        for pod in _pod_specs(obj.get("spec", {})):
            for container in pod.get("initContainers", []) + pod["containers"]:
                words = [str(w) for w in container.get("command", []) + container.get("args", [])]
                line = " ".join(words)
                if CREATES_ACCOUNT.search(line):
                    findings.append(f"{where} container {container['name']} creates an account: {line[:120]}")
                for flag, value in itertools.pairwise(words):
                    if PASSWORD_FLAG.match(flag) and not value.startswith("$"):
                        findings.append(f"{where} container {container['name']} passes a literal password")
                for env in container.get("env", []):
                    if SECRET_NAME.search(env["name"]) and env.get("value"):
                        findings.append(f"{where} env {env['name']} is a literal value")
        if obj["kind"] == "Secret":
            data = {
                k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()
            }
            data.update(obj.get("stringData") or {})
            for key, value in data.items():
                if value.strip().lower() in WELL_KNOWN:
                    findings.append(f"{where} key {key} holds a well-known default ({value!r})")
    return findings
