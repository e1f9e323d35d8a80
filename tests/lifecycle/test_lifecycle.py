"""The second `pulumi up`, and every one after it: the real program, deployed again and again into
the Cloudflare API stand-in, for a non-prod and a prod stack.

Each step previews, then deploys; both must show exactly the expected creates, updates,
replacements and deletes, and the stand-in must accept every upload (migration tags, ownership
challenge, hostnames, bindings). The sequence table lands in build/lifecycle/sequence.md.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.config.loader import STACKS_DIR, referenced_secrets
from infra.ephemeral.model import derive_stack_file
from tests.lifecycle.conftest import Change, Sequence, StackFiles
from tests.lifecycle.engine import Engine, kind_of

GATEWAYS = ("ingest", "trigger", "warehouse")
TEMPLATE_LINE = "upstream_unreachable: 502"


def scripts(*names: str, op: str = "update") -> set[Change]:
    return {(op, "WorkersScript", f"{name}-script") for name in names}


def tags(sequence: Sequence, account: str) -> dict[str, str]:
    return {s["id"]: s["migrationTag"] for s in sequence.engine.api.script_tags(account)}


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


def rotate_trigger(version: int, expires: str) -> Callable[[dict[str, Any]], None]:
    """The Airflow trigger gateway's tunnel service token gets a new secret."""

    def change(config: dict[str, Any]) -> None:
        config["airgate:airflow"]["trigger_token_rotation"] = {
            "version": version,
            "previous_secret_expires_at": expires,
        }

    return change


def own_namespace(label: str) -> Callable[[dict[str, Any]], None]:
    """A pr-N stack on dev's cluster runs Airflow in a namespace of its own."""

    def change(config: dict[str, Any]) -> None:
        config["airgate:protect"] = False
        config["airgate:airflow"]["namespace"] = f"airflow-{label}"

    return change


def own_hostnames(label: str) -> Callable[[dict[str, Any]], None]:
    """Every hostname of a dev-like stack (gateways, the Airflow UI and API, the trigger gateway's
    upstream) moved to `<name>-<label>.dev.`."""

    def moved(host: str) -> str:
        return host.replace(".dev.", f"-{label}.dev.")

    def change(config: dict[str, Any]) -> None:
        for gateway in config["airgate:gateways"].values():
            gateway["hostname"] = moved(gateway["hostname"])
        airflow = config["airgate:airflow"]
        airflow["ui_hostname"], airflow["api_hostname"] = (
            moved(airflow["ui_hostname"]),
            moved(airflow["api_hostname"]),
        )
        trigger = config["airgate:gateways"]["trigger"]["upstream"]
        trigger["url"] = moved(trigger["url"])

    return change


# A gateway's Airflow connections leave the connections Secret; the pods that read it roll (their
# pod annotation is a digest of the connections, in the chart's values: the chart is a component,
# whose rendered objects this stand-in engine does not see; the chart tier deploys them for real).
AIRFLOW_CONNECTIONS = {("update", "Secret", "airflow-connections")}


def remove_gateway(name: str) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        config["airgate:gateways"].pop(name)

    return change


def token_id(sequence: Sequence, stack: str, key: str) -> str:
    """The id of a stack's service token: `key` is a token key of the stack, or a resource name."""
    names = {f"identity-token-{key}", key}
    return next(
        s.id
        for s in sequence.engine.stacks[stack].resources.values()
        if s.type.endswith("ZeroTrustAccessServiceToken") and s.name in names
    )


def test_non_prod_lifecycle(
    sequence: Sequence, files: StackFiles, template_change: Callable[[str, str], None]
) -> None:
    account = files.load("dev").config.account_id
    created = sequence.step("dev", "1 create", _all_creates(sequence, "dev"))
    assert len(created.steps) > 50
    airflow = {("create", "Namespace", "airflow-namespace"), ("create", "Job", "airflow-bootstrap")}
    assert airflow <= created.changes()
    assert set(tags(sequence, account).values()) == {"v1"}

    sequence.step("dev", "2 same config again", set())

    template_change(TEMPLATE_LINE, "upstream_unreachable: 504")
    sequence.step("dev", "3 Worker template change", scripts(*GATEWAYS))

    files.edit_shared(add_route)
    sequence.step(
        "dev",
        "4 policy change (route added)",
        {("replace", "WorkersKv", "ingest-policy"), *scripts("ingest")},
    )

    files.edit_shared(rotate(2, "2026-12-31T00:00:00Z"))
    sequence.step(
        "dev",
        "5 service-token rotation",
        {("update", "ZeroTrustAccessServiceToken", "identity-token-ai-agent")},
    )
    rotated = token_id(sequence, "dev", "ai-agent")
    assert len(sequence.engine.api.valid_token_secrets(rotated, now="2026-12-01T00:00:00Z")) == 2
    assert len(sequence.engine.api.valid_token_secrets(rotated, now="2027-01-01T00:00:00Z")) == 1

    # The trigger gateway's own token (the Airflow tunnel's API app): the trigger Worker binds the
    # new secret; the old one stays valid for it until the deadline.
    files.edit("dev", rotate_trigger(2, "2026-12-31T00:00:00Z"))
    sequence.step(
        "dev",
        "5b trigger token rotation (Airflow tunnel)",
        {("update", "ZeroTrustAccessServiceToken", "airflow-trigger-access-token"), *scripts("trigger")},
    )
    trigger_token = token_id(sequence, "dev", "airflow-trigger-access-token")
    assert len(sequence.engine.api.valid_token_secrets(trigger_token, now="2026-12-01T00:00:00Z")) == 2
    sequence.step("dev", "5c same config again", set())

    files.append_migration("v2", ["AuditLog"])
    sequence.step("dev", "6 new Durable Object class (v2)", scripts(*GATEWAYS))
    assert set(tags(sequence, account).values()) == {"v2"}
    sequence.step("dev", "6 same config again", set())

    # A deploy that fails half-way: the ingest script runs migration v3, then the trigger
    # script's upload fails; the stack's outputs are not written.
    files.append_migration("v3", ["AuditArchive"])
    sequence.engine.api.fail_next["WorkersScript:airgate-dev-trigger"] = "internal error"
    failed = sequence.engine.up(files.load("dev"), sequence.secrets["dev"])
    assert failed.error is not None and "internal error" in failed.error
    live = tags(sequence, account)
    assert live["airgate-dev-trigger"] == "v2" and "v3" in live.values(), live  # half-way
    sequence.rows.append(
        ("dev", "6b deploy fails half-way", "fails at trigger-script", "fails at trigger-script")
    )
    sequence.step("dev", "6c the next deploy (not wedged)", scripts(*GATEWAYS))
    assert set(tags(sequence, account).values()) == {"v3"}
    sequence.step("dev", "6d same config again", set())

    files.edit("dev", remove_gateway("warehouse"))
    files.edit_shared(lambda shared: shared["gateways"].pop("warehouse"))
    sequence.step(
        "dev",
        "7 gateway removed",
        {
            ("delete", "WorkersCustomDomain", "warehouse-domain"),
            ("delete", "WorkersScript", "warehouse-script"),
            ("delete", "WorkersKv", "warehouse-policy"),
            ("delete", "WorkersKvNamespace", "warehouse-kv"),
            *AIRFLOW_CONNECTIONS,
        },
    )
    assert "airgate-dev-warehouse" not in tags(sequence, account)
    assert sequence.engine.api.lost_durable_object_state == ["airgate-dev-warehouse"]


def test_prod_lifecycle(
    sequence: Sequence, files: StackFiles, template_change: Callable[[str, str], None]
) -> None:
    loaded = files.load("prod")
    account = loaded.config.account_id
    assert loaded.config.logpush is not None
    challenge = sequence.engine.api.request_ownership_challenge(loaded.config.logpush.destination_conf)
    sequence.secrets_for(loaded)["logpushOwnershipChallenge"] = "not-the-token"
    creates = _all_creates(sequence, "prod")
    failed = sequence.step(
        "prod",
        "0 create, wrong ownership challenge",
        creates,
        error="incorrect ownership challenge",
        partial=True,
    )
    assert ("create", "LogpushJob", "decisions-job") in failed.changes()
    assert sequence.engine.api.logpush_jobs == {}
    sequence.secrets["prod"]["logpushOwnershipChallenge"] = challenge
    done = {change for change in failed.changes() if change[2] != "decisions-job"}
    sequence.step("prod", "1 create the rest, challenge set (not wedged)", creates - done)
    assert set(tags(sequence, account).values()) == {"v1"}
    assert len(sequence.engine.api.logpush_jobs) == 1
    # The fernet key encrypts Airflow's connections and variables: protected, and its Secret
    # outlives a delete by Pulumi.
    kept = {
        (kind_of(s.type), s.name): (s.protect, s.retain_on_delete)
        for s in sequence.engine.stacks["prod"].resources.values()
    }
    assert kept[("RandomBytes", "airflow-fernet-key")] == (True, False)
    assert kept[("Secret", "airflow-fernet-key")] == (True, True)

    sequence.step("prod", "2 same config again", set())

    template_change(TEMPLATE_LINE, "upstream_unreachable: 504")
    sequence.step("prod", "3 Worker template change", scripts(*GATEWAYS))

    files.edit_shared(add_route)
    sequence.step(
        "prod",
        "4 policy change (route added)",
        {("replace", "WorkersKv", "ingest-policy"), *scripts("ingest")},
    )

    files.edit_shared(rotate(2, "2026-12-31T00:00:00Z"))
    sequence.step(
        "prod",
        "5 service-token rotation",
        {("update", "ZeroTrustAccessServiceToken", "identity-token-ai-agent")},
    )

    files.append_migration("v2", ["AuditLog"])
    sequence.step("prod", "6 new Durable Object class (v2)", scripts(*GATEWAYS))
    assert set(tags(sequence, account).values()) == {"v2"}

    files.edit("prod", remove_gateway("warehouse"))
    files.edit_shared(lambda shared: shared["gateways"].pop("warehouse"))
    # Protected: Pulumi refuses the deletes before running any of them, so the plan names none. The
    # program's updates run first (Pulumi generates deletes after the program): Airflow's
    # connections to the warehouse gateway go.
    sequence.step(
        "prod",
        "7 gateway removed: refused",
        AIRFLOW_CONNECTIONS,
        error="refusing to delete protected resource",
    )
    assert "airgate-prod-warehouse" in tags(sequence, account)
    assert sequence.engine.api.lost_durable_object_state == []

    # Put the gateway back: the refusal left everything in place, so nothing changes.
    _restore_warehouse(files)
    sequence.step("prod", "7b gateway kept: the next deploy is not wedged", AIRFLOW_CONNECTIONS)
    sequence.step("prod", "7b same config again", set())

    # Removing it on purpose: `pulumi state unprotect`, then up. The namespace and the script
    # (its Durable Objects' state) are retained in the account; the rest is deleted.
    files.edit("prod", remove_gateway("warehouse"))
    files.edit_shared(lambda shared: shared["gateways"].pop("warehouse"))
    for name in ("warehouse-kv", "warehouse-script"):
        sequence.engine.unprotect("prod", name)
    sequence.step(
        "prod",
        "7c removed after state unprotect: data retained",
        {
            ("delete", "WorkersCustomDomain", "warehouse-domain"),
            ("retain", "WorkersScript", "warehouse-script"),
            ("delete", "WorkersKv", "warehouse-policy"),
            ("retain", "WorkersKvNamespace", "warehouse-kv"),
            ("delete", "ZeroTrustAccessApplication", "warehouse-access"),
            *AIRFLOW_CONNECTIONS,
        },
    )
    assert tags(sequence, account)["airgate-prod-warehouse"] == "v2"
    assert "airgate-prod-warehouse-policy" in {n["title"] for n in sequence.engine.api.namespaces.values()}
    assert sequence.engine.api.lost_durable_object_state == []


def test_pr_stack_destroyed_leaves_nothing(sequence: Sequence, files: StackFiles) -> None:
    # Derived as `airgate stack create --pr 7 --with-airflow` derives it: own hostnames, own
    # Airflow namespace, protect off.
    base_file = yaml.safe_load((files.root / "Pulumi.dev.yaml").read_text())
    dev = files.load("dev")
    derived = derive_stack_file(base_file, dev.config, "dev", 7, with_airflow=True, settings=dev.settings)
    (files.root / "Pulumi.pr-7.yaml").write_text(yaml.safe_dump(derived, sort_keys=False))
    created = sequence.step("pr-7", "1 create", _all_creates(sequence, "pr-7"))
    kinds = {kind for _, kind, _ in created.changes()}
    assert {"ZeroTrustTunnelCloudflared", "Job", "Secret", "RandomBytes"} <= kinds
    assert [t["name"] for t in sequence.engine.api.tunnels.values()] == ["airgate-pr-7-airflow"]
    assert ("acme-dev", "Namespace", None, "airflow-pr-7") in sequence.engine.cluster.objects
    sequence.step("pr-7", "2 same config again", set())
    sequence.destroy("pr-7", "8 pr-N stack destroyed", _all_deletes(sequence, "pr-7"))
    assert sequence.engine.api.is_empty()
    assert sequence.engine.cluster.is_empty()  # Kubernetes objects and the Helm release
    assert sequence.engine.stacks["pr-7"].resources == {}  # random values live only in state


def test_a_stack_on_hostnames_another_stack_holds_is_refused_then_recovers(
    sequence: Sequence, files: StackFiles
) -> None:
    sequence.step("dev", "1 create", _all_creates(sequence, "dev"))
    files.derive("pr-8", "dev", own_namespace("pr-8"))
    failed = sequence.step(
        "pr-8", "1 create on dev's hostnames", _all_creates(sequence, "pr-8"), error="already", partial=True
    )
    assert failed.error is not None and ".dev.acme-data.com" in failed.error

    files.edit("pr-8", own_hostnames("pr-8"))
    sequence.step("pr-8", "2 own hostnames: the next deploy is not wedged", None)
    sequence.step("pr-8", "3 same config again", set())
    domains = {host: bound["service"] for (_, host), bound in sequence.engine.api.domains.items()}
    assert domains["ingest.dev.acme-data.com"] == "airgate-dev-ingest"
    assert domains["ingest-pr-8.dev.acme-data.com"] == "airgate-pr-8-ingest"
    sequence.step("dev", "2 dev untouched", set())


def test_prod_refuses_to_replace_protected_data(sequence: Sequence, files: StackFiles) -> None:
    loaded = files.load("prod")
    assert loaded.config.logpush is not None
    sequence.secrets_for(loaded)["logpushOwnershipChallenge"] = (
        sequence.engine.api.request_ownership_challenge(loaded.config.logpush.destination_conf)
    )
    sequence.step("prod", "1 create", _all_creates(sequence, "prod"))
    original = loaded.config.account_id
    files.edit("prod", lambda config: config.update({"airgate:account_id": "f" * 32}))
    moved = sequence.engine.preview(files.load("prod"), sequence.secrets["prod"])
    assert moved.error is not None and "marked for protection" in moved.error
    run = sequence.engine.up(files.load("prod"), sequence.secrets["prod"])
    assert run.error is not None and "marked for protection" in run.error
    assert all(
        op != "replace" or kind not in {"WorkersKvNamespace", "WorkersScript"}
        for op, kind, _ in run.changes()
    )
    files.edit("prod", lambda config: config.update({"airgate:account_id": original}))
    sequence.step("prod", "account moved back: not wedged", None)
    assert len(sequence.engine.api.namespaces) == 3
    in_state = [
        s for s in sequence.engine.stacks["prod"].resources.values() if s.type.endswith("AccessPolicy")
    ]
    assert set(sequence.engine.api.policies) == {s.id for s in in_state}  # replaced halves deleted


def test_a_live_tag_the_history_lost_stops_the_deploy_naming_it(
    sequence: Sequence, files: StackFiles
) -> None:
    sequence.step("dev", "1 create", _all_creates(sequence, "dev"))
    script = sequence.engine.api.scripts[(files.load("dev").config.account_id, "airgate-dev-ingest")]
    script.migration_tag = "v7"  # deployed from another history (wrangler, another branch)
    run = sequence.engine.up(files.load("dev"), sequence.secrets["dev"])
    assert run.error is not None
    assert "migration tag 'v7'" in run.error and "durable_object_migrations does not have" in run.error
    assert script.uploads == 1


def _all_creates(sequence: Sequence, stack: str) -> set[Change]:
    loaded = sequence.files.load(stack)
    preview = sequence.engine.preview(loaded, sequence.secrets_for(loaded))
    assert all(op == "create" for op, _, _ in preview.changes())
    return preview.changes()


def _all_deletes(sequence: Sequence, stack: str) -> set[Change]:
    return {("delete", kind_of(s.type), s.name) for s in sequence.engine.stacks[stack].resources.values()}


def _restore_warehouse(files: StackFiles) -> None:
    shared = yaml.safe_load((STACKS_DIR / "shared.yaml").read_text())
    prod = yaml.safe_load((STACKS_DIR / "Pulumi.prod.yaml").read_text())["config"]
    files.edit_shared(lambda doc: doc["gateways"].update({"warehouse": shared["gateways"]["warehouse"]}))
    files.edit(
        "prod",
        lambda config: config["airgate:gateways"].update(
            {"warehouse": prod["airgate:gateways"]["warehouse"]}
        ),
    )


ACTIONS = ("route", "rotate", "migration", "failed-migration", "secret")


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(ACTIONS), min_size=2, max_size=4))
def test_any_sequence_of_changes_deploys_then_settles(actions: list[str]) -> None:
    """Whatever order the changes come in, failures included: every deploy after a failure is
    accepted, every script ends at the newest tag, and the same config again changes nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        files = StackFiles(Path(tmp) / "stacks")
        engine = Engine()
        loaded = files.load("dev")
        secrets = {key: f"s-{key}" for key in referenced_secrets(loaded.config)}
        assert engine.up(loaded, secrets).error is None
        for index, action in enumerate(actions, start=2):
            if action == "route":
                files.edit_shared(
                    lambda shared, i=index: shared["gateways"]["ingest"]["routes"].update(
                        {
                            f"extra-{i}": {
                                "path": f"/v1/extra{i}",
                                "methods": ["GET"],
                                "roles": ["data-engineer"],
                            }
                        }
                    )
                )
            elif action == "rotate":
                files.edit_shared(rotate(index, "2026-12-31T00:00:00Z"))
            elif action == "secret":
                secrets["ingestUpstreamToken"] = f"rotated-{index}"
            else:
                files.append_migration(f"v{index}", [f"Class{index}"])
                if action == "failed-migration":
                    engine.api.fail_next["WorkersScript:airgate-dev-trigger"] = "internal error"
                    assert engine.up(files.load("dev"), secrets).error is not None
            run = engine.up(files.load("dev"), secrets)
            assert run.error is None, (action, run.error)
            assert engine.preview(files.load("dev"), secrets).changes() == set(), action
        history = files.load("dev").config.durable_object_migrations
        assert {s["migrationTag"] for s in engine.api.script_tags(loaded.config.account_id)} == {
            history[-1].tag
        }
