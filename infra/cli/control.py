"""`airgate revoke` and `airgate kill-switch`: write the stack's `control` KV document, through the
Cloudflare API for a deployed stack, directly for the local environment. No Pulumi is imported."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.cli.app import StackOption, StacksDirOption, StateDirOption, app, console, errors, load_or_exit
from infra.control_store import CLOUDFLARE_API

UndoOption = Annotated[bool, typer.Option("--undo", help="Take the names off the list instead")]
NamespaceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--namespace-id",
        help="gateway=<KV namespace id>, once per gateway (deployed stacks; or use --outputs)",
    ),
]
OutputsOption = Annotated[
    Path | None,
    typer.Option("--outputs", help="`pulumi stack output --json` saved to a file (its kv_namespace_ids)"),
]
ApiOption = Annotated[str, typer.Option("--api-url", help="Cloudflare API base URL")]


def _namespaces(pairs: list[str] | None, outputs: Path | None, gateways: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    if outputs is not None:
        try:
            document = json.loads(outputs.read_text())
            found.update(document["kv_namespace_ids"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            errors.print(f"--outputs {outputs}: no kv_namespace_ids object ({error})", markup=False)
            raise typer.Exit(code=2) from None
    for pair in pairs or []:
        gateway, _, namespace = pair.partition("=")
        if not namespace:
            errors.print(f"--namespace-id {pair!r}: write gateway=<namespace id>", markup=False)
            raise typer.Exit(code=2)
        found[gateway] = namespace
    unknown = sorted(set(found) - set(gateways))
    missing = sorted(set(gateways) - set(found))
    if unknown or missing:
        errors.print(
            f"KV namespaces: every gateway needs one ({', '.join(gateways)}); "
            f"missing: {', '.join(missing) or '-'}; unknown: {', '.join(unknown) or '-'}",
            markup=False,
        )
        raise typer.Exit(code=2)
    return found


def _stores(
    loaded: Any, pairs: list[str] | None, outputs: Path | None, api_url: str, state_dir: Path | None
) -> list[Any]:
    from infra.control_store.stores import CloudflareKV, LocalKV, StoreError

    stack = loaded.config
    if stack.environment == "local":
        from infra.cli.local import _state

        try:
            return [LocalKV.from_state(_state(state_dir))]
        except StoreError as error:
            errors.print(str(error), markup=False)
            raise typer.Exit(code=2) from None
    token = os.environ.get("CLOUDFLARE_API_TOKEN", "")
    if not token:
        errors.print("set CLOUDFLARE_API_TOKEN (a token with Workers KV Storage: Edit)", markup=False)
        raise typer.Exit(code=2)
    namespaces = _namespaces(pairs, outputs, sorted(stack.gateways))
    return [
        CloudflareKV(stack.account_id, namespaces[name], token, api_url, name) for name in sorted(namespaces)
    ]


def _apply(loaded: Any, stores: list[Any], edit: Any, what: str) -> None:
    from infra.control_store.stores import StoreError
    from infra.control_store.update import update_control
    from infra.policy.control import ControlError

    try:
        changes = update_control(stores, edit)
    except (StoreError, ControlError) as error:
        errors.print(f"{what} failed, nothing more was written: {error}", markup=False)
        raise typer.Exit(code=1) from None
    for change in changes:
        state = "unchanged" if change.before == change.after else "written"
        console.print(
            f"{change.store}: control {state}: {change.after.text()}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    delay = (
        "about a second" if loaded.config.environment == "local" else "KV propagation (up to ~60 s) + 10 s"
    )
    console.print(f"Enforced by every gateway within {delay}.", markup=False)


@app.command()
def revoke(
    stack: StackOption,
    names: Annotated[
        list[str],
        typer.Argument(
            help="Identifiers to refuse: OIDC sub, email, OIDC client id, service-token client id"
        ),
    ],
    undo: UndoOption = False,
    namespace_id: NamespaceOption = None,
    outputs: OutputsOption = None,
    api_url: ApiOption = CLOUDFLARE_API,
    state_dir: StateDirOption = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Refuse every request from these identities at every gateway of the stack (403 subject_revoked)."""
    from infra.policy.control import revoke as add

    loaded = load_or_exit(stack, stacks_dir)
    cleaned = [name.strip() for name in names if name.strip()]
    if not cleaned:
        errors.print("name at least one identifier", markup=False)
        raise typer.Exit(code=2)
    stores = _stores(loaded, namespace_id, outputs, api_url, state_dir)
    _apply(loaded, stores, lambda control: add(control, cleaned, undo=undo), "revoke")


@app.command("kill-switch")
def kill_switch(
    stack: StackOption,
    roles: Annotated[list[str], typer.Argument(help="Roles to take away from every caller")],
    undo: Annotated[bool, typer.Option("--undo", help="Give the roles back")] = False,
    namespace_id: NamespaceOption = None,
    outputs: OutputsOption = None,
    api_url: ApiOption = CLOUDFLARE_API,
    state_dir: StateDirOption = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Disable roles at every gateway of the stack: whoever holds them loses what they grant."""
    from infra.policy.control import disable

    loaded = load_or_exit(stack, stacks_dir)
    unknown = sorted(set(roles) - set(loaded.config.roles))
    if unknown:
        errors.print(
            f"no role {', '.join(unknown)}; the stack's roles: {', '.join(sorted(loaded.config.roles))}",
            markup=False,
        )
        raise typer.Exit(code=2)
    stores = _stores(loaded, namespace_id, outputs, api_url, state_dir)
    _apply(loaded, stores, lambda control: disable(control, roles, undo=undo), "kill-switch")
