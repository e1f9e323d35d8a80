"""`airgate plan` and `airgate build`: the offline plan and the Worker build of one stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli.app import StackOption, StacksDirOption, app, console, errors, load_or_exit, plan_or_exit


@app.command()
def build(
    stack: StackOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write one sub-folder per gateway into")],
    stacks_dir: StacksDirOption = None,
) -> None:
    """Render and bundle every gateway Worker of a stack: bundle, sha256, wrangler.json, policy."""
    from infra.build.artifacts import write_build
    from infra.build.bundle import BundleError

    loaded = load_or_exit(stack, stacks_dir)
    try:
        builds = write_build(out, stack, loaded.config)
    except BundleError as error:
        errors.print(str(error), markup=False)
        raise typer.Exit(code=1) from None
    for item in builds:
        console.print(
            f"{item.gateway:<12} {len(item.bundle):>7} bytes  sha256 {item.sha256[:16]}  "
            f"policy {item.policy.version}  -> {out / item.gateway}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def plan(
    stack: StackOption,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the machine-readable plan here")
    ] = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Run the Pulumi program offline under mocks: resources to create and the access matrix."""
    import json

    from infra.plan.render import render_plan

    document = plan_or_exit(stack, stacks_dir)
    render_plan(document, console)
    if json_file is not None:
        json_file.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        console.print(f"Plan written to {json_file}", markup=False)
