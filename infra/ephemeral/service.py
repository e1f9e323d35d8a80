"""`airgate stack create|destroy|sweep|list`, as orchestration over a `StackWorkspace`.

Everything that decides is in `infra.ephemeral.model`; this module only gathers facts from the
workspace, asks the model, and acts. Every refusal happens before the first mutating call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.config.loader import load_stack, referenced_secrets, stack_file
from infra.ephemeral.model import (
    TAG_BASE,
    TAG_WITH_AIRFLOW,
    EphemeralError,
    StackFacts,
    SweepDecision,
    check_caps,
    collisions,
    count_caps,
    derive_stack_file,
    derived_header,
    destroy_refusal,
    ephemeral_tags,
    expiry,
    is_ephemeral_name,
    needed_from_plan,
    stack_name_for,
    sweep_decisions,
)
from infra.ephemeral.workspace import AccountUsage, StackWorkspace
from infra.plan.format import PlanDocument

Planner = Callable[[str, Path], PlanDocument]
"""(stack name, stacks dir) -> plan document; the offline plan in production, a fake in tests."""


def offline_plan(name: str, stacks_dir: Path) -> PlanDocument:
    from infra.plan.document import plan_document
    from infra.plan.runner import run_plan

    loaded = load_stack(name, stacks_dir)
    return plan_document(loaded, run_plan(loaded))


@dataclass
class CreateResult:
    stack: str
    file: Path
    tags: dict[str, str]
    needed: dict[str, int]
    changes: dict[str, Any] = field(default_factory=dict)


def secret_env_name(key: str) -> str:
    """`oktaClientSecret` -> `AIRGATE_SECRET_OKTACLIENTSECRET`: how CI hands secrets to a pr stack."""
    return f"AIRGATE_SECRET_{key.upper()}"


def create(
    workspace: StackWorkspace,
    usage: AccountUsage,
    *,
    pr: int,
    base: str,
    ttl: dt.timedelta,
    now: dt.datetime,
    stacks_dir: Path,
    environ: Mapping[str, str],
    planner: Planner = offline_plan,
    dry_run: bool = False,
    with_airflow: bool = False,
) -> CreateResult:
    """Derive `pr-<n>` from `base`, check names, secrets and caps, then create/update it and tag it."""
    name = stack_name_for(pr)
    base_loaded = load_stack(base, stacks_dir)
    base_document = yaml.safe_load(stack_file(base, stacks_dir).read_text())
    derived = derive_stack_file(
        base_document, base_loaded.config, base, pr, with_airflow, base_loaded.settings
    )
    target = stack_file(name, stacks_dir)
    target.write_text(derived_header(base, pr) + yaml.safe_dump(derived, sort_keys=False))

    loaded = load_stack(name, stacks_dir)  # the derived file must itself be a valid stack
    plan = planner(name, stacks_dir)
    clashes = collisions(plan, [planner(base, stacks_dir)])
    if clashes:
        raise EphemeralError("names would collide with the base stack: " + "; ".join(clashes))

    missing = [
        key for key in sorted(referenced_secrets(loaded.config)) if not environ.get(secret_env_name(key))
    ]
    if missing:
        raise EphemeralError(
            "secrets for the test stack are not in the environment: "
            + ", ".join(secret_env_name(key) for key in missing)
        )

    needed = needed_from_plan(plan)
    exists = name in workspace.list_stacks()
    ours = count_caps(str(r.get("type", "")) for r in (workspace.state_resources(name) if exists else []))
    problems = check_caps(usage.in_use(), needed, ours)
    if problems:
        raise EphemeralError("account caps would be exceeded: " + "; ".join(problems))

    tags = {**ephemeral_tags(base, pr, now, ttl), TAG_WITH_AIRFLOW: str(with_airflow).lower()}
    result = CreateResult(name, target, tags, needed)
    if dry_run:
        return result
    workspace.create_or_select(name)
    # Tag first: a stack whose `up` fails half-way is still known, dated and sweepable.
    for key, value in tags.items():
        workspace.set_tag(name, key, value)
    for key in sorted(referenced_secrets(loaded.config)):
        workspace.set_secret(name, f"airgate:{key}", environ[secret_env_name(key)])
    result.changes = workspace.up(name)
    return result


def facts_of(
    workspace: StackWorkspace, name: str, stacks_dir: Path, tags: Mapping[str, str] | None = None
) -> StackFacts:
    """Everything the guard needs about one stack. Reads its state (without secrets), so callers
    ask only about stacks the name and tags already mark as ephemeral and unprotected."""
    tags = dict(tags) if tags is not None else workspace.list_tags(name)
    protected_config = _protected_by_file(name, stacks_dir)
    refusal = destroy_refusal(StackFacts(name, tags, protected_config))
    if refusal is not None:
        return StackFacts(name, tags, protected_config)  # refused already: its state stays unread
    protected_resources = sum(1 for r in workspace.state_resources(name) if r.get("protect"))
    return StackFacts(name, tags, protected_config, protected_resources)


def destroy(workspace: StackWorkspace, name: str, stacks_dir: Path) -> None:
    """Destroy and remove one ephemeral stack; refuses anything the guard protects."""
    if name not in workspace.list_stacks():
        raise EphemeralError(f"no stack {name!r} in this backend")
    facts = facts_of(workspace, name, stacks_dir)
    refusal = destroy_refusal(facts)
    if refusal is not None:
        raise EphemeralError(refusal)
    _ensure_stack_file(workspace, name, stacks_dir, facts)
    workspace.destroy(name)
    workspace.remove_stack(name)
    stack_file(name, stacks_dir).unlink(missing_ok=True)


def _ensure_stack_file(workspace: StackWorkspace, name: str, stacks_dir: Path, facts: StackFacts) -> None:
    """Pulumi reads the stack file even to destroy; a CI checkout that never created it
    regenerates it from the base recorded in the tags."""
    if stack_file(name, stacks_dir).exists():
        return
    base = facts.tags.get(TAG_BASE)
    if not base:
        return
    base_loaded = load_stack(base, stacks_dir)
    document = yaml.safe_load(stack_file(base, stacks_dir).read_text())
    with_airflow = facts.tags.get(TAG_WITH_AIRFLOW) == "true"
    derived = derive_stack_file(
        document,
        base_loaded.config,
        base,
        int(name.split("-", 1)[1]),
        with_airflow,
        base_loaded.settings,
    )
    stack_file(name, stacks_dir).write_text(derived_header(base, int(name[3:])) + yaml.safe_dump(derived))


def list_stacks(workspace: StackWorkspace, stacks_dir: Path) -> list[tuple[StackFacts, str | None]]:
    """Every stack with its tags and, for ephemeral ones, its expiry. Reads tags and stack files
    only: never a stack's state, so never anything secret (prod included)."""
    rows = []
    for name in workspace.list_stacks():
        try:
            tags = workspace.list_tags(name)
        except Exception as error:
            tags = {"airgate:unreadable": f"{type(error).__name__}: {error}"}
        facts = StackFacts(name, tags, _protected_by_file(name, stacks_dir))
        expires = expiry(facts.tags)
        rows.append((facts, expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires else None))
    return rows


def _protected_by_file(name: str, stacks_dir: Path) -> bool:
    path = stack_file(name, stacks_dir)
    if not path.exists():
        return False
    try:
        return load_stack(name, stacks_dir).config.protected
    except Exception:
        return True  # a stack file we cannot read cannot prove it is unprotected


@dataclass
class SweepOutcome:
    decision: SweepDecision
    error: str | None = None


def sweep(
    workspace: StackWorkspace, now: dt.datetime, stacks_dir: Path, dry_run: bool = False
) -> list[SweepOutcome]:
    """Destroy and remove every expired ephemeral stack; one failure does not stop the others.

    Cheapest and safest facts first: the name (only `pr-<n>`), then the tags (ephemeral, not
    protected, expired), and only then, for a stack about to be destroyed, its state (protected
    resources, read without secrets). A protected or long-lived stack's state is never read. A stack
    that cannot be read is skipped and reported, and the sweep goes on."""
    outcomes: list[SweepOutcome] = []
    for name in sorted(workspace.list_stacks()):
        if not is_ephemeral_name(name):
            outcomes.append(SweepOutcome(SweepDecision(name, "skip", "not an ephemeral stack")))
            continue
        try:
            tags = workspace.list_tags(name)
        except Exception as error:
            outcomes.append(_unreadable(name, error))
            continue
        [decision] = sweep_decisions([StackFacts(name, tags)], now)
        if decision.action == "destroy":
            try:
                facts = facts_of(workspace, name, stacks_dir, tags)
            except Exception as error:
                outcomes.append(_unreadable(name, error))
                continue
            [decision] = sweep_decisions([facts], now)
        outcome = SweepOutcome(decision)
        if decision.action == "destroy" and not dry_run:
            try:
                destroy(workspace, decision.name, stacks_dir)
            except Exception as error:
                outcome.error = f"{type(error).__name__}: {error}"
        outcomes.append(outcome)
    return outcomes


def _unreadable(name: str, error: Exception) -> SweepOutcome:
    return SweepOutcome(
        SweepDecision(name, "skip", "cannot be read"), error=f"unreadable: {type(error).__name__}: {error}"
    )
