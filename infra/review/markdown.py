"""Renders a diff report as one pull-request comment: stacks that failed to plan, then the risky
changes (most severe first), then every change once with the stacks it touches, and a Mermaid
picture of who reaches what on the changed gateways.

The comment must fit GitHub's limit (65,536 characters) whatever the change, so rendering shrinks
the per-list item budget until the text fits `MAX_CHARS`, always keeping the summary and the risky
list's head, and points at the full JSON for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from infra.plan.format import CRITICAL, HIGH, MEDIUM, Change, DiffReport, MatrixEntry, StackDiff
from infra.review.diff import GrantKey, grant_index, merge_across

MARKER = "<!-- airgate-diff -->"
MAX_CHARS = 60_000
BUDGET = MAX_CHARS - 1_000  # headroom for the workflow's own footer
MAX_EDGES = 80  # beyond this a picture stops helping; the lists above carry the rest
ITEM_LIMITS = (None, 400, 200, 100, 50, 25, 10, 5, 2, 0)
SIGN = {
    "added": "+",
    "create": "+",
    "removed": "-",
    "delete": "-",
    "methods_added": "+",
    "methods_removed": "-",
    "update": "~",
    "replace": "±",
}
SEVERITY = {CRITICAL: "critical", HIGH: "high", MEDIUM: "medium"}


def _code(text: Any) -> str:
    value = str(text).replace("`", "'").replace("\n", " ").replace("|", "\\|")
    return f"`{value}`"


def _plain(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _rate(limit: Any) -> str:
    return f"{limit['requests']}/{limit['per_seconds']}s" if isinstance(limit, dict) else "none"


def describe(item: Change) -> str:
    """One line, in reviewers' terms, for any change item."""
    section, change = item["section"], item["change"]
    if section == "grants":
        methods = " ".join(item.get("methods", []))
        verb = {
            "added": "may now call",
            "removed": "may no longer call",
            "methods_added": "gains",
            "methods_removed": "loses",
        }[change]
        if change in ("methods_added", "methods_removed"):
            return (
                f"{_code(item.get('role'))} {verb} {_code(methods)} on "
                f"{_code(str(item.get('gateway')) + ' ' + item.get('path', ''))} (route {item.get('route')})"
            )
        return (
            f"{_code(item.get('role'))} {verb} {_code(methods + ' ' + item.get('path', ''))} on "
            f"{_code(item.get('gateway'))} (route {item.get('route')})"
        )
    if section == "routes":
        where = _code(f"{item.get('gateway')}/{item.get('route')}")
        if change == "renamed":
            return (
                f"route {_code(item.get('before'))} renamed to {where} ({_code(item.get('path'))}), "
                "same access"
            )
        if change.startswith("path"):
            return f"{where} path {_code(item.get('before'))} → {_code(item.get('after'))}"
        word = "loosened" if change == "rate_limit_loosened" else "tightened"
        return f"{where} rate limit {word}: {_rate(item.get('before'))} → {_rate(item.get('after'))}"
    if section == "gateways":
        gateway = _code(item.get("gateway"))
        text = {
            "hostname_added": f"gateway {gateway} answers on {_code(item.get('after'))}",
            "hostname_removed": f"gateway {gateway} no longer answers on {_code(item.get('before'))}",
            "access_removed": f"gateway {gateway} is no longer behind Cloudflare Access",
            "access_added": f"gateway {gateway} is now behind Cloudflare Access",
            "fail_open_on": f"gateway {gateway} now fails open when its Durable Objects fail",
            "fail_open_off": f"gateway {gateway} no longer fails open",
        }.get(change)
        if text:
            return text
        if change.startswith("upstream"):
            return f"gateway {gateway} upstream {_code(item.get('before'))} → {_code(item.get('after'))}"
        if change == "default_rate_limit_changed":
            before, after = _rate(item.get("before")), _rate(item.get("after"))
            return f"gateway {gateway} default rate limit {before} → {after}"
        label = change.rsplit("_", 1)[0].replace("_", " ")
        return f"gateway {gateway} {label}: {item.get('before')} → {item.get('after')}"
    if section == "dag_grants":
        text = {
            "added": "may now trigger",
            "removed": "may no longer trigger",
            "conf_schema_removed": "no longer has a conf schema for",
            "conf_schema_changed": "has a changed conf schema for",
        }[change]
        return (
            f"{_code(item.get('role'))} {text} DAG {_code(item.get('dag'))} via {_code(item.get('gateway'))}"
        )
    if section == "identities":
        if change in ("member_added", "member_removed"):
            word = "joins" if change == "member_added" else "leaves"
            kind = str(item.get("kind", "")).rstrip("s").replace("_", " ")
            return f"{kind} {_code(item.get('member'))} {word} role {_code(item.get('role'))}"
        if change in ("role_added", "role_removed"):
            return f"role {_code(item.get('role'))} {change.split('_')[1]}"
        token = _code(item.get("token"))
        if change == "service_token_rotated":
            until = (item.get("details") or {}).get("previous_secret_expires_at")
            grace = f"; the old secret works until {until}" if until else "; the old secret stops at once"
            return f"service token {token} rotated: v{item.get('before')} → v{item.get('after')}{grace}"
        if change in ("service_token_longer", "service_token_shorter"):
            word = "lives longer" if change.endswith("longer") else "lives shorter"
            return f"service token {token} {word}: {item.get('before')} → {item.get('after')}"
        return f"service token {token} {change.rsplit('_', 1)[1]}"
    if section == "resources":
        keys = ", ".join(item.get("keys") or [])
        suffix = f" ({_plain(keys)})" if keys else ""
        gateway = f" [{item.get('gateway')}]" if item.get("gateway") else ""
        return f"{change} {item.get('kind')} {_code(item.get('name'))}{gateway}{suffix}"
    if section == "findings":
        where = item.get("resource") or item.get("gateway") or "stack"
        return f"**{item.get('rule')}** ({item.get('kind')}) on {_code(where)}: {_plain(item.get('message'))}"
    return _plain(item)


def _limited(items: list[str], limit: int | None, noun: str) -> list[str]:
    if limit is None or len(items) <= limit:
        return items
    return [*items[:limit], f"- … and {len(items) - limit} more {noun} (see the full JSON)"]


def _stacks(item: Change, total: int) -> str:
    stacks = item.get("stacks") or []
    if total > 1 and stacks:
        return " · " + ", ".join(stacks)
    return ""


def merge_all(stacks: list[StackDiff], section: str) -> list[Change]:
    """A section's changes across stacks, each once with the stacks it touches, in first-seen order."""
    return merge_across(
        stacks, section, lambda item: (item["change"], item["subject"], ",".join(item.get("keys") or []))
    )


# --- the picture ------------------------------------------------------------------------------


class _Ids:
    """One Mermaid id per distinct thing, never reused for another."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], str] = {}

    def __call__(self, prefix: str, name: str) -> str:
        key = (prefix, name)
        if key not in self.ids:
            self.ids[key] = f"{prefix}{len(self.ids)}"
        return self.ids[key]


def mermaid(stack: StackDiff, edge_limit: int | None) -> list[str]:
    """Roles → paths of the changed gateways: added edges thick green, removed dotted red. A node is
    a (gateway, path shape), so a path that changed draws its old and new node, each with its label."""
    gateways = set(stack["changed_gateways"])
    if not gateways:
        return []

    def rows(side: str) -> dict[GrantKey, MatrixEntry]:
        matrix: list[MatrixEntry] = stack["matrix"][side]  # type: ignore[literal-required]
        return grant_index(r for r in matrix if r["gateway"] in gateways)

    base, head = rows("base"), rows("head")
    keys = sorted(
        set(base) | set(head),
        key=lambda k: (k in base and k in head and base[k]["methods"] == head[k]["methods"], k),
    )
    shown = keys[: min(edge_limit, MAX_EDGES) if edge_limit is not None else MAX_EDGES]
    if not any(k not in base or k not in head or base[k]["methods"] != head[k]["methods"] for k in shown):
        return []  # who reaches what did not change (a rename, a limit): nothing to draw
    ids = _Ids()
    lines = ["```mermaid", "flowchart LR"]
    edges: list[str] = []
    styles: dict[str, list[int]] = {}
    paths_by_gateway: dict[str, dict[str, str]] = {}
    for role, gateway, path_shape in shown:
        row = head.get((role, gateway, path_shape)) or base[(role, gateway, path_shape)]
        paths_by_gateway.setdefault(gateway, {}).setdefault(path_shape, row["path"])
    for role in sorted({k[0] for k in shown}):
        lines.append(f'  {ids("r", role)}(["{_mm(role)}"])')
    for gateway in sorted(paths_by_gateway):
        lines.append(f'  subgraph {ids("g", gateway)}["{_mm(gateway)}"]')
        for path_shape, path in paths_by_gateway[gateway].items():
            lines.append(f'    {ids("p", gateway + " " + path_shape)}["{_mm(path)}"]')
        lines.append("  end")
    for index, key in enumerate(shown):
        role, gateway, path_shape = key
        source, target = ids("r", role), ids("p", gateway + " " + path_shape)
        before, after = base.get(key), head.get(key)
        if before is None and after is not None:
            edges.append(f'  {source} ==>|"+ {_mm(" ".join(after["methods"]))}"| {target}')
            styles.setdefault("stroke:#1a7f37,stroke-width:3px", []).append(index)
        elif after is None and before is not None:
            edges.append(f'  {source} -.->|"- {_mm(" ".join(before["methods"]))}"| {target}')
            styles.setdefault("stroke:#cf222e,stroke-dasharray:4", []).append(index)
        else:
            assert before is not None and after is not None
            gained = [m for m in after["methods"] if m not in before["methods"]]
            lost = [m for m in before["methods"] if m not in after["methods"]]
            label = " ".join(after["methods"])
            if gained or lost:
                label += "".join(f" +{m}" for m in gained) + "".join(f" -{m}" for m in lost)
                styles.setdefault("stroke:#9a6700,stroke-width:2px", []).append(index)
            edges.append(f'  {source} -->|"{_mm(label)}"| {target}')
    lines += edges
    lines += [f"  linkStyle {','.join(map(str, indexes))} {style}" for style, indexes in styles.items()]
    lines.append("```")
    if len(shown) < len(keys):
        lines.append(f"_{len(keys) - len(shown)} more edges not drawn (see the full JSON)._")
    return lines


def _mm(text: str) -> str:
    return re.sub(r'["<>]', "'", text)


# --- the comment --------------------------------------------------------------------------------

SECTIONS: tuple[tuple[str, str], ...] = (
    ("grants", "Grants"),
    ("routes", "Routes and rate limits"),
    ("gateways", "Gateways (hostnames, upstreams, Access, limits)"),
    ("dag_grants", "DAG grants"),
    ("identities", "Identities"),
    ("resources", "Resources"),
)


def _body(report: DiffReport, limit: int | None) -> list[str]:
    stacks = report["stacks"]
    total = len(stacks)
    lines: list[str] = []
    risky = report["risky_changes"]
    if risky:
        lines.append(f"### ⚠️ Risky ({len(risky)})")
        lines += _limited(
            [
                f"- **{SEVERITY.get(item['severity'], 'low')}** {describe(item)} — "
                f"_{'; '.join(item['reasons'])}_{_stacks(item, total)}"
                for item in risky
            ],
            limit,
            "risky changes",
        )
        lines.append("")
    if any(s["status"] in ("added", "removed") for s in stacks):
        lines += [
            f"- stack {_code(s['stack'])} {s['status']}"
            for s in stacks
            if s["status"] in ("added", "removed")
        ]
        lines.append("")
    lines += ["### Changes", ""]
    for key, heading in SECTIONS:
        items = merge_all(stacks, key)
        if not items:
            continue
        lines.append(f"**{heading}** ({len(items)})")
        lines += _limited(
            [f"- {SIGN.get(item['change'], '~')} {describe(item)}{_stacks(item, total)}" for item in items],
            limit,
            heading.lower(),
        )
        lines.append("")
    new_findings = merge_all(stacks, "findings")
    resolved = [(s["stack"], f) for s in stacks for f in s["findings_resolved"]]
    if new_findings or resolved:
        lines.append("**Policy rules**")
        lines += _limited(
            [f"- new: {describe(item)}{_stacks(item, total)}" for item in new_findings]
            + [f"- fixed ({stack}): **{f['rule']}** {_plain(f['message'])}" for stack, f in resolved],
            limit,
            "findings",
        )
        lines.append("")
    versions = [
        f"{s['stack']}: "
        + ", ".join(
            f"{g} {v['before'] or '∅'} → {v['after'] or '∅'}" for g, v in s["policy_versions"].items()
        )
        for s in stacks
        if s["policy_versions"]
    ]
    if versions and (limit is None or limit >= 10):
        lines += ["Policy versions: " + "; ".join(versions), ""]
    if limit is None or limit >= 25:
        drawn: dict[str, list[str]] = {}
        pictures: dict[str, list[str]] = {}
        for stack in stacks:
            picture = mermaid(stack, None if limit is None else limit * 2)
            if picture:
                text = "\n".join(picture)
                drawn.setdefault(text, []).append(stack["stack"])
                pictures[text] = picture
        for text, names in drawn.items():
            lines += [
                f"<details><summary>Who reaches what ({', '.join(names)})</summary>",
                "",
                *pictures[text],
            ]
            lines += ["", "</details>", ""]
    return lines


def _summary(report: DiffReport, full_json: str | None) -> list[str]:
    stacks = report["stacks"]
    risky = len(report["risky_changes"])
    head = [MARKER, "## airgate diff", ""]
    if report["failures"]:
        head.append(f"**{len(report['failures'])} stack(s) failed to plan** — this diff is incomplete.")
    head.append(
        f"**{risky} risky change{'s' if risky != 1 else ''}** in {len(stacks)} changed of "
        f"{report['stacks_compared']} stacks."
        if risky
        else f"No risky changes; {len(stacks)} of {report['stacks_compared']} stacks changed."
    )
    head.append("")
    for failure in report["failures"]:
        label = f"{failure['side']}:{failure['stack']}" if failure["side"] else failure["stack"]
        head += [f"**{label} does not plan:**", "```", failure["error"][:2000], "```", ""]
    if stacks:
        head.append(
            "| stack | env | risky | grants | routes | gateways | DAG grants | identities | resources "
            "| new rule failures |"
        )
        head.append("|---|---|---|---|---|---|---|---|---|---|")
        for stack in stacks:
            resources = stack["resources"]
            res = " ".join(
                f"{SIGN[c]}{n}"
                for c in ("create", "update", "replace", "delete")
                if (n := sum(1 for r in resources if r["change"] == c))
            )
            head.append(
                f"| {stack['stack']} | {stack['environment']} | {len(stack['risky']) or '·'} | "
                f"{_count(stack['grants'], ('added', 'methods_added'))} | {len(stack['routes']) or '·'} | "
                f"{len(stack['gateways']) or '·'} | {_count(stack['dag_grants'], ('added',))} | "
                f"{len(stack['identities']) or '·'} | {res or '·'} | "
                f"{sum(1 for f in stack['findings'] if f.get('kind') == 'error') or '·'} |"
            )
        head.append("")
    if full_json:
        head += [f"Full machine-readable diff: {full_json}", ""]
    return head


def _count(items: Iterable[Change], plus: tuple[str, ...]) -> str:
    listed = list(items)
    added = sum(1 for i in listed if i["change"] in plus)
    return f"+{added} -{len(listed) - added}" if listed else "·"


def render_markdown(report: DiffReport, full_json: str | None = None) -> str:
    """The comment text, always under MAX_CHARS characters."""
    if not report["changed"]:
        return no_change_line(report)
    summary = _summary(report, full_json)
    footer = ["<sub>Secret values are masked on both sides, so a changed secret value does not show.</sub>"]
    for limit in ITEM_LIMITS:
        text = "\n".join([*summary, *_body(report, limit), *footer]) + "\n"
        if len(text) <= BUDGET:
            return text
    # Even counts alone are too long (thousands of stacks): keep the summary, cut at a line boundary.
    text = "\n".join(summary)
    cut = text[: BUDGET - 200].rsplit("\n", 1)[0]
    return cut + "\n\n_Truncated: the diff is too large for one comment; see the full JSON._\n"


def no_change_line(report: DiffReport) -> str:
    count = report["stacks_compared"]
    return f"airgate diff: no changes in {count} stack{'' if count == 1 else 's'}.\n"
