"""Every deploy after the first, through the real `pulumi` CLI and engine, for a non-prod and a
prod stack, into the Cloudflare API emulator.

Each step is one `pulumi up --json` (or `preview`, `refresh`, `destroy`): what the engine did is
read from its own events, and what the account holds afterwards from the emulator's state. The
steps and both accounts land in build/engine/lifecycle.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from cloudflare import Cloudflare

from infra.config.loader import PROJECT_ROOT, STACKS_DIR
from infra.config.migration_history import chained_digest
from infra.config.sections import MigrationStep
from tests.engine.conftest import Deployment
from tests.engine.project import Change, Run

GATEWAYS = ("ingest", "trigger", "warehouse")
TEMPLATE_LINE = "upstream_unreachable: 502"
UNKNOWN_ERROR = "An unknown error has occurred"  # what the API says with a 500
TABLE = PROJECT_ROOT / "build" / "engine" / "lifecycle.md"
_ROWS: list[tuple[str, str, str, str]] = []
# The real stacks deploy Airflow on Kubernetes: each test gets an API server of its own.
pytestmark = pytest.mark.kubernetes


@pytest.fixture(scope="module", autouse=True)
def lifecycle_table() -> Iterator[None]:
    yield
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| stack | step | the engine did | the account holds after it |", "| --- | --- | --- | --- |"]
    lines += [f"| {stack} | {step} | {did} | {holds} |" for stack, step, did, holds in _ROWS]
    TABLE.write_text("\n".join(lines) + "\n")


def scripts(*names: str, op: str = "update") -> set[Change]:
    return {(op, "WorkersScript", f"{name}-script") for name in names}


class Sequence:
    """Runs steps on one stack and records each in the lifecycle table."""

    def __init__(self, deployment: Deployment, stack: str) -> None:
        self.deployment = deployment
        self.project = deployment.project
        self.stack = stack

    def record(self, title: str, run: Run) -> None:
        did = _show(run.changes) + ("" if run.ok else f"; failed: {run.failed or run.errors[:120]!r}")
        _ROWS.append((self.stack, title, did, _holds(self.deployment.account(self.stack))))

    def up(self, title: str, expected: set[Change] | None) -> Run:
        run = self.project.up(self.stack)
        self.record(title, run)
        assert run.ok, run.describe()
        if expected is not None:
            assert run.changes == expected, f"{title}: {sorted(run.changes ^ expected)}"
        return run

    def same_again(self, title: str = "same config again") -> None:
        run = self.project.preview(self.stack, "--expect-no-changes")
        self.record(f"{title} (preview --expect-no-changes)", run)
        assert run.ok, f"{title}: {sorted(run.changes)}\n{run.describe()}"

    def edit(self, change: Callable[[dict[str, Any]], None]) -> None:
        self.project.edit(f"Pulumi.{self.stack}.yaml", change)

    def edit_shared(self, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.project.stacks_dir / "shared.yaml"
        document = yaml.safe_load(path.read_text())
        change(document)
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def append_migration(self, tag: str, new_classes: list[str]) -> None:
        def append(shared: dict[str, Any]) -> None:
            history = shared["durable_object_migrations"]
            entry: dict[str, Any] = {"tag": tag, "new_sqlite_classes": new_classes}
            entry["digest"] = chained_digest(
                history[-1]["digest"], MigrationStep(tag=tag, new_sqlite_classes=tuple(new_classes))
            )
            history.append(entry)

        self.edit_shared(append)

    def change_template(self, old: str, new: str) -> None:
        module = self.project.root / "worker_templates" / "lib" / "problem.js"
        text = module.read_text()
        assert old in text
        module.write_text(text.replace(old, new))

    def set_secret(self, key: str, value: str) -> None:
        self.project.pulumi("config", "set", "-s", self.stack, "--secret", f"airgate:{key}", "--", value)


def add_route(shared: dict[str, Any]) -> None:
    shared["gateways"]["ingest"]["routes"]["batch-list"] = {
        "path": "/v1/batches",
        "methods": ["GET"],
        "roles": ["data-engineer"],
    }


def rotate(version: int, expires: str) -> Callable[[dict[str, Any]], None]:
    def change(shared: dict[str, Any]) -> None:
        shared["service_tokens"]["ai-agent"]["rotation"] = {
            "version": version,
            "previous_secret_expires_at": expires,
        }

    return change


def remove_warehouse(sequence: Sequence) -> None:
    sequence.edit(lambda config: config["airgate:gateways"].pop("warehouse"))
    sequence.edit_shared(lambda shared: shared["gateways"].pop("warehouse"))


def restore_warehouse(sequence: Sequence) -> None:
    shared = yaml.safe_load((STACKS_DIR / "shared.yaml").read_text())
    own = yaml.safe_load((STACKS_DIR / f"Pulumi.{sequence.stack}.yaml").read_text())["config"]
    sequence.edit_shared(lambda doc: doc["gateways"].update({"warehouse": shared["gateways"]["warehouse"]}))
    sequence.edit(
        lambda config: config["airgate:gateways"].update({"warehouse": own["airgate:gateways"]["warehouse"]})
    )


def valid_secrets(token: dict[str, Any], now: str) -> list[str]:
    """The secrets the API accepts for a service token at `now`: the current one, and the previous
    one until the deadline the rotation set."""
    current = str(token["client_secret_version"])
    valid = [token["secrets"][current]]
    deadline = token.get("previous_client_secret_expires_at")
    previous = [v for k, v in token["secrets"].items() if k != current]
    if previous and deadline and _at(now) < _at(deadline):
        valid += previous[-1:]
    return valid


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_non_prod_lifecycle(deployment: Deployment) -> None:
    dev = Sequence(deployment, "dev")
    deployment.init("dev")
    planned = deployment.project.preview("dev")
    assert planned.ok, planned.describe()
    assert {op for op, _, _ in planned.changes} == {"create"}
    # The preview cannot list the chart's objects (helm.v4.Chart renders them as it deploys).
    created = dev.up("1 create (a brand-new stack: its reference to itself finds no outputs)", None)
    assert planned.changes <= created.changes and {op for op, _, _ in created.changes} == {"create"}
    assert scripts(*GATEWAYS, op="create") <= created.changes
    assert ("create", "Deployment", "airflow-chart:airflow/airflow-scheduler") in created.changes
    assert set(deployment.tags("dev").values()) == {"v1"}
    bound = {b["name"]: b for b in deployment.account("dev")["scripts"]["airgate-dev-ingest"]["bindings"]}
    assert bound["POLICY"]["type"] == "kv_namespace"
    dev.same_again()

    dev.change_template(TEMPLATE_LINE, "upstream_unreachable: 504")
    dev.up("2 Worker template change", scripts(*GATEWAYS))

    dev.edit_shared(add_route)
    dev.up("3 policy change (route added)", {("replace", "WorkersKv", "ingest-policy"), *scripts("ingest")})

    dev.set_secret("warehouseUpstreamToken", "rotated-upstream-credential")
    dev.up("4 secret change (warehouse upstream credential)", scripts("warehouse"))
    bound = {b["name"]: b for b in deployment.account("dev")["scripts"]["airgate-dev-warehouse"]["bindings"]}
    assert any(b.get("text") == "rotated-upstream-credential" for b in bound.values())

    dev.edit_shared(rotate(2, "2026-12-31T00:00:00Z"))
    dev.up("5 service-token rotation", {("update", "ZeroTrustAccessServiceToken", "identity-token-ai-agent")})
    token_id = deployment.project.resource_ids("dev", "ZeroTrustAccessServiceToken")[
        "identity-token-ai-agent"
    ]
    token = deployment.account("dev")["access"]["service_tokens"][token_id]
    assert len(valid_secrets(token, "2026-12-01T00:00:00Z")) == 2
    assert len(valid_secrets(token, "2027-01-01T00:00:00Z")) == 1
    dev.same_again()

    dev.append_migration("v2", ["AuditLog"])
    dev.up("6 new Durable Object class (v2)", scripts(*GATEWAYS))
    assert set(deployment.tags("dev").values()) == {"v2"}

    # A deploy that fails half-way: the API answers 500 to the trigger script's upload; the other
    # scripts run migration v3 first.
    dev.append_migration("v3", ["AuditArchive"])
    deployment.api.fail_next(
        "PUT", r"/accounts/[^/]+/workers/scripts/airgate-dev-trigger$", code=10013, message=UNKNOWN_ERROR
    )
    failed = deployment.project.up("dev")
    dev.record("7 deploy fails half-way (API 500 on the trigger script)", failed)
    assert not failed.ok and ("update", "WorkersScript", "trigger-script") in failed.failed
    assert f"{UNKNOWN_ERROR} (10013)" in failed.errors
    live = deployment.tags("dev")
    assert live["airgate-dev-trigger"] == "v2" and "v3" in live.values(), live
    # The engine saved what the failed deploy did: only the failed upload is left to do.
    dev.up("8 the next deploy (not wedged)", scripts("trigger"))
    assert set(deployment.tags("dev").values()) == {"v3"}
    dev.same_again()

    # Drift: someone deletes a policy entry behind the program's back; refresh sees it, up repairs.
    api = Cloudflare(api_token=deployment.token, base_url=deployment.api.base_url)
    namespace = deployment.project.resource_ids("dev", "WorkersKvNamespace")["ingest-kv"]
    key = deployment.project.resource_ids("dev", "WorkersKv")["ingest-policy"]
    api.kv.namespaces.values.delete(key, account_id=_account(deployment, "dev"), namespace_id=namespace)
    refreshed = deployment.project.refresh("dev")
    dev.record("9 refresh after a KV entry was deleted out of band", refreshed)
    assert refreshed.ok, refreshed.describe()
    assert refreshed.changes == {("delete", "WorkersKv", "ingest-policy")}
    dev.up("10 up after refresh: the entry is written again", {("create", "WorkersKv", "ingest-policy")})

    remove_warehouse(dev)
    removed = dev.up("11 gateway removed (not protected)", None)
    assert edge_side(removed) == {
        ("delete", "WorkersCustomDomain", "warehouse-domain"),
        ("delete", "WorkersScript", "warehouse-script"),
        ("delete", "WorkersKv", "warehouse-policy"),
        ("delete", "WorkersKvNamespace", "warehouse-kv"),
        ("delete", "RandomBytes", "warehouse-jwks-kv-mac-key"),
    }
    assert_airflow_rolls(removed)
    account = deployment.account("dev")
    assert "airgate-dev-warehouse" not in account["scripts"]
    assert [lost["script"] for lost in account["lost_durable_object_data"]] == ["airgate-dev-warehouse"]

    destroyed = deployment.project.destroy("dev")
    dev.record("12 pulumi destroy", destroyed)
    assert destroyed.ok, destroyed.describe()
    assert {op for op, _, _ in destroyed.changes} == {"delete"}
    _assert_empty(deployment.account("dev"))
    deployment.project.pulumi("stack", "rm", "-s", "dev", "--yes")
    assert json.loads(deployment.project.pulumi("stack", "ls", "--json").stdout) == []


# The Kubernetes side of a stack: what Airflow on the cluster is made of.
KUBERNETES_KINDS = {
    "Namespace",
    "Secret",
    "ConfigMap",
    "Deployment",
    "StatefulSet",
    "Job",
    "Service",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "PersistentVolumeClaim",
}


def edge_side(run: Run) -> set[Change]:
    return {change for change in run.changes if change[1] not in KUBERNETES_KINDS}


def assert_airflow_rolls(run: Run) -> None:
    """A gateway's Airflow connections changed: the connections Secret is updated in place (never
    replaced), and the pods that read it roll through updates of the chart's workloads."""
    airflow = run.changes - edge_side(run)
    assert ("update", "Secret", "airflow-connections") in airflow, sorted(airflow)
    assert {op for op, _, _ in airflow} == {"update"}, sorted(airflow)


@pytest.mark.stack("prod")
def test_prod_lifecycle(deployment: Deployment) -> None:
    prod = Sequence(deployment, "prod")
    secrets = deployment.init("prod", logpushOwnershipChallenge="not-the-token")
    assert secrets
    # The Logpush destination's owner must prove it: the API refuses the job until the challenge
    # written into the bucket comes back.
    planned = deployment.project.preview("prod")
    assert planned.ok, planned.describe()
    failed = deployment.project.up("prod")
    prod.record("0 create, wrong ownership challenge", failed)
    assert not failed.ok and ("create", "LogpushJob", "decisions-job") in failed.failed, failed.describe()
    assert "(1002)" in failed.errors
    assert deployment.account("prod")["logpush_jobs"] == {}

    api = Cloudflare(api_token=deployment.token, base_url=deployment.api.base_url)
    destination = _logpush_destination(deployment)
    api.logpush.ownership.create(destination_conf=destination, account_id=_account(deployment, "prod"))
    challenge = deployment.account("prod")["ownership_challenges"]
    prod.set_secret("logpushOwnershipChallenge", next(iter(challenge.values())))
    # The engine stopped at the failure: what it had not done yet, it does now.
    rest = prod.up("1 create the rest, challenge set (not wedged)", None)
    assert planned.changes - failed.changes <= rest.changes and {op for op, _, _ in rest.changes} == {
        "create"
    }
    assert ("create", "LogpushJob", "decisions-job") in rest.changes
    assert len(deployment.account("prod")["logpush_jobs"]) == 1
    assert set(deployment.tags("prod").values()) == {"v1"}
    kept = {
        (r["type"].rsplit(":", 1)[-1], r["urn"].rsplit("::", 1)[-1]): (
            r.get("protect", False),
            r.get("retainOnDelete", False),
        )
        for r in deployment.project.resources("prod")
    }
    assert kept[("RandomBytes", "airflow-fernet-key")] == (True, False)
    assert kept[("Secret", "airflow-fernet-key")] == (True, True)
    prod.same_again()

    # Protected: the engine refuses when it reaches the protected script. Deletes run in
    # dependency order and the custom domain comes first, so the hostname is already detached:
    # the script, its Durable Objects' state and the policy namespace are kept.
    remove_warehouse(prod)
    refused = deployment.project.up("prod")
    prod.record("2 gateway removed: refused at the protected script", refused)
    assert not refused.ok and "protected" in refused.errors
    assert ("delete", "WorkersScript", "warehouse-script") in refused.failed
    assert "airgate-prod-warehouse" in deployment.tags("prod")
    assert deployment.account("prod").get("lost_durable_object_data", []) == []

    # Put the gateway back: the next deploy is not wedged and re-attaches what went. The refused
    # run still saved the stack's outputs without the gateway's last upload, so its script is
    # uploaded again, with the same tag (the live tag decides the migrations, not the outputs).
    restore_warehouse(prod)
    back = prod.up("2b gateway put back: the next deploy re-creates what went", None)
    assert edge_side(back) == {("create", "WorkersCustomDomain", "warehouse-domain"), *scripts("warehouse")}
    assert_airflow_rolls(back)
    assert deployment.tags("prod")["airgate-prod-warehouse"] == "v1"

    # Removing it on purpose: `pulumi state unprotect`, then up. The namespace and the script (its
    # Durable Objects' state) are retained in the account; the rest is deleted.
    remove_warehouse(prod)
    for name in ("warehouse-kv", "warehouse-script"):
        urn = next(r["urn"] for r in deployment.project.resources("prod") if r["urn"].endswith(f"::{name}"))
        deployment.project.pulumi("state", "unprotect", "-s", "prod", urn, "--yes")
    removed = prod.up("3 removed after state unprotect: data retained", None)
    assert ("delete", "WorkersCustomDomain", "warehouse-domain") in removed.changes
    account = deployment.account("prod")
    assert account["scripts"]["airgate-prod-warehouse"]["migration_tag"] == "v1"
    assert "airgate-prod-warehouse-policy" in {n["title"] for n in account["kv_namespaces"].values()}
    assert account.get("lost_durable_object_data", []) == []

    # Moving the stack to another account would replace protected data: refused before any change.
    original = yaml.safe_load((STACKS_DIR / "Pulumi.prod.yaml").read_text())["config"]["airgate:account_id"]
    prod.edit(lambda config: config.update({"airgate:account_id": "f" * 32}))
    moved = deployment.project.preview("prod")
    prod.record("4 account moved: replacing protected data refused (preview)", moved)
    assert not moved.ok and "protect" in moved.errors
    prod.edit(lambda config: config.update({"airgate:account_id": original}))
    prod.same_again("5 account moved back")


def _account(deployment: Deployment, stack: str) -> str:
    from infra.config.loader import load_stack

    return load_stack(stack, deployment.project.stacks_dir).config.account_id


def _logpush_destination(deployment: Deployment) -> str:
    from infra.config.loader import load_stack

    logpush = load_stack("prod", deployment.project.stacks_dir).config.logpush
    assert logpush is not None
    return logpush.destination_conf


def _assert_empty(account: dict[str, Any]) -> None:
    held = {
        "scripts": account["scripts"],
        "kv_namespaces": account["kv_namespaces"],
        "worker_domains": account["worker_domains"],
        "tunnels": account["tunnels"],
        "logpush_jobs": account["logpush_jobs"],
        **{f"access.{k}": v for k, v in account["access"].items()},
    }
    assert all(not v for v in held.values()), {k: list(v) for k, v in held.items() if v}


def _holds(account: dict[str, Any]) -> str:
    tags = sorted({str(s.get("migration_tag")) for s in account["scripts"].values()})
    access = account["access"]
    return (
        f"{len(account['scripts'])} scripts (tags {', '.join(tags) or '-'}), "
        f"{len(account['kv_namespaces'])} KV namespaces, {len(account['worker_domains'])} domains, "
        f"{sum(len(v) for v in access.values())} Access objects, {len(account['tunnels'])} tunnels, "
        f"{len(account['logpush_jobs'])} Logpush jobs"
    )


def _show(changes: set[Change]) -> str:
    if not changes:
        return "no changes"
    if len(changes) > 8:
        ops: dict[str, int] = {}
        for op, _, _ in changes:
            ops[op] = ops.get(op, 0) + 1
        return ", ".join(f"{op} x{count}" for op, count in sorted(ops.items()))
    return ", ".join(f"{op} {kind} {name}" for op, kind, name in sorted(changes))
