"""`airgate up|down|status|logs`: the local environment (the `local` stack, on this machine)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from infra.cli.app import StacksDirOption, StateDirOption, app, console, errors, load_or_exit


def _state(state_dir: Path | None) -> Path:
    from infra.local.environment import DEFAULT_STATE_DIR

    return (state_dir or DEFAULT_STATE_DIR).resolve()


@app.command()
def up(
    stack: Annotated[str, typer.Option("--stack", "-s", help="A stack whose environment is local")] = "local",
    state_dir: StateDirOption = None,
    free_ports: Annotated[
        bool, typer.Option("--free-ports", help="Pick free ports instead of the stack's")
    ] = False,
    demo: Annotated[bool, typer.Option(help="Trigger the sample DAG through the gateway and wait")] = True,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Start the whole gateway path on this machine, health-checked in order, then run the sample DAG."""
    from infra.local.environment import LocalStartError
    from infra.local.environment import up as start
    from infra.local.report import print_summary

    loaded = load_or_exit(stack, stacks_dir)
    if loaded.config.environment != "local":
        errors.print(f"stack {stack!r} is {loaded.config.environment}; `airgate up` runs local stacks only")
        raise typer.Exit(code=2)
    state = _state(state_dir)
    try:
        started = start(loaded, state, console, free=free_ports)
    except LocalStartError as failure:
        errors.print(f"airgate up failed: {failure}", markup=False)
        if failure.log_tail:
            errors.print(f"--- last lines of {failure.component}'s log ---", markup=False)
            errors.print(failure.log_tail, markup=False, highlight=False)
        if failure.hint:
            errors.print(f"hint: {failure.hint}", markup=False)
        errors.print(f"Everything started was stopped; state kept in {state}", markup=False)
        raise typer.Exit(code=1) from None
    print_summary(loaded, started.plan, console)
    if demo:
        _run_demo(loaded, started.plan)
    _verify_after_up(loaded, started.plan)


def _run_demo(loaded: Any, plan: Any) -> None:
    from infra.local.report import print_demo

    try:
        run = print_demo(loaded, plan, console)
    except (OSError, RuntimeError, KeyError, ValueError) as failure:
        errors.print(f"the sample DAG run could not be completed: {failure}", markup=False)
        errors.print("hint: airgate logs gateways (or airflow-scheduler); it stays up", markup=False)
        raise typer.Exit(code=1) from None
    if run.state != "success":
        errors.print("hint: airgate logs airflow-scheduler; the environment stays up", markup=False)
        raise typer.Exit(code=1)


def _verify_after_up(loaded: Any, plan: Any) -> None:
    """The last step of `up`: does the running edge enforce the compiled policy? (`airgate verify`)"""
    from infra.verify.local import verify_local
    from infra.verify.summary import summary_lines

    with console.status("verifying the gateways against the compiled policy"):
        report = verify_local(loaded, plan)
    lines = summary_lines(loaded.name, report)
    console.print(lines[0], markup=False, highlight=False, soft_wrap=True)
    if not report.passed:
        for line in lines[1:]:
            errors.print(line, markup=False, highlight=False, soft_wrap=True)
        errors.print(
            "the edge does not enforce the compiled policy; it stays up (airgate verify)", markup=False
        )
        raise typer.Exit(code=1)


@app.command()
def down(state_dir: StateDirOption = None) -> None:
    """Stop every local component (whole process groups); the state folder is kept."""
    from infra.local.environment import down as stop

    was_running = stop(_state(state_dir))
    console.print("Stopped." if was_running else "Nothing was running.", markup=False)


@app.command()
def status(state_dir: StateDirOption = None) -> None:
    """Show each local component's state, pid and uptime."""
    from infra.local.environment import status as read

    rows = read(_state(state_dir))
    if not rows:
        console.print("The local environment is not running.", markup=False)
        raise typer.Exit(code=3)
    table = Table(title="local environment")
    for column in ("component", "state", "pid", "uptime"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["state"], row["pid"], row["uptime"])
    console.print(table)


@app.command()
def logs(
    component: Annotated[str | None, typer.Argument(help="A component name; omit to list them")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines from the end")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines as they come")] = False,
    state_dir: StateDirOption = None,
) -> None:
    """Print the end of a local component's log as it is: one line per line, JSON lines stay whole
    (decision lines are in `gateways`; pipe them to jq). --follow keeps printing new lines."""
    from infra.local.logs import follow_lines, last_lines
    from infra.local.processes import Supervisor

    supervisor = Supervisor(_state(state_dir))
    available = sorted(p.stem for p in supervisor.logs.glob("*.log")) if supervisor.logs.exists() else []
    if component is None or component not in available:
        if component is not None:
            errors.print(f"no log for {component!r}", markup=False)
        console.print("components: " + (", ".join(available) or "(none yet)"), markup=False)
        raise typer.Exit(code=0 if component is None else 2)
    # Raw bytes to stdout, never through rich: it would wrap long lines at the terminal width.
    out = sys.stdout.buffer
    path = supervisor.log_file(component)
    out.write(last_lines(path, lines))
    out.flush()
    if follow:
        try:
            for chunk in follow_lines(path):
                out.write(chunk)
                out.flush()
        except (KeyboardInterrupt, BrokenPipeError):
            return


@app.command()
def token(
    client: Annotated[
        str | None, typer.Option("--client", help="A machine identity (client credentials)")
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="A human test user, e.g. data-engineer-person")
    ] = None,
    audience: Annotated[str | None, typer.Option(help="Token audience (default: the stack's)")] = None,
    stack: Annotated[str, typer.Option("--stack", "-s", help="The local stack")] = "local",
    state_dir: StateDirOption = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Print an access token from the running local OpenID provider, for a client or a test user."""
    from infra.local.environment import prepare
    from infra.local.plan import machine_clients, test_users
    from infra.local.tokens import machine_token, user_token

    if (client is None) == (user is None):
        errors.print("name exactly one of --client or --user", markup=False)
        raise typer.Exit(code=2)
    loaded = load_or_exit(stack, stacks_dir)
    people = [str(person["account_id"]) for person in test_users(loaded.config)]
    clients = machine_clients(loaded.config)
    for name, known, what in ((user, people, "test user"), (client, clients, "client")):
        if name is not None and name not in known:
            errors.print(f"no {what} {name!r}; the local provider knows: {', '.join(known)}", markup=False)
            raise typer.Exit(code=2)
    state = _state(state_dir)
    try:
        # Read what `up` saved, creating nothing: a secret made up now would not be the provider's.
        plan = prepare(loaded, state, create=False)
    except (OSError, RuntimeError) as missing:
        errors.print(f"no local environment in {state}: run `airgate up` first ({missing})", markup=False)
        raise typer.Exit(code=2) from None
    try:
        if client is not None:
            value = machine_token(plan, client, plan.secrets[f"oidc-client-{client}"], audience)
        else:
            value = user_token(plan, str(user), audience)
    except (OSError, RuntimeError) as failure:
        errors.print(f"no token: {failure} (is the local environment up?)", markup=False)
        raise typer.Exit(code=1) from None
    print(value)  # the token alone, for $(airgate token ...)
