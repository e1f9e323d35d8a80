"""The `airgate` Typer app and what its commands share: consoles, options, config failures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from infra.config.errors import ConfigError
from infra.config.loader import LoadedStack, load_stack

if TYPE_CHECKING:
    from infra.plan.format import PlanDocument

app = typer.Typer(
    name="airgate",
    help="Cloudflare Workers as identity-aware gateways in front of Apache Airflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

StacksDirOption = Annotated[
    Path | None,
    typer.Option(
        "--stacks-dir",
        help="Folder holding Pulumi.<stack>.yaml (default: the stackConfigDir of the nearest Pulumi.yaml)",
    ),
]
StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name: stacks/Pulumi.<stack>.yaml")]
StateDirOption = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Where state, logs and secrets live (default: .state/local)"),
]


@app.callback()
def root() -> None:
    """Plan, build, run and review airgate stacks. Deploy with plain `pulumi up -s <env>`."""


def fail_on_config(error: ConfigError) -> NoReturn:
    errors.print(error.render(), markup=False, highlight=False)
    raise typer.Exit(code=2)


def default_stacks_dir() -> Path:
    """The stacks of the project around the current directory, found as Pulumi finds Pulumi.yaml."""
    from infra.cli.project import stacks_dir as configured

    return configured(project_root_or_exit())


def project_root_or_exit() -> Path:
    """The project around the current directory (the nearest Pulumi.yaml), or exit 2 saying so."""
    from infra.cli.project import NoProject, find_project_root

    try:
        return find_project_root()
    except NoProject as error:
        errors.print(str(error), markup=False)
        raise typer.Exit(code=2) from None


def load_or_exit(stack: str, stacks_dir: Path | None) -> LoadedStack:
    """Loads and validates a stack; a bad one exits 2 with the model's error, having done nothing."""
    try:
        return load_stack(stack, stacks_dir or default_stacks_dir())
    except ConfigError as error:
        fail_on_config(error)


def plan_or_exit(stack: str, stacks_dir: Path | None) -> PlanDocument:
    """The stack's offline plan document; a bad stack exits 2, a failed Worker build exits 1."""
    from infra.build.bundle import BundleError
    from infra.plan.document import plan_document
    from infra.plan.runner import run_plan

    loaded = load_or_exit(stack, stacks_dir)
    try:
        return plan_document(loaded, run_plan(loaded))
    except BundleError as error:
        errors.print(str(error), markup=False)
        raise typer.Exit(code=1) from None
