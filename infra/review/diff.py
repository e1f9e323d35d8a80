"""The semantic diff of two plan documents of one stack: what reviewers care about, risky first.

Pure: two plan documents (either may be None: a stack added or removed) in, one `StackDiff` out;
`diff_sets` compares whole sets of stacks, reports stacks that failed to plan as failures (never as
removals) and merges a risky change repeated in several stacks into one item naming them.

Grants are matched by what they allow (role, gateway, path shape, method), not by route name, so a
renamed route with identical access is a rename, not a grant. Every change is built by
`make_change`, so a risky change always carries its reasons; the highest reason's severity orders
the risky list. What is risky, and how much:

- critical: an upstream credential sent to a new host; a gateway taken out from behind Access in prod;
  a protected or data-holding resource deleted or replaced;
- high: a new grant, method, member, machine identity or DAG grant in prod; a widened wildcard; a role
  gaining a method; fail-open switched on in prod; a gateway leaving Access outside prod; a rule that
  now fails;
- medium: a prod upstream moved to another host, a new prod hostname, a prod body or rate limit
  loosened, a prod service token living longer, a DAG grant dropping its conf schema.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Literal

from infra.config.patterns import parse_pattern
from infra.plan.format import (
    CRITICAL,
    DIFF_FORMAT,
    HIGH,
    MEDIUM,
    SECTIONS,
    Change,
    DiffReport,
    Failure,
    MatrixEntry,
    PlanDocument,
    PolicyVersionChange,
    Reason,
    StackDiff,
    make_change,
    reason,
)
from infra.review.coverage import widens
from infra.review.replacements import REPLACE_ON
from infra.rules import RuleConfig, evaluate
from infra.rules.view import MEMBER_KINDS, SECRET_MASK, GatewayFacts, PlanView, Resource

__all__ = ["DIFF_FORMAT", "diff_plans", "diff_sets", "grant_changes"]

EMPTY: PlanDocument = {"format": "", "stack": "", "environment": "", "resources": []}
LIMIT_KEYS = ("max_body_bytes", "max_header_bytes", "max_token_bytes")


def _rate(limit: Any) -> float:
    if not isinstance(limit, dict):
        return float("inf")
    return float(limit.get("requests", 0)) / max(float(limit.get("per_seconds", 1)), 1.0)


def _hours(duration: Any) -> int:
    text = str(duration or "")
    return int(text[:-1]) if text.endswith("h") and text[:-1].isdigit() else 0


def _holds_data(view: PlanView, resource: Resource) -> bool:
    return resource.kind == "WorkersKvNamespace" or bool(
        resource.kind == "WorkersScript" and view.durable_object_classes(resource)
    )


def shape(path: str) -> str:
    """What a path pattern matches, whatever its parameters are called."""
    try:
        return parse_pattern(path).shape
    except ValueError:
        return path


# --- flattening inputs --------------------------------------------------------------------------


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested inputs -> {"a.b[NAME].c": leaf}. Lists of named items are keyed by name, so reordering
    bindings does not read as a change and a changed binding is named."""
    flat: dict[str, Any] = {}
    if isinstance(value, dict):
        if not value and prefix:
            flat[prefix] = {}
        for key in sorted(value):
            flat.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        named = all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in value)
        names = [item["name"] for item in value] if named and value else []
        if named and value and len(set(names)) == len(names):
            for item in value:
                flat.update(
                    flatten({k: v for k, v in item.items() if k != "name"}, f"{prefix}[{item['name']}]")
                )
        elif all(not isinstance(item, dict | list) for item in value):
            flat[prefix] = list(value)
        else:
            for index, item in enumerate(value):
                flat.update(flatten(item, f"{prefix}[{index}]"))
        if not value:
            flat[prefix] = []
    else:
        flat[prefix] = value
    return flat


def _top(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


# --- grants: matched by what they allow ---------------------------------------------------------

GrantKey = tuple[str, str, str]  # role, gateway, path shape


def grant_index(rows: Iterable[MatrixEntry]) -> dict[GrantKey, MatrixEntry]:
    """Access-matrix rows -> (role, gateway, shape) -> the row (methods merged when two routes
    share a shape)."""
    found: dict[GrantKey, MatrixEntry] = {}
    for row in rows:
        key = (row["role"], row["gateway"], shape(row["path"]))
        if key in found:
            merged = sorted(set(found[key]["methods"]) | set(row["methods"]))
            found[key] = {**found[key], "methods": merged}
        else:
            found[key] = {**row, "methods": list(row["methods"])}
    return found


def grant_changes(base: PlanDocument | None, head: PlanDocument | None, prod: bool) -> list[Change]:
    old = grant_index((base or EMPTY).get("access_matrix") or [])
    new = grant_index((head or EMPTY).get("access_matrix") or [])
    changes: list[Change] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if after is not None and before is None:
            reasons = [reason("new grant in prod", HIGH)] if prod else []
            changes.append(_grant("added", after, after["methods"], reasons))
        elif before is not None and after is None:
            changes.append(_grant("removed", before, before["methods"], []))
        elif before is not None and after is not None:
            gained = [m for m in after["methods"] if m not in before["methods"]]
            lost = [m for m in before["methods"] if m not in after["methods"]]
            if gained:
                reasons = [reason("role gains a method", HIGH)]
                reasons += [reason("new grant in prod", HIGH)] if prod else []
                changes.append(_grant("methods_added", after, gained, reasons))
            if lost:
                changes.append(_grant("methods_removed", after, lost, []))
    return changes


def _grant(change: str, row: MatrixEntry, methods: list[str], reasons: list[Reason]) -> Change:
    subject = f"{row['role']} {row['gateway']} {shape(row['path'])} {' '.join(methods)}"
    return make_change(
        "grants",
        change,
        subject,
        reasons,
        role=row["role"],
        gateway=row["gateway"],
        route=row["route"],
        path=row["path"],
        methods=list(methods),
    )


# --- routes: renames, paths, rate limits --------------------------------------------------------


def _routes(doc: PlanDocument | None) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for gateway, policy in ((doc or EMPTY).get("policies") or {}).items():
        for route in (policy.get("document") or {}).get("routes") or []:
            found[(gateway, route["name"])] = route
    return found


def _access(route: dict[str, Any]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    return (shape(route["pattern"]), tuple(sorted(route["methods"])), tuple(sorted(route["roles"])))


def route_changes(base: PlanDocument | None, head: PlanDocument | None, prod: bool) -> list[Change]:
    old, new = _routes(base), _routes(head)
    changes: list[Change] = []
    # A route under a new name that allows exactly what an old one did is a rename.
    gone = {k: r for k, r in old.items() if k not in new}
    for key in sorted(k for k in new if k not in old):
        gateway, name = key
        match = next(
            (k for k, r in sorted(gone.items()) if k[0] == gateway and _access(r) == _access(new[key])), None
        )
        if match is not None:
            gone.pop(match)
            changes.append(
                make_change(
                    "routes",
                    "renamed",
                    f"{gateway} {match[1]} -> {name}",
                    gateway=gateway,
                    route=name,
                    before=match[1],
                    after=name,
                    path=new[key]["pattern"],
                )
            )
            changes += _rate_change(gateway, name, old[match], new[key], prod)
    for key in sorted(set(old) & set(new)):
        gateway, name = key
        before, after = old[key], new[key]
        if before["pattern"] != after["pattern"]:
            wider = widens(before["pattern"], after["pattern"])
            reasons = (
                [reason("widened wildcard: the route now matches paths it did not", HIGH)] if wider else []
            )
            changes.append(
                make_change(
                    "routes",
                    "path_widened" if wider else "path_changed",
                    f"{gateway} {name} {before['pattern']} -> {after['pattern']}",
                    reasons,
                    gateway=gateway,
                    route=name,
                    before=before["pattern"],
                    after=after["pattern"],
                )
            )
        changes += _rate_change(gateway, name, before, after, prod)
    return changes


def _rate_change(
    gateway: str, name: str, before: dict[str, Any], after: dict[str, Any], prod: bool
) -> list[Change]:
    if before.get("rate_limit") == after.get("rate_limit"):
        return []
    looser = _rate(after.get("rate_limit")) > _rate(before.get("rate_limit"))
    reasons = [reason("rate limit loosened in prod", MEDIUM)] if looser and prod else []
    return [
        make_change(
            "routes",
            "rate_limit_loosened" if looser else "rate_limit_tightened",
            f"{gateway} {name} rate {before.get('rate_limit')} -> {after.get('rate_limit')}",
            reasons,
            gateway=gateway,
            route=name,
            before=before.get("rate_limit"),
            after=after.get("rate_limit"),
        )
    ]


# --- gateways: hostnames, upstreams, Access, fail-open, limits ----------------------------------


def gateway_changes(base: PlanView | None, head: PlanView | None, prod: bool) -> list[Change]:
    old = base.gateways if base is not None else {}
    new = head.gateways if head is not None else {}
    changes: list[Change] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before is None or after is None:
            continue  # whole gateways show through their grants and resources
        changes += _gateway_diff(name, before, after, prod)
    return changes


def _gateway_diff(name: str, before: GatewayFacts, after: GatewayFacts, prod: bool) -> list[Change]:
    changes: list[Change] = []

    def add(change: str, old: Any, new: Any, reasons: list[Reason]) -> None:
        subject = f"{name} {change} {old} -> {new}"
        changes.append(make_change("gateways", change, subject, reasons, gateway=name, before=old, after=new))

    for host in sorted(set(after.hosts) - set(before.hosts)):
        add("hostname_added", None, host, [reason("new hostname in prod", MEDIUM)] if prod else [])
    for host in sorted(set(before.hosts) - set(after.hosts)):
        add("hostname_removed", host, None, [])
    if before.upstream_url != after.upstream_url:
        moved = before.upstream_host != after.upstream_host
        reasons: list[Reason] = []
        if moved and after.upstream_credential:
            reasons.append(
                reason(f"the upstream credential now goes to a new host ({after.upstream_host})", CRITICAL)
            )
        elif moved and prod:
            reasons.append(reason("prod upstream moved to another host", MEDIUM))
        add(
            "upstream_host_changed" if moved else "upstream_url_changed",
            before.upstream_url,
            after.upstream_url,
            reasons,
        )
    if before.behind_access is True and after.behind_access is False:
        severity = CRITICAL if prod else HIGH
        add(
            "access_removed",
            True,
            False,
            [reason("gateway taken out from behind Cloudflare Access", severity)],
        )
    elif before.behind_access is False and after.behind_access is True:
        add("access_added", False, True, [])
    was_open = before.limits.get("durable_objects_fail_open") is True
    now_open = after.limits.get("durable_objects_fail_open") is True
    if was_open != now_open:
        reasons = [reason("fail-open switched on in prod", HIGH)] if now_open and prod else []
        add("fail_open_on" if now_open else "fail_open_off", was_open, now_open, reasons)
    for key in LIMIT_KEYS:
        old_limit, new_limit = before.limits.get(key), after.limits.get(key)
        if old_limit == new_limit or not isinstance(old_limit, int) or not isinstance(new_limit, int):
            continue
        raised = new_limit > old_limit
        reasons = [reason(f"{key} raised in prod", MEDIUM)] if raised and prod else []
        add(f"{key}_{'raised' if raised else 'lowered'}", old_limit, new_limit, reasons)
    if before.default_rate_limit != after.default_rate_limit and before.default_rate_limit is not None:
        looser = _rate(after.default_rate_limit) > _rate(before.default_rate_limit)
        reasons = [reason("default rate limit loosened in prod", MEDIUM)] if looser and prod else []
        add("default_rate_limit_changed", before.default_rate_limit, after.default_rate_limit, reasons)
    return changes


# --- DAG grants and identities ------------------------------------------------------------------


def dag_changes(base: PlanDocument | None, head: PlanDocument | None, prod: bool) -> list[Change]:
    def index(doc: PlanDocument | None) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {(g["gateway"], g["role"], g["dag"]): dict(g) for g in (doc or EMPTY).get("dag_grants") or []}

    old, new = index(base), index(head)
    changes: list[Change] = []
    for key in sorted(set(old) | set(new)):
        gateway, role, dag = key
        fields: dict[str, Any] = {"gateway": gateway, "role": role, "dag": dag}
        subject = f"{role} {gateway} {dag}"
        if key not in old:
            reasons = [reason("new DAG grant in prod", HIGH)] if prod else []
            if prod and new[key].get("conf_schema") is None:
                reasons.append(reason("any conf accepted (no schema)", MEDIUM))
            changes.append(make_change("dag_grants", "added", subject, reasons, **fields))
        elif key not in new:
            changes.append(make_change("dag_grants", "removed", subject, **fields))
        elif old[key].get("conf_schema") != new[key].get("conf_schema"):
            dropped = new[key].get("conf_schema") is None
            reasons = [reason("conf schema dropped: any conf is now accepted", MEDIUM)] if dropped else []
            change = "conf_schema_removed" if dropped else "conf_schema_changed"
            changes.append(make_change("dag_grants", change, subject, reasons, **fields))
    return changes


def identity_changes(base: PlanDocument | None, head: PlanDocument | None, prod: bool) -> list[Change]:
    old_ids: Mapping[str, Any] = (base or EMPTY).get("identities") or {}
    new_ids: Mapping[str, Any] = (head or EMPTY).get("identities") or {}
    old_roles, new_roles = old_ids.get("roles") or {}, new_ids.get("roles") or {}
    changes: list[Change] = []
    for role in sorted(set(old_roles) | set(new_roles)):
        if role not in old_roles:
            changes.append(make_change("identities", "role_added", f"role {role}", role=role))
        elif role not in new_roles:
            changes.append(make_change("identities", "role_removed", f"role {role}", role=role))
        for kind in MEMBER_KINDS:
            before = set((old_roles.get(role) or {}).get(kind) or [])
            after = set((new_roles.get(role) or {}).get(kind) or [])
            for member in sorted(after - before):
                risky = prod and role in old_roles
                reasons = [reason("new member of a prod role", HIGH)] if risky else []
                changes.append(
                    make_change(
                        "identities",
                        "member_added",
                        f"{kind} {member} +{role}",
                        reasons,
                        role=role,
                        kind=kind,
                        member=member,
                    )
                )
            for member in sorted(before - after):
                changes.append(
                    make_change(
                        "identities",
                        "member_removed",
                        f"{kind} {member} -{role}",
                        role=role,
                        kind=kind,
                        member=member,
                    )
                )
    changes += token_changes(old_ids.get("service_tokens") or {}, new_ids.get("service_tokens") or {}, prod)
    return changes


def token_changes(old: Mapping[str, Any], new: Mapping[str, Any], prod: bool) -> list[Change]:
    """Service tokens added, removed, rotated (a new client secret) or living longer."""
    changes: list[Change] = []
    for token in sorted(set(old) | set(new)):
        was, now = old.get(token), new.get(token)
        if was is None and now is not None:
            reasons = [reason("new machine identity in prod", HIGH)] if prod else []
            changes.append(
                make_change(
                    "identities", "service_token_added", f"token {token} +", reasons, token=token, after=now
                )
            )
        elif now is None and was is not None:
            changes.append(
                make_change(
                    "identities", "service_token_removed", f"token {token} -", token=token, before=was
                )
            )
        elif was is not None and now is not None:
            if was.get("version") != now.get("version"):
                changes.append(
                    make_change(
                        "identities",
                        "service_token_rotated",
                        f"token {token} v{was.get('version')} -> v{now.get('version')}",
                        token=token,
                        before=was.get("version"),
                        after=now.get("version"),
                        details={"previous_secret_expires_at": now.get("previous_secret_expires_at")},
                    )
                )
            if was.get("duration") != now.get("duration"):
                longer = _hours(now.get("duration")) > _hours(was.get("duration"))
                reasons = [reason("a prod service token lives longer", MEDIUM)] if longer and prod else []
                changes.append(
                    make_change(
                        "identities",
                        "service_token_longer" if longer else "service_token_shorter",
                        f"token {token} {was.get('duration')} -> {now.get('duration')}",
                        reasons,
                        token=token,
                        before=was.get("duration"),
                        after=now.get("duration"),
                    )
                )
    return changes


# --- resources ----------------------------------------------------------------------------------


def resource_changes(base: PlanView | None, head: PlanView | None) -> list[Change]:
    old = {(r.type, r.name): r for r in base.resources if r.custom} if base is not None else {}
    new = {(r.type, r.name): r for r in head.resources if r.custom} if head is not None else {}
    changes: list[Change] = []
    for key in sorted(set(old) | set(new), key=lambda k: (k[1], k[0])):
        before, after = old.get(key), new.get(key)
        current = after or before
        assert current is not None
        fields: dict[str, Any] = {
            "type": current.type,
            "kind": current.kind,
            "name": current.name,
            "gateway": current.gateway,
        }
        subject = f"{current.kind} {current.name}"
        if before is None:
            changes.append(make_change("resources", "create", subject, keys=[], **fields))
            continue
        if after is None:
            reasons = []
            if before.protect:
                reasons.append(reason("deletes a protected resource", CRITICAL))
            if base is not None and _holds_data(base, before):
                reasons.append(reason("deletes stored data (KV / Durable Objects)", CRITICAL))
            changes.append(make_change("resources", "delete", subject, reasons, keys=[], **fields))
            continue
        flat_old, flat_new = flatten(before.inputs), flatten(after.inputs)
        changed = sorted(k for k in set(flat_old) | set(flat_new) if flat_old.get(k) != flat_new.get(k))
        moved = before.parent != after.parent
        if not changed and not moved and before.protect == after.protect:
            continue
        tops = {_top(k) for k in changed} | {k for k in changed if "." in k}
        replace = moved or bool(tops & REPLACE_ON.get(current.kind, frozenset()))
        reasons = []
        if replace and (before.protect or (base is not None and _holds_data(base, before))):
            reasons.append(
                reason("replaces a protected or data-holding resource (delete + create)", CRITICAL)
            )
        if before.protect and not after.protect:
            reasons.append(reason("protect switched off", HIGH))
        details = {
            k: {"before": flat_old.get(k), "after": flat_new.get(k)}
            for k in changed
            if SECRET_MASK not in (flat_old.get(k), flat_new.get(k))
        }
        keys = (
            changed
            + (["(parent)"] if moved else [])
            + (["(protect)"] if before.protect != after.protect else [])
        )
        changes.append(
            make_change(
                "resources",
                "replace" if replace else "update",
                subject,
                reasons,
                keys=keys,
                details=details,
                **fields,
            )
        )
    return changes


def finding_changes(
    base: PlanView | None, head: PlanView | None, config: RuleConfig
) -> tuple[list[Change], list[dict[str, Any]]]:
    before = {f.key: f for f in evaluate(base, config)} if base is not None else {}
    after = {f.key: f for f in evaluate(head, config)} if head is not None else {}
    introduced = []
    for key in sorted(set(after) - set(before)):
        finding = after[key]
        reasons = [reason("a policy rule now fails", HIGH)] if finding.severity == "error" else []
        json = finding.to_json()
        introduced.append(
            make_change(
                "findings",
                "introduced",
                f"{finding.rule} {finding.gateway or ''} {finding.resource or ''} {finding.message}",
                reasons,
                **{k: v for k, v in json.items() if k != "severity"},
                kind=finding.severity,
            )
        )
    resolved = [before[k].to_json() for k in sorted(set(before) - set(after))]
    return introduced, resolved


# --- the stack diff -----------------------------------------------------------------------------


def _by_severity(items: Iterable[Change]) -> list[Change]:
    return sorted(items, key=lambda c: (-c["severity"], SECTIONS.index(c["section"]), c["subject"]))


def diff_plans(
    base: PlanDocument | None, head: PlanDocument | None, config: RuleConfig | None = None
) -> StackDiff:
    """One stack's diff. Prod risk rules follow HEAD's environment (or BASE's when removed)."""
    rules = config or RuleConfig()
    current: PlanDocument = head or base or EMPTY
    # One view per side, shared by every section and the rules (each builds indexes once).
    old_view = PlanView(base) if base else None
    new_view = PlanView(head) if head else None
    prod = (new_view or old_view or PlanView(EMPTY)).is_prod
    findings, resolved = finding_changes(old_view, new_view, rules)
    sections: dict[str, list[Change]] = {
        "grants": grant_changes(base, head, prod),
        "routes": route_changes(base, head, prod),
        "gateways": gateway_changes(old_view, new_view, prod),
        "dag_grants": dag_changes(base, head, prod),
        "identities": identity_changes(base, head, prod),
        "resources": resource_changes(old_view, new_view),
        "findings": findings,
    }
    versions_before = {g: p.get("version") for g, p in ((base or EMPTY).get("policies") or {}).items()}
    versions_after = {g: p.get("version") for g, p in ((head or EMPTY).get("policies") or {}).items()}
    policy_versions: dict[str, PolicyVersionChange] = {
        gateway: {"before": versions_before.get(gateway), "after": versions_after.get(gateway)}
        for gateway in sorted(set(versions_before) | set(versions_after))
        if versions_before.get(gateway) != versions_after.get(gateway)
    }
    risky = _by_severity(item for items in sections.values() for item in items if item["risky"])
    status: Literal["added", "removed", "changed"] = (
        "added" if base is None else "removed" if head is None else "changed"
    )
    changed = bool(any(sections.values()) or resolved or policy_versions or status != "changed")
    gateways = sorted(
        {
            str(item.get("gateway"))
            for name in ("grants", "routes", "gateways", "dag_grants", "resources")
            for item in sections[name]
            if item.get("gateway")
        }
    )
    return {
        "stack": str(current.get("stack")),
        "environment": str(current.get("environment")),
        "protected": bool(current.get("protected")),
        "status": status if changed else "unchanged",
        "changed": changed,
        "risky": risky,
        "policy_versions": policy_versions,
        "grants": sections["grants"],
        "routes": sections["routes"],
        "gateways": sections["gateways"],
        "dag_grants": sections["dag_grants"],
        "identities": sections["identities"],
        "resources": sections["resources"],
        "findings": sections["findings"],
        "findings_resolved": resolved,
        "changed_gateways": gateways,
        "matrix": {
            "base": list((base or EMPTY).get("access_matrix") or []),
            "head": list((head or EMPTY).get("access_matrix") or []),
        },
    }


ENV_ORDER = {"prod": 0, "staging": 1, "dev": 2, "local": 3}


def _failures(errors: Mapping[str, str]) -> list[Failure]:
    """Error keys are `<side>:<stack>` (a git ref or file label, then the stack name)."""
    failures: list[Failure] = []
    for key, error in sorted(errors.items()):
        side, _, stack = key.rpartition(":")
        failures.append({"stack": stack or key, "side": side, "error": error})
    return failures


def merge_across(
    stacks: Iterable[StackDiff], section: str, key: Callable[[Change], Hashable]
) -> list[Change]:
    """A list's changes across stacks, each once (by `key`) with the stacks it touches, in
    first-seen order."""
    merged: dict[Hashable, Change] = {}
    for stack in stacks:
        items: list[Change] = stack[section]  # type: ignore[literal-required]
        for item in items:
            found = key(item)
            if found in merged:
                merged[found]["stacks"] = [*merged[found].get("stacks", []), stack["stack"]]
            else:
                merged[found] = {**item, "stacks": [stack["stack"]]}
    return list(merged.values())


def merge_risky(stacks: Iterable[StackDiff]) -> list[Change]:
    """Each risky change once, with every stack it touches, most severe first."""
    return _by_severity(
        merge_across(
            stacks,
            "risky",
            lambda item: (item["section"], item["change"], item["subject"], tuple(item["reasons"])),
        )
    )


def diff_sets(
    bases: Mapping[str, PlanDocument],
    heads: Mapping[str, PlanDocument],
    config: RuleConfig | None = None,
    errors: Mapping[str, str] | None = None,
) -> DiffReport:
    """Diffs of every stack present on either side, risky stacks first, then prod before the rest.
    A stack that failed to plan on either side is a failure, never an added or removed stack."""
    failures = _failures(errors or {})
    failed = {f["stack"] for f in failures}
    names = sorted((set(bases) | set(heads)) - failed)
    stacks = [diff_plans(bases.get(name), heads.get(name), config) for name in names]
    stacks.sort(key=lambda s: (not s["risky"], ENV_ORDER.get(s["environment"], 9), s["stack"]))
    changed = [s for s in stacks if s["changed"]]
    return {
        "format": DIFF_FORMAT,
        "changed": bool(changed) or bool(failures),
        "risky": sum(len(s["risky"]) for s in stacks),
        "stacks_compared": len(stacks) + len(failed),
        "errors": dict(sorted((errors or {}).items())),
        "failures": failures,
        "risky_changes": merge_risky(changed),
        "stacks": changed,
    }
