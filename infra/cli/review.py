"""`airgate diff` and `airgate lint`: how a change is reviewed, offline and without credentials.

Exit codes (CI relies on them): 0 clean; 1 risky changes with `--fail-on risky` (diff) or an error
finding (lint); 2 a usage, config or planning error (a stack that does not plan included); 3 a crash
of the command itself. A workflow passes only on 0 (or 1 where it chose to allow risk), never on >= 2.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.cli.app import (
    StackOption,
    StacksDirOption,
    app,
    console,
    errors,
    plan_or_exit,
    project_root_or_exit,
)

INSTALL_ROOT = Path(__file__).resolve().parents[2]
"""Where the installed tools live (node_modules, the bundle cache), whatever the current directory."""


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
ThresholdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="Override a rule threshold for this run, KEY=VALUE (e.g. max_service_token_hours=2160, "
        "allowed_upstream_domains=a.com,b.com); the stack's review: section sets the default",
    ),
]
ExceptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exception", help="A named exception for this run, RULE=SUBJECT (e.g. no-machine-admin=gw/r/role)"
    ),
]
EXIT_ERROR, EXIT_CRASH = 2, 3


def _rule_config(
    today: str | None,
    allow: list[str] | None,
    thresholds: list[str] | None = None,
    exceptions: list[str] | None = None,
) -> Any:
    from infra.rules import RuleConfig, parse_threshold, rule_ids

    try:
        day = dt.date.fromisoformat(today) if today else dt.datetime.now(dt.UTC).date()
    except ValueError:
        errors.print(f"--today {today!r} is not YYYY-MM-DD", markup=False)
        raise typer.Exit(code=EXIT_ERROR) from None
    values: dict[str, Any] = {}
    try:
        for text in thresholds or ():
            key, value = parse_threshold(text)
            values[key] = value
    except ValueError as error:
        errors.print(str(error), markup=False)
        raise typer.Exit(code=EXIT_ERROR) from None
    named: dict[str, frozenset[str]] = {}
    for text in exceptions or ():
        rule, sep, subject = text.partition("=")
        if not sep or rule not in rule_ids() or not subject:
            errors.print(
                f"--exception {text!r}: write RULE=SUBJECT, RULE one of {', '.join(rule_ids())}", markup=False
            )
            raise typer.Exit(code=EXIT_ERROR)
        named[rule] = named.get(rule, frozenset()) | {subject}
    allowed = frozenset(allow or ()) | values.pop("allow_deleting_classes", frozenset())
    return RuleConfig(today=day, allow_deleting_classes=allowed, exceptions=named, **values)


def _crash(command: str, error: BaseException) -> typer.Exit:
    """An unexpected failure is an error (exit 3), never mistaken for "risky" (1) or clean (0)."""
    import traceback

    errors.print(f"airgate {command} crashed: {type(error).__name__}: {error}", markup=False)
    errors.print("".join(traceback.format_exception(error)), markup=False, highlight=False)
    return typer.Exit(code=EXIT_CRASH)


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
    repo: Annotated[
        Path | None,
        typer.Option(
            "--repo", help="Git repository the refs belong to (default: the project around the cwd)"
        ),
    ] = None,
    today: TodayOption = None,
    allow_deleting_class: AllowDeleteOption = None,
    threshold: ThresholdOption = None,
    exception: ExceptionOption = None,
) -> None:
    """Semantic diff of two plans: grants, routes, gateways, DAG grants, identities, resources; risky
    first. Exit 0 clean, 1 risky (with --fail-on risky), 2 an error (a stack that does not plan),
    3 a crash."""
    config = _rule_config(today, allow_deleting_class, threshold, exception)
    try:
        project = repo if repo is not None else project_root_or_exit()
        _diff(base, head, output_format, fail_on, out, full_json, full_json_link, stack, project, config)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:
        raise _crash("diff", error) from None


def _diff(
    base: str,
    head: str,
    output_format: Format,
    fail_on: FailOn,
    out: Path | None,
    full_json: Path | None,
    full_json_link: str | None,
    stack: list[str] | None,
    repo: Path,
    config: Any,
) -> None:
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
                    node_modules=INSTALL_ROOT / "node_modules",
                    bundle_cache=INSTALL_ROOT / "build" / ".bundle" / "cache",
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
    if report["failures"]:
        errors.print(
            f"{len(report['failures'])} stack(s) did not plan: "
            + ", ".join(f"{f['side']}:{f['stack']}" for f in report["failures"]),
            markup=False,
        )
        raise typer.Exit(code=EXIT_ERROR)
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
    threshold: ThresholdOption = None,
    exception: ExceptionOption = None,
) -> None:
    """Run the policy rules over a stack's offline plan; exits 1 on any error finding, 2 on a bad
    stack or plan file, 3 on a crash."""
    config = _rule_config(today, allow_deleting_class, threshold, exception)
    try:
        _lint(stack, plan_file, output_format, stacks_dir, config)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:
        raise _crash("lint", error) from None


def _lint(
    stack: str, plan_file: Path | None, output_format: Format, stacks_dir: Path | None, config: Any
) -> None:
    from infra.plan.format import PlanDocument
    from infra.rules import RULES, evaluate

    document: PlanDocument
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
