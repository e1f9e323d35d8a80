"""Renders a diff report as one pull-request comment: risky first, then policy, resources, rules,
and a Mermaid picture of who reaches what on the changed gateways.

The comment must fit GitHub's limit (65,536 characters) whatever the change, so rendering shrinks
the per-list item budget until the text fits `MAX_CHARS`, always keeping the summary and the risky
list's head, and points at the full JSON for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

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


def _code(text: Any) -> str:
    value = str(text).replace("`", "'").replace("\n", " ").replace("|", "\\|")
    return f"`{value}`"


def _plain(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def describe(section: str, item: dict[str, Any]) -> str:
    """One line, in reviewers' terms, for any change item."""
    change = item.get("change", "")
    if section == "grants":
        methods = " ".join(item["methods"])
        verb = {
            "added": "may now call",
            "removed": "may no longer call",
            "methods_added": "gains",
            "methods_removed": "loses",
        }[change]
        if change in ("methods_added", "methods_removed"):
            return (
                f"{_code(item['role'])} {verb} {_code(methods)} on "
                f"{_code(item['gateway'] + ' ' + item['path'])} (route {item['route']})"
            )
        return (
            f"{_code(item['role'])} {verb} {_code(methods + ' ' + item['path'])} on "
            f"{_code(item['gateway'])} (route {item['route']})"
        )
    if section == "routes":
        where = f"{_code(item['gateway'] + '/' + item['route'])}"
        if change.startswith("path"):
            return f"{where} path {_code(item['before'])} → {_code(item['after'])}"

        def rate(limit: Any) -> str:
            return f"{limit['requests']}/{limit['per_seconds']}s" if isinstance(limit, dict) else "none"

        word = "loosened" if change == "rate_limit_loosened" else "tightened"
        return f"{where} rate limit {word}: {rate(item['before'])} → {rate(item['after'])}"
    if section == "dag_grants":
        text = {
            "added": "may now trigger",
            "removed": "may no longer trigger",
            "conf_schema_removed": "no longer has a conf schema for",
            "conf_schema_changed": "has a changed conf schema for",
        }[change]
        return f"{_code(item['role'])} {text} DAG {_code(item['dag'])} via {_code(item['gateway'])}"
    if section == "identities":
        if change in ("member_added", "member_removed"):
            word = "joins" if change == "member_added" else "leaves"
            kind = item["kind"].rstrip("s").replace("_", " ")
            return f"{kind} {_code(item['member'])} {word} role {_code(item['role'])}"
        if change in ("role_added", "role_removed"):
            return f"role {_code(item['role'])} {change.split('_')[1]}"
        token = _code(item["token"])
        if change == "service_token_changed":
            return f"service token {token}: {_plain(item['before'])} → {_plain(item['after'])}"
        return f"service token {token} {change.rsplit('_', 1)[1]}"
    if section == "resources":
        keys = ", ".join(item.get("keys") or [])
        suffix = f" ({_plain(keys)})" if keys else ""
        gateway = f" [{item['gateway']}]" if item.get("gateway") else ""
        return f"{change} {item['kind']} {_code(item['name'])}{gateway}{suffix}"
    if section == "findings":
        where = item.get("resource") or item.get("gateway") or "stack"
        return f"**{item['rule']}** ({item['severity']}) on {_code(where)}: {_plain(item['message'])}"
    return _plain(item)


def _limited(items: list[str], limit: int | None, noun: str) -> list[str]:
    if limit is None or len(items) <= limit:
        return items
    return [*items[:limit], f"- … and {len(items) - limit} more {noun} (see the full JSON)"]


def _node(prefix: str, name: str, ids: dict[str, str]) -> str:
    key = f"{prefix}:{name}"
    if key not in ids:
        ids[key] = f"{prefix}{len(ids)}"
    return ids[key]


def mermaid(stack: dict[str, Any], edge_limit: int | None) -> list[str]:
    """Roles → routes of the changed gateways: added edges thick green, removed dotted red."""
    gateways = set(stack["changed_gateways"])
    if not gateways:
        return []
    base = {
        (r["role"], r["gateway"], r["route"]): r for r in stack["matrix"]["base"] if r["gateway"] in gateways
    }
    head = {
        (r["role"], r["gateway"], r["route"]): r for r in stack["matrix"]["head"] if r["gateway"] in gateways
    }
    # Changed edges first, so a capped picture still shows what the change does.
    keys = sorted(
        set(base) | set(head),
        key=lambda k: (k in base and k in head and base[k]["methods"] == head[k]["methods"], k),
    )
    shown = keys[: min(edge_limit, MAX_EDGES) if edge_limit is not None else MAX_EDGES]
    if not shown:
        return []
    ids: dict[str, str] = {}
    lines = ["```mermaid", "flowchart LR"]
    edges: list[str] = []
    styles: dict[str, list[int]] = {}
    routes_by_gateway: dict[str, list[tuple[str, str]]] = {}
    for role, gateway, route in shown:
        row = head.get((role, gateway, route)) or base[(role, gateway, route)]
        routes_by_gateway.setdefault(gateway, [])
        entry = (route, row["path"])
        if entry not in routes_by_gateway[gateway]:
            routes_by_gateway[gateway].append(entry)
    for role in sorted({k[0] for k in shown}):
        lines.append(f'  {_node("r", role, ids)}(["{_mm(role)}"])')
    for gateway in sorted(routes_by_gateway):
        lines.append(f'  subgraph {_node("g", gateway, ids)}["{_mm(gateway)}"]')
        for route, path in routes_by_gateway[gateway]:
            lines.append(f'    {_node("p", gateway + "/" + route, ids)}["{_mm(path)}"]')
        lines.append("  end")
    for index, key in enumerate(shown):
        role, gateway, route = key
        source, target = _node("r", role, ids), _node("p", gateway + "/" + route, ids)
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


SECTIONS: tuple[tuple[str, str], ...] = (
    ("grants", "Grants"),
    ("routes", "Routes and rate limits"),
    ("dag_grants", "DAG grants"),
    ("identities", "Identities"),
)


def _stack_lines(stack: dict[str, Any], limit: int | None) -> list[str]:
    risky = stack["risky"]
    title = f"### {'⚠️ ' if risky else ''}{stack['stack']} ({stack['environment']})"
    if stack["status"] in ("added", "removed"):
        title += f" — stack {stack['status']}"
    lines = [title, ""]
    if risky:
        lines.append(f"**Risky ({len(risky)})**")
        lines += _limited(
            [f"- {describe(item['section'], item)} — _{'; '.join(item['reasons'])}_" for item in risky],
            limit,
            "risky changes",
        )
        lines.append("")
    if stack["policy_versions"]:
        versions = ", ".join(
            f"{gateway} {v['before'] or '∅'} → {v['after'] or '∅'}"
            for gateway, v in stack["policy_versions"].items()
        )
        lines += [f"Policy versions: {versions}", ""]
    for key, heading in SECTIONS:
        items = stack[key]
        if not items:
            continue
        lines.append(f"**{heading}** ({len(items)})")
        lines += _limited(
            [f"- {SIGN.get(item['change'], '~')} {describe(key, item)}" for item in items],
            limit,
            heading.lower(),
        )
        lines.append("")
    resources = stack["resources"]
    if resources:
        counts = {
            c: sum(1 for r in resources if r["change"] == c)
            for c in ("create", "update", "replace", "delete")
        }
        summary = ", ".join(f"{n} to {c}" for c, n in counts.items() if n)
        lines.append(f"**Resources** ({summary})")
        lines += _limited(
            [f"- {SIGN[item['change']]} {describe('resources', item)}" for item in resources],
            limit,
            "resources",
        )
        lines.append("")
    if stack["findings"] or stack["findings_resolved"]:
        lines.append("**Policy rules**")
        lines += _limited(
            [f"- new: {describe('findings', item)}" for item in stack["findings"]]
            + [f"- fixed: {describe('findings', item)}" for item in stack["findings_resolved"]],
            limit,
            "findings",
        )
        lines.append("")
    if limit is None or limit >= 25:
        picture = mermaid(stack, None if limit is None else limit * 2)
        if picture:
            lines += ["<details><summary>Who reaches what (changed gateways)</summary>", "", *picture]
            lines += ["", "</details>", ""]
    return lines


def _summary(report: dict[str, Any], full_json: str | None) -> list[str]:
    stacks = report["stacks"]
    risky = report["risky"]
    head = [MARKER, "## airgate diff", ""]
    head.append(
        f"**{risky} risky change{'s' if risky != 1 else ''}** in {len(stacks)} changed of "
        f"{report['stacks_compared']} stacks."
        if risky
        else f"No risky changes; {len(stacks)} of {report['stacks_compared']} stacks changed."
    )
    head.append("")
    for name, error in report["errors"].items():
        head += [f"**{name} does not plan:**", "```", error[:2000], "```", ""]
    if stacks:
        head.append(
            "| stack | env | risky | grants | routes | DAG grants | identities | resources "
            "| new rule failures |"
        )
        head.append("|---|---|---|---|---|---|---|---|---|")
        for stack in stacks:

            def count(items: Iterable[dict[str, Any]], plus: Callable[[dict[str, Any]], bool]) -> str:
                listed = list(items)
                added = sum(1 for i in listed if plus(i))
                return f"+{added} -{len(listed) - added}" if listed else "·"

            resources = stack["resources"]
            res = (
                "·"
                if not resources
                else " ".join(
                    f"{SIGN[c]}{n}"
                    for c in ("create", "update", "replace", "delete")
                    if (n := sum(1 for r in resources if r["change"] == c))
                )
            )
            head.append(
                f"| {stack['stack']} | {stack['environment']} | {len(stack['risky']) or '·'} | "
                f"{count(stack['grants'], lambda i: i['change'] in ('added', 'methods_added'))} | "
                f"{len(stack['routes']) or '·'} | "
                f"{count(stack['dag_grants'], lambda i: i['change'] == 'added')} | "
                f"{len(stack['identities']) or '·'} | {res} | "
                f"{sum(1 for f in stack['findings'] if f['severity'] == 'error') or '·'} |"
            )
        head.append("")
    if full_json:
        head += [f"Full machine-readable diff: {full_json}", ""]
    return head


def render_markdown(report: dict[str, Any], full_json: str | None = None) -> str:
    """The comment text, always under MAX_CHARS characters."""
    if not report["changed"]:
        return no_change_line(report)
    summary = _summary(report, full_json)
    footer = ["<sub>Secret values are masked on both sides, so a changed secret value does not show.</sub>"]
    for limit in ITEM_LIMITS:
        body: list[str] = []
        for stack in report["stacks"]:
            body += _stack_lines(stack, limit)
        text = "\n".join([*summary, *body, *footer]) + "\n"
        if len(text) <= BUDGET:
            return text
    # Even counts alone are too long (thousands of stacks): keep the summary, cut at a line boundary.
    text = "\n".join(summary)
    cut = text[: BUDGET - 200].rsplit("\n", 1)[0]
    return cut + "\n\n_Truncated: the diff is too large for one comment; see the full JSON._\n"


def no_change_line(report: dict[str, Any]) -> str:
    count = report["stacks_compared"]
    return f"airgate diff: no changes in {count} stack{'' if count == 1 else 's'}.\n"
