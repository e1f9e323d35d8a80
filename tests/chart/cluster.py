"""A real Kubernetes control plane for the chart tier: etcd and kube-apiserver (toolchain/etcd,
toolchain/kube-apiserver) on free loopback ports, with a CA, a serving certificate, a service-account
signing key and an admin bearer token generated for the run, and nothing else: no scheduler, no
controller manager, no nodes. So the API server decides what it accepts (schemas, admission,
immutable fields) and nothing ever runs.

`control_plane(folder)` starts both, waits for `/readyz`, yields a `Cluster` (its URL, CA, token and a
kubeconfig) and stops both on the way out, whatever happened inside.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.chart.helm import ROOT

TOOLS = ROOT / ".tools" / "bin"
READY_WITHIN = 120.0
"""Seconds kube-apiserver may take to answer /readyz ok (its first start on a loaded machine)."""


@dataclass(frozen=True)
class Cluster:
    url: str
    ca: Path
    token: str
    kubeconfig: Path
    folder: Path

    def kubeconfig_text(self, context: str) -> str:
        """A kubeconfig whose one context has the name the stack expects (`kubernetes.context`)."""
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "chart-tier",
                        "cluster": {
                            "server": self.url,
                            "certificate-authority-data": _b64(self.ca.read_bytes()),
                        },
                    }
                ],
                "users": [{"name": "admin", "user": {"token": self.token}}],
                "contexts": [{"name": context, "context": {"cluster": "chart-tier", "user": "admin"}}],
                "current-context": context,
            }
        )

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        """One call to the API server as the admin; raises `ApiError` with the server's Status."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, error.read().decode()) from None
        return json.loads(text) if text else None

    def resource_path(self, api_version: str, kind: str, namespace: str | None) -> str:
        """The collection URL of a kind, from the server's own discovery."""
        name, namespaced = _discovery(self)[(api_version, kind)]
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        return f"{base}/namespaces/{namespace}/{name}" if namespaced and namespace else f"{base}/{name}"

    def create(self, obj: dict[str, Any], namespace: str | None) -> Any:
        """POST with strict field validation: an unknown or duplicate field is refused, not dropped."""
        path = self.resource_path(obj["apiVersion"], obj["kind"], namespace)
        return self.request("POST", f"{path}?fieldValidation=Strict", obj)

    def namespaced_objects(self, namespace: str) -> list[str]:
        """`kind/name` of every object in the namespace, over every listable namespaced kind."""
        found: list[str] = []
        for (api_version, kind), (name, namespaced) in sorted(_discovery(self).items()):
            if not namespaced or "/" in name or kind in {"Event", "Binding"}:
                continue
            try:
                listed = self.request("GET", self.resource_path(api_version, kind, namespace))
            except ApiError as error:
                if error.code in (404, 405):
                    continue
                raise
            found += [f"{kind}/{item['metadata']['name']}" for item in listed.get("items", [])]
        return sorted(set(found))


_DISCOVERED: dict[str, dict[tuple[str, str], tuple[str, bool]]] = {}


def _discovery(cluster: Cluster) -> dict[tuple[str, str], tuple[str, bool]]:
    """(apiVersion, kind) → (resource name, namespaced), preferred and other versions alike."""
    if cluster.url not in _DISCOVERED:
        versions = ["v1"]
        for group in cluster.request("GET", "/apis")["groups"]:
            versions += [v["groupVersion"] for v in group["versions"]]
        table: dict[tuple[str, str], tuple[str, bool]] = {}
        for version in versions:
            path = "/api/v1" if version == "v1" else f"/apis/{version}"
            for resource in cluster.request("GET", path)["resources"]:
                if "/" not in resource["name"]:
                    table[(version, resource["kind"])] = (resource["name"], resource["namespaced"])
        _DISCOVERED[cluster.url] = table
    return _DISCOVERED[cluster.url]


class ApiError(RuntimeError):
    def __init__(self, code: int, body: str) -> None:
        try:
            self.status: dict[str, Any] = json.loads(body)
        except json.JSONDecodeError:
            self.status = {"message": body}
        self.code = code
        super().__init__(f"{code}: {self.status.get('message', body)}")


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_credentials(folder: Path) -> dict[str, Path | str]:
    """A CA, the API server's certificate for 127.0.0.1 signed by it, a service-account key pair and
    an admin token (in the API server's static token file), all new for this run."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airgate chart tier CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = _key()
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    service_accounts = _key()
    token = secrets.token_urlsafe(32)
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "server.crt": server.public_bytes(serialization.Encoding.PEM),
        "server.key": _pem(server_key),
        "sa.key": _pem(service_accounts),
        "sa.pub": service_accounts.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        # token,user,uid,"groups": system:masters is the superuser group under RBAC.
        "tokens.csv": f'{token},airgate-admin,airgate-admin,"system:masters"\n'.encode(),
    }
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content)
        path.chmod(0o600)
    return {**{name: folder / name for name in files}, "token": token}


@contextmanager
def _process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def _wait_ready(cluster: Cluster, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited {process.returncode}:\n{_tail(log)}")
        try:
            request = urllib.request.Request(cluster.url + "/readyz")
            request.add_header("Authorization", f"Bearer {cluster.token}")
            context = ssl.create_default_context(cafile=str(cluster.ca))
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(0.5)  # polling /readyz: the server has no way to tell us it is ready
    raise RuntimeError(f"kube-apiserver not ready within {READY_WITHIN:.0f} s ({last}):\n{_tail(log)}")


@contextmanager
def control_plane(folder: Path) -> Iterator[Cluster]:
    for tool in ("etcd", "kube-apiserver"):
        if not (TOOLS / tool).exists():
            raise RuntimeError(f"{TOOLS / tool} is missing: run ./dev test chart (it builds {tool})")
    folder.mkdir(parents=True, exist_ok=True)
    credentials = write_credentials(folder)
    etcd_client, etcd_peer, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_client}"
    with ExitStack() as stack:
        stack.enter_context(
            _process(
                [
                    str(TOOLS / "etcd"),
                    "--name=chart-tier",
                    f"--data-dir={folder / 'etcd'}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-cluster=chart-tier=http://127.0.0.1:{etcd_peer}",
                    "--log-level=warn",
                ],
                folder / "etcd.log",
            )
        )
        log = folder / "kube-apiserver.log"
        process = stack.enter_context(
            _process(
                [
                    str(TOOLS / "kube-apiserver"),
                    f"--etcd-servers={etcd_url}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--cert-dir={folder / 'certs'}",
                    f"--tls-cert-file={credentials['server.crt']}",
                    f"--tls-private-key-file={credentials['server.key']}",
                    f"--client-ca-file={credentials['ca.crt']}",
                    f"--token-auth-file={credentials['tokens.csv']}",
                    "--authorization-mode=RBAC",
                    "--anonymous-auth=false",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={credentials['sa.pub']}",
                    f"--service-account-signing-key-file={credentials['sa.key']}",
                    "--service-cluster-ip-range=10.96.0.0/16",
                    "--profiling=false",
                    "--v=0",
                ],
                log,
            )
        )
        cluster = Cluster(
            f"https://127.0.0.1:{api_port}",
            Path(credentials["ca.crt"]),
            str(credentials["token"]),
            folder / "kubeconfig",
            folder,
        )
        cluster.kubeconfig.write_text(cluster.kubeconfig_text("chart-tier"))
        cluster.kubeconfig.chmod(0o600)
        _wait_ready(cluster, process, log)
        yield cluster
