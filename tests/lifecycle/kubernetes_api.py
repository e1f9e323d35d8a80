"""A stateful stand-in for the Kubernetes clusters (and their Helm releases) the airgate program
deploys Airflow into, used by the lifecycle engine next to the Cloudflare API stand-in.

Objects are keyed as the API server keys them: per cluster (the provider's kubeconfig context),
kind, namespace (none for cluster-scoped kinds) and name. A create of a key that is taken is
refused with `409 AlreadyExists` ("<kind> \"<name>\" already exists",
https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions and the
`AlreadyExists` reason of metav1.StatusReason); a Helm release name is unique per namespace
("cannot re-use a name that is still in use", https://helm.sh/docs/helm/helm_install/).
Only what the program relies on: no controllers, no schema checks, no pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLUSTER_SCOPED = frozenset({"Namespace"})

Key = tuple[str, str, str | None, str]
"""(context, kind, namespace, name)"""


class ClusterError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{message} ({code})")


@dataclass
class ClusterApi:
    objects: dict[Key, str] = field(default_factory=dict)
    """key → object id (`<namespace>/<name>` as the provider's ids are)"""

    @staticmethod
    def key(context: str, kind: str, inputs: dict[str, Any]) -> Key:
        if kind == "Release":  # helm.v3.Release: the release name per namespace
            return (context, kind, inputs.get("namespace") or "default", inputs["name"])
        metadata = inputs.get("metadata") or {}
        namespace = None if kind in CLUSTER_SCOPED else metadata.get("namespace") or "default"
        return (context, kind, namespace, metadata["name"])

    def put(self, context: str, kind: str, object_id: str | None, inputs: dict[str, Any]) -> str:
        """Create (object_id None) or update one object; returns its id."""
        key = self.key(context, kind, inputs)
        taken = self.objects.get(key)
        if object_id is None and taken is not None:
            if kind == "Release":
                raise ClusterError(409, f"cannot re-use a name that is still in use: {key[3]!r} in {key[2]}")
            raise ClusterError(409, f'{kind} "{key[3]}" already exists in {key[2] or context}')
        new_id = object_id or "/".join(part for part in (key[2], key[3]) if part)
        # An update keeps its object (the name forces a replacement in the provider).
        self.objects = {k: v for k, v in self.objects.items() if v != object_id or k[:2] != key[:2]}
        self.objects[key] = new_id
        return new_id

    def delete(self, context: str, kind: str, inputs: dict[str, Any]) -> None:
        self.objects.pop(self.key(context, kind, inputs), None)

    def is_empty(self) -> bool:
        return not self.objects
