"""Prints a plan document for people: resources grouped by gateway, then the access matrix."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from infra.plan.format import PlanDocument, ResourceEntry


def _short_type(token: str) -> str:
    return token.rsplit(":", 1)[-1]


def _label(resource: ResourceEntry) -> str:
    inputs = resource["inputs"]
    detail = next(
        (
            str(inputs[key])
            for key in ("script_name", "hostname", "domain", "key_name", "title", "name", "pattern")
            if isinstance(inputs.get(key), str)
        ),
        "",
    )
    lock = " [protected]" if resource["protect"] else ""
    return f"+ {_short_type(resource['type'])} {resource['name']}  {detail}{lock}".rstrip()


def render_plan(document: PlanDocument, console: Console) -> None:
    title = f"airgate plan: stack {document['stack']} ({document['environment']})"
    tree = Tree(title)
    groups: dict[str, list[ResourceEntry]] = {}
    for resource in document["resources"]:
        if not resource["custom"]:
            continue
        group = f"gateway {resource['gateway']}" if resource["gateway"] else resource["parent"] or "stack"
        groups.setdefault(group, []).append(resource)
    for group in sorted(groups, key=lambda g: (not g.startswith("gateway"), g)):
        branch = tree.add(group)
        for resource in groups[group]:
            branch.add(_label(resource), highlight=False)
    console.print(tree, markup=False, highlight=False)
    creates = sum(1 for r in document["resources"] if r["custom"])
    console.print(f"{creates} resources to create.", markup=False)

    versions = ", ".join(f"{gw} {p['version']}" for gw, p in document["policies"].items())
    console.print(f"Policy versions: {versions}", markup=False)

    matrix = Table(title="Access matrix (role x gateway x route)")
    for column in ("role", "gateway", "route", "path", "methods"):
        matrix.add_column(column)
    for row in document["access_matrix"]:
        matrix.add_row(row["role"], row["gateway"], row["route"], row["path"], " ".join(row["methods"]))
    console.print(matrix)

    if document["dag_grants"]:
        dags = Table(title="DAG trigger grants")
        for column in ("gateway", "role", "dag", "conf"):
            dags.add_column(column)
        for grant in document["dag_grants"]:
            conf = "schema" if grant["conf_schema"] else "any"
            dags.add_row(grant["gateway"], grant["role"], grant["dag"], conf)
        console.print(dags)
    for warning in document["warnings"]:
        console.print(f"warning: {warning}", markup=False, style="yellow")
