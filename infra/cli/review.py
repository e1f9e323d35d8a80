"""`airgate diff` and `airgate lint`: how a change is reviewed, offline and without credentials."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.cli.app import StackOption, StacksDirOption, app, console, errors, plan_or_exit

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Format(StrEnum):
    markdown = "markdown"
    json = "json"


class FailOn(StrEnum):
    risky = "risky"
    never = "never"


TodayOption = Annotated[
    str | None,
    typer.Option("--today", help="Date the compatibility-date rule measures age from (default: today, UTC)"),
]
AllowDeleteOption = Annotated[
    list[str] | None,
    typer.Option("--allow-deleting-class", help="A Durable Object class whose deletion is intended"),
]


def _rule_config(today: str | None, allow: list[str] | None) -> Any:
    from infra.rules import RuleConfig

    try:
        day = dt.date.fromisoformat(today) if today else dt.datetime.now(dt.UTC).date()
    except ValueError:
        errors.print(f"--today {today!r} is not YYYY-MM-DD", markup=False)
        raise typer.Exit(code=2) from None
    return RuleConfig(today=day, allow_deleting_classes=frozenset(allow or ()))


@app.command()
def diff(
    base: Annotated[str, typer.Argument(help="Plan JSON file, folder of plan JSON files, or git ref")],
    head: Annotated[str, typer.Argument(help="Plan JSON file, folder of plan JSON files, or git ref")],
    output_format: Annotated[Format, typer.Option("--format", help="markdown (a PR comment) or json")] = (
        Format.markdown
    ),
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="Exit 1 when a risky change is found")] = (
        FailOn.never
    ),
    out: Annotated[Path | None, typer.Option("--out", help="Write the report here instead of stdout")] = None,
    full_json: Annotated[
        Path | None, typer.Option("--full-json", help="Also write the complete JSON report here")
    ] = None,
    full_json_link: Annotated[
        str | None, typer.Option("--full-json-link", help="Where readers find the full JSON (URL or text)")
    ] = None,
    stack: Annotated[
        list[str] | None, typer.Option("--stack", "-s", help="Only these stacks (git refs: default all)")
    ] = None,
    repo: Annotated[Path, typer.Option("--repo", help="Git repository the refs belong to")] = PROJECT_ROOT,
    today: TodayOption = None,
    allow_deleting_class: AllowDeleteOption = None,
) -> None:
    """Semantic diff of two plans: grants, rate limits, DAG grants, identities, resources; risky first."""
    from infra.review.diff import diff_sets
    from infra.review.markdown import no_change_line, render_markdown
    from infra.review.sources import (
        PlanSet,
        SourceError,
        is_git_ref,
        load_side,
        plan_refs,
        stacks_at,
        tree_id,
    )

    config = _rule_config(today, allow_deleting_class)
    unchanged_refs: list[str] = []
    try:
        sides: list[PlanSet | None] = [load_side(spec, repo) for spec in (base, head)]
        refs = [spec for spec, side in zip((base, head), sides, strict=True) if side is None]
        for ref in refs:
            if not is_git_ref(repo, ref):
                errors.print(
                    f"{ref!r} is neither a plan JSON file, a folder of them, nor a git ref", markup=False
                )
                raise typer.Exit(code=2)
        if len(refs) == 2 and tree_id(repo, base) == tree_id(repo, head):
            # Nothing that decides a plan differs between the refs: no need to plan at all.
            sides = [PlanSet(base), PlanSet(head)]
            unchanged_refs = stacks_at(repo, head)
        elif refs:
            planned = iter(
                plan_refs(
                    repo,
                    refs,
                    stack,
                    node_modules=PROJECT_ROOT / "node_modules",
                    bundle_cache=PROJECT_ROOT / "build" / ".bundle" / "cache",
                )
            )
            sides = [side if side is not None else next(planned) for side in sides]
    except SourceError as error:
        errors.print(str(error), markup=False)
        raise typer.Exit(code=2) from None
    old, new = sides
    assert old is not None and new is not None
    wanted = set(stack) if stack else None
    report = diff_sets(
        {k: v for k, v in old.plans.items() if wanted is None or k in wanted},
        {k: v for k, v in new.plans.items() if wanted is None or k in wanted},
        config,
        {**old.errors, **new.errors},
    )
    if unchanged_refs:
        report["stacks_compared"] = len([s for s in unchanged_refs if wanted is None or s in wanted])
    if full_json is not None:
        full_json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if output_format is Format.json:
        text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    elif not report["changed"]:
        text = no_change_line(report)
    else:
        text = render_markdown(report, full_json_link or (str(full_json) if full_json else None))
    if out is not None:
        out.write_text(text)
    else:
        typer.echo(text, nl=False)
    if report["errors"]:
        raise typer.Exit(code=2)
    if fail_on is FailOn.risky and report["risky"]:
        errors.print(f"{report['risky']} risky change(s): review them before merging", markup=False)
        raise typer.Exit(code=1)


@app.command()
def lint(
    stack: StackOption,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="Lint this plan JSON instead of planning the stack")
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", help="Plain lines (markdown) or json")] = (
        Format.markdown
    ),
    stacks_dir: StacksDirOption = None,
    today: TodayOption = None,
    allow_deleting_class: AllowDeleteOption = None,
) -> None:
    """Run the policy rules over a stack's offline plan; exits 1 on any error finding."""
    from infra.rules import RULES, evaluate

    config = _rule_config(today, allow_deleting_class)
    if plan_file is not None:
        from infra.review.sources import SourceError, read_plan_file

        try:
            document = read_plan_file(plan_file)
        except SourceError as error:
            errors.print(str(error), markup=False)
            raise typer.Exit(code=2) from None
    else:
        document = plan_or_exit(stack, stacks_dir)
    findings = evaluate(document, config)
    failed = [f for f in findings if f.severity == "error"]
    if output_format is Format.json:
        typer.echo(json.dumps([f.to_json() for f in findings], indent=2))
    else:
        for finding in findings:
            where = finding.resource or finding.gateway or "stack"
            console.print(
                f"{finding.severity}: [{finding.rule}] {where}: {finding.message}\n    fix: {finding.fix}",
                markup=False,
                highlight=False,
                soft_wrap=True,  # one finding, one greppable line, whatever the terminal width
            )
        verdict = "FAIL" if failed else "ok"
        console.print(
            f"airgate lint {document.get('stack')}: {verdict} — {len(RULES)} rules, {len(failed)} errors, "
            f"{len(findings) - len(failed)} warnings",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if failed:
        raise typer.Exit(code=1)
