"""`airgate stack create|destroy|sweep|list`: ephemeral per-pull-request stacks over the Pulumi
Automation API. Needs the Pulumi CLI (the project's `.tools/bin`, else PATH), a backend login and,
to deploy, CLOUDFLARE_API_TOKEN."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.cli.app import StacksDirOption, app, console, default_stacks_dir, errors, project_root_or_exit

stack_app = typer.Typer(
    name="stack", help="Ephemeral test stacks: one per pull request, with a TTL.", no_args_is_help=True
)
app.add_typer(stack_app, name="stack")


def make_workspace() -> Any:
    """The real Automation API workspace; tests replace this factory with a recording stand-in."""
    from infra.ephemeral.workspace import AutomationWorkspace

    root = project_root_or_exit()
    try:
        # The Automation API hands over the CLI's output line by line, each stripped of its newline.
        return AutomationWorkspace(
            root, on_output=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True)
        )
    except Exception as error:
        errors.print(
            f"cannot open the Pulumi workspace ({type(error).__name__}: {error}). The stack commands need "
            "the Pulumi CLI (./dev setup, or on PATH) and a backend login (PULUMI_BACKEND_URL or "
            "PULUMI_ACCESS_TOKEN).",
            markup=False,
        )
        raise typer.Exit(code=2) from None


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stacks_dir(value: Path | None) -> Path:
    return value or default_stacks_dir()


def _refused(error: Exception) -> typer.Exit:
    errors.print(f"refused: {error}", markup=False)
    return typer.Exit(code=1)


@stack_app.command("create")
def create_command(
    pr: Annotated[int, typer.Option("--pr", help="Pull request number: the stack is pr-<n>")],
    base: Annotated[str, typer.Option("--base", help="Stack to derive from (dev or staging)")] = "dev",
    ttl: Annotated[
        str, typer.Option("--ttl", help="Lifetime, e.g. 72h or 3d; re-running extends it")
    ] = "72h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Derive and check only; change nothing")] = False,
    with_airflow: Annotated[
        bool, typer.Option("--with-airflow", help="Also deploy Airflow (own namespace and hostnames)")
    ] = False,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Create (or update) the test stack of a pull request, derived from a base stack."""
    from infra.config.errors import ConfigError
    from infra.ephemeral.model import EphemeralError, parse_ttl
    from infra.ephemeral.service import create
    from infra.ephemeral.workspace import usage_source

    directory = _stacks_dir(stacks_dir)
    try:
        lifetime = parse_ttl(ttl)
        workspace = make_workspace()
        from infra.config.loader import load_stack

        account = load_stack(base, directory).config.account_id
        result = create(
            workspace,
            usage_source(workspace, account),
            pr=pr,
            base=base,
            ttl=lifetime,
            now=now(),
            stacks_dir=directory,
            environ=os.environ,
            dry_run=dry_run,
            with_airflow=with_airflow,
        )
    except (EphemeralError, ConfigError) as error:
        raise _refused(error) from None
    verb = "would create" if dry_run else "created"
    console.print(
        f"{verb} {result.stack} from {base}; expires {result.tags['airgate:expires-at']}; "
        f"uses {result.needed['service_tokens']} service tokens, {result.needed['access_apps']} Access apps",
        markup=False,
    )


@stack_app.command("destroy")
def destroy_command(
    stack: Annotated[str, typer.Option("--stack", "-s", help="The pr-<n> stack to destroy")],
    missing_ok: Annotated[
        bool, typer.Option("--missing-ok", help="Succeed when the stack does not exist (PR closed unused)")
    ] = False,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Destroy and remove one ephemeral stack. Protected stacks are refused, always."""
    from infra.ephemeral.model import EphemeralError
    from infra.ephemeral.service import destroy

    workspace = make_workspace()
    if missing_ok and stack not in workspace.list_stacks():
        console.print(f"{stack} does not exist; nothing to destroy", markup=False)
        return
    try:
        destroy(workspace, stack, _stacks_dir(stacks_dir))
    except EphemeralError as error:
        raise _refused(error) from None
    console.print(f"destroyed and removed {stack}", markup=False)


@stack_app.command("sweep")
def sweep_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be destroyed")] = False,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Destroy and remove every expired ephemeral stack; never a protected one."""
    from infra.ephemeral.service import sweep

    outcomes = sweep(make_workspace(), now(), _stacks_dir(stacks_dir), dry_run=dry_run)
    failed = 0
    for outcome in outcomes:
        decision = outcome.decision
        action = decision.action if not (dry_run and decision.action == "destroy") else "would destroy"
        line = f"{decision.name:<16} {action:<14} {decision.reason}"
        if outcome.error:
            failed += 1
            line += f"  FAILED: {outcome.error}"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(code=1)


@stack_app.command("list")
def list_command(stacks_dir: StacksDirOption = None) -> None:
    """Every stack in the backend: ephemeral or not, base, expiry, protection (from tags and stack
    files only: no stack's state or secrets are read)."""
    from infra.ephemeral.model import TAG_BASE, TAG_EPHEMERAL, TAG_PROTECTED
    from infra.ephemeral.service import list_stacks

    moment = now()
    for facts, expires in list_stacks(make_workspace(), _stacks_dir(stacks_dir)):
        ephemeral = facts.tags.get(TAG_EPHEMERAL) == "true"
        protected = facts.protected_config or facts.tags.get(TAG_PROTECTED, "false") != "false"
        state = ""
        if expires:
            state = "expired" if expires <= moment.strftime("%Y-%m-%dT%H:%M:%SZ") else "live"
        if "airgate:unreadable" in facts.tags:
            line = f"{facts.name:<16} unreadable: {facts.tags['airgate:unreadable']}"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
            continue
        console.print(
            f"{facts.name:<16} {'ephemeral' if ephemeral else 'long-lived':<10} "
            f"base={facts.tags.get(TAG_BASE, '-'):<8} expires={expires or '-':<20} {state:<7} "
            f"{'protected' if protected else ''}".rstrip(),
            markup=False,
            highlight=False,
            soft_wrap=True,  # one stack, one line, whatever the terminal width
        )
