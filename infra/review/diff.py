"""The semantic diff of two plan documents of one stack: what reviewers care about, risky first.

Pure: two `airgate-plan/1` documents (either may be None: a stack added or removed) in, one
JSON-ready dict out. Policy changes are read from the access matrix, the compiled policies, the DAG
grants and the identities; resource changes from the masked inputs. A change is *risky* when it widens
who reaches what where it matters:

- any new grant (a role reaching a new route, or a role gaining a method) in `prod`;
- a role gaining a method on a route it already had, anywhere;
- a route pattern that now matches paths it did not (a widened wildcard), anywhere;
- a DAG grant added in `prod`, or one that stops pinning its `conf` schema;
- a member (group, email, token, client) added to a role in `prod`; a rate limit loosened in `prod`;
- a protected or data-holding resource deleted or replaced, or losing `protect`;
- a rule that now fails (an error finding the base did not have).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from infra.review.coverage import widens
from infra.rules import RuleConfig, evaluate
from infra.rules.view import SECRET_MASK, PlanView, Resource

DIFF_FORMAT = "airgate-diff/1"

# Inputs whose change makes the provider replace the resource rather than update it. The provider
# schema is the authority (only a real `pulumi preview` shows it); this is the part we rely on.
REPLACE_ON: dict[str, frozenset[str]] = {
    "WorkersScript": frozenset({"accountId", "scriptName"}),
    "WorkersKvNamespace": frozenset({"accountId"}),
    "WorkersKv": frozenset({"accountId", "namespaceId", "keyName"}),
    "WorkersCustomDomain": frozenset({"accountId", "zoneId", "hostname"}),
    "WorkersRoute": frozenset({"zoneId"}),
    "ZeroTrustAccessApplication": frozenset({"accountId", "zoneId"}),
    "ZeroTrustAccessPolicy": frozenset({"accountId"}),
    "ZeroTrustAccessServiceToken": frozenset({"accountId"}),
    "ZeroTrustAccessIdentityProvider": frozenset({"accountId", "type"}),
    "LogpushJob": frozenset({"accountId", "zoneId", "dataset"}),
    "Namespace": frozenset({"metadata.name"}),
    "Service": frozenset({"metadata.name", "metadata.namespace"}),
}
MEMBER_KINDS = ("groups", "emails", "service_tokens", "oidc_clients")


def _rate(limit: dict[str, Any] | None) -> float:
    if not limit:
        return float("inf")
    return float(limit.get("requests", 0)) / max(float(limit.get("per_seconds", 1)), 1.0)


def _holds_data(view: PlanView, resource: Resource) -> bool:
    return resource.kind == "WorkersKvNamespace" or bool(
        resource.kind == "WorkersScript" and view.durable_object_classes(resource)
    )


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


# --- policy -------------------------------------------------------------------------------------


def _matrix(doc: dict[str, Any] | None) -> dict[tuple[str, str, str], dict[str, Any]]:
    rows = (doc or {}).get("access_matrix") or []
    return {(r["role"], r["gateway"], r["route"]): r for r in rows}


def _routes(doc: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for gateway, policy in ((doc or {}).get("policies") or {}).items():
        for route in (policy.get("document") or {}).get("routes") or []:
            found[(gateway, route["name"])] = route
    return found


def grant_changes(
    base: dict[str, Any] | None, head: dict[str, Any] | None, prod: bool
) -> list[dict[str, Any]]:
    old, new = _matrix(base), _matrix(head)
    changes: list[dict[str, Any]] = []
    for key in sorted(set(old) | set(new)):
        role, gateway, route = key
        before, after = old.get(key), new.get(key)
        if before is None and after is not None:
            reasons = ["new grant in prod"] if prod else []
            changes.append(
                {
                    "change": "added",
                    "role": role,
                    "gateway": gateway,
                    "route": route,
                    "path": after["path"],
                    "methods": list(after["methods"]),
                    "risky": bool(reasons),
                    "reasons": reasons,
                }
            )
        elif after is None and before is not None:
            changes.append(
                {
                    "change": "removed",
                    "role": role,
                    "gateway": gateway,
                    "route": route,
                    "path": before["path"],
                    "methods": list(before["methods"]),
                    "risky": False,
                    "reasons": [],
                }
            )
        elif before is not None and after is not None:
            gained = [m for m in after["methods"] if m not in before["methods"]]
            lost = [m for m in before["methods"] if m not in after["methods"]]
            if gained:
                reasons = ["role gains a method"] + (["new grant in prod"] if prod else [])
                changes.append(
                    {
                        "change": "methods_added",
                        "role": role,
                        "gateway": gateway,
                        "route": route,
                        "path": after["path"],
                        "methods": gained,
                        "risky": True,
                        "reasons": reasons,
                    }
                )
            if lost:
                changes.append(
                    {
                        "change": "methods_removed",
                        "role": role,
                        "gateway": gateway,
                        "route": route,
                        "path": after["path"],
                        "methods": lost,
                        "risky": False,
                        "reasons": [],
                    }
                )
    return changes


def route_changes(
    base: dict[str, Any] | None, head: dict[str, Any] | None, prod: bool
) -> list[dict[str, Any]]:
    """Route-level changes: a pattern changed (widened or not) and rate limits changed."""
    old, new = _routes(base), _routes(head)
    changes: list[dict[str, Any]] = []
    for key in sorted(set(old) & set(new)):
        gateway, route = key
        before, after = old[key], new[key]
        if before["pattern"] != after["pattern"]:
            wider = widens(before["pattern"], after["pattern"])
            changes.append(
                {
                    "change": "path_widened" if wider else "path_changed",
                    "gateway": gateway,
                    "route": route,
                    "before": before["pattern"],
                    "after": after["pattern"],
                    "risky": wider,
                    "reasons": ["widened wildcard: the route now matches paths it did not"] if wider else [],
                }
            )
        if before.get("rate_limit") != after.get("rate_limit"):
            looser = _rate(after.get("rate_limit")) > _rate(before.get("rate_limit"))
            risky = looser and prod
            changes.append(
                {
                    "change": "rate_limit_loosened" if looser else "rate_limit_tightened",
                    "gateway": gateway,
                    "route": route,
                    "before": before.get("rate_limit"),
                    "after": after.get("rate_limit"),
                    "risky": risky,
                    "reasons": ["rate limit loosened in prod"] if risky else [],
                }
            )
    return changes


def dag_changes(base: dict[str, Any] | None, head: dict[str, Any] | None, prod: bool) -> list[dict[str, Any]]:
    def index(doc: dict[str, Any] | None) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {(g["gateway"], g["role"], g["dag"]): g for g in (doc or {}).get("dag_grants") or []}

    old, new = index(base), index(head)
    changes: list[dict[str, Any]] = []
    for key in sorted(set(old) | set(new)):
        gateway, role, dag = key
        item: dict[str, Any] = {"gateway": gateway, "role": role, "dag": dag}
        if key not in old:
            reasons = ["new DAG grant in prod"] if prod else []
            if prod and new[key].get("conf_schema") is None:
                reasons.append("any conf accepted (no schema)")
            changes.append({**item, "change": "added", "risky": bool(reasons), "reasons": reasons})
        elif key not in new:
            changes.append({**item, "change": "removed", "risky": False, "reasons": []})
        elif old[key].get("conf_schema") != new[key].get("conf_schema"):
            dropped = new[key].get("conf_schema") is None
            reasons = ["conf schema dropped: any conf is now accepted"] if dropped else []
            changes.append(
                {
                    **item,
                    "change": "conf_schema_removed" if dropped else "conf_schema_changed",
                    "risky": dropped,
                    "reasons": reasons,
                }
            )
    return changes


def identity_changes(
    base: dict[str, Any] | None, head: dict[str, Any] | None, prod: bool
) -> list[dict[str, Any]]:
    old_ids = (base or {}).get("identities") or {}
    new_ids = (head or {}).get("identities") or {}
    old_roles, new_roles = old_ids.get("roles") or {}, new_ids.get("roles") or {}
    changes: list[dict[str, Any]] = []
    for role in sorted(set(old_roles) | set(new_roles)):
        if role not in old_roles:
            changes.append({"change": "role_added", "role": role, "risky": False, "reasons": []})
        elif role not in new_roles:
            changes.append({"change": "role_removed", "role": role, "risky": False, "reasons": []})
        for kind in MEMBER_KINDS:
            before = set((old_roles.get(role) or {}).get(kind) or [])
            after = set((new_roles.get(role) or {}).get(kind) or [])
            for member in sorted(after - before):
                risky = prod and role in old_roles
                changes.append(
                    {
                        "change": "member_added",
                        "role": role,
                        "kind": kind,
                        "member": member,
                        "risky": risky,
                        "reasons": ["new member of a prod role"] if risky else [],
                    }
                )
            for member in sorted(before - after):
                changes.append(
                    {
                        "change": "member_removed",
                        "role": role,
                        "kind": kind,
                        "member": member,
                        "risky": False,
                        "reasons": [],
                    }
                )
    old_tokens, new_tokens = old_ids.get("service_tokens") or {}, new_ids.get("service_tokens") or {}
    for token in sorted(set(old_tokens) | set(new_tokens)):
        was, now = old_tokens.get(token), new_tokens.get(token)
        if was is None:
            changes.append(
                {
                    "change": "service_token_added",
                    "token": token,
                    "after": now,
                    "risky": prod,
                    "reasons": ["new machine identity in prod"] if prod else [],
                }
            )
        elif after is None:
            changes.append(
                {
                    "change": "service_token_removed",
                    "token": token,
                    "before": before,
                    "risky": False,
                    "reasons": [],
                }
            )
        elif before != after:
            changes.append(
                {
                    "change": "service_token_changed",
                    "token": token,
                    "before": was,
                    "after": now,
                    "risky": False,
                    "reasons": [],
                }
            )
    return changes


# --- resources ----------------------------------------------------------------------------------


def resource_changes(base: dict[str, Any] | None, head: dict[str, Any] | None) -> list[dict[str, Any]]:
    old_view, new_view = PlanView(base or {}), PlanView(head or {})
    old = {(r.type, r.name): r for r in old_view.resources if r.custom}
    new = {(r.type, r.name): r for r in new_view.resources if r.custom}
    changes: list[dict[str, Any]] = []
    for key in sorted(set(old) | set(new), key=lambda k: (k[1], k[0])):
        before, after = old.get(key), new.get(key)
        current = after or before
        assert current is not None
        item: dict[str, Any] = {"type": current.type, "kind": current.kind, "name": current.name}
        item["gateway"] = current.gateway
        if before is None:
            changes.append({**item, "change": "create", "keys": [], "risky": False, "reasons": []})
            continue
        if after is None:
            reasons = []
            if before.protect:
                reasons.append("deletes a protected resource")
            if _holds_data(old_view, before):
                reasons.append("deletes stored data (KV / Durable Objects)")
            changes.append(
                {**item, "change": "delete", "keys": [], "risky": bool(reasons), "reasons": reasons}
            )
            continue
        flat_old, flat_new = flatten(before.inputs), flatten(after.inputs)
        changed = sorted(k for k in set(flat_old) | set(flat_new) if flat_old.get(k) != flat_new.get(k))
        moved = before.parent != after.parent
        if not changed and not moved and before.protect == after.protect:
            continue
        tops = {_top(k) for k in changed} | {k for k in changed if "." in k}
        replace = moved or bool(tops & REPLACE_ON.get(current.kind, frozenset()))
        reasons = []
        if replace and (before.protect or _holds_data(old_view, before)):
            reasons.append("replaces a protected or data-holding resource (delete + create)")
        if before.protect and not after.protect:
            reasons.append("protect switched off")
        details = {
            k: {"before": flat_old.get(k), "after": flat_new.get(k)}
            for k in changed
            if SECRET_MASK not in (flat_old.get(k), flat_new.get(k))
        }
        changes.append(
            {
                **item,
                "change": "replace" if replace else "update",
                "keys": changed
                + (["(parent)"] if moved else [])
                + (["(protect)"] if before.protect != after.protect else []),
                "details": details,
                "risky": bool(reasons),
                "reasons": reasons,
            }
        )
    return changes


def finding_changes(
    base: dict[str, Any] | None, head: dict[str, Any] | None, config: RuleConfig
) -> dict[str, list[dict[str, Any]]]:
    before = {f.key: f for f in evaluate(base, config)} if base else {}
    after = {f.key: f for f in evaluate(head, config)} if head else {}
    introduced = [
        {
            **after[k].to_json(),
            "risky": after[k].severity == "error",
            "reasons": ["a policy rule now fails"] if after[k].severity == "error" else [],
        }
        for k in sorted(set(after) - set(before))
    ]
    resolved = [before[k].to_json() for k in sorted(set(before) - set(after))]
    return {"introduced": introduced, "resolved": resolved}


# --- the stack diff -----------------------------------------------------------------------------


def _changed_gateways(sections: Iterable[list[dict[str, Any]]]) -> list[str]:
    return sorted({item["gateway"] for section in sections for item in section if item.get("gateway")})


def diff_plans(
    base: dict[str, Any] | None, head: dict[str, Any] | None, config: RuleConfig | None = None
) -> dict[str, Any]:
    """One stack's diff. `prod` risk rules follow HEAD's environment (or BASE's when removed)."""
    rules = config or RuleConfig()
    current = head or base or {}
    prod = current.get("environment") == "prod"
    grants = grant_changes(base, head, prod)
    routes = route_changes(base, head, prod)
    dags = dag_changes(base, head, prod)
    identities = identity_changes(base, head, prod)
    resources = resource_changes(base, head)
    findings = finding_changes(base, head, rules)
    versions_before = {g: p.get("version") for g, p in ((base or {}).get("policies") or {}).items()}
    versions_after = {g: p.get("version") for g, p in ((head or {}).get("policies") or {}).items()}
    policy_versions = {
        gateway: {"before": versions_before.get(gateway), "after": versions_after.get(gateway)}
        for gateway in sorted(set(versions_before) | set(versions_after))
        if versions_before.get(gateway) != versions_after.get(gateway)
    }
    sections = {
        "grants": grants,
        "routes": routes,
        "dag_grants": dags,
        "identities": identities,
        "resources": resources,
        "findings": findings["introduced"],
    }
    risky = [
        {"section": name, **item} for name, items in sections.items() for item in items if item.get("risky")
    ]
    status = "added" if base is None else "removed" if head is None else "changed"
    changed = bool(any(sections.values()) or findings["resolved"] or policy_versions or status != "changed")
    return {
        "stack": current.get("stack"),
        "environment": current.get("environment"),
        "protected": bool(current.get("protected")),
        "status": status if changed else "unchanged",
        "changed": changed,
        "risky": risky,
        "policy_versions": policy_versions,
        **sections,
        "findings_resolved": findings["resolved"],
        "changed_gateways": _changed_gateways([grants, routes, dags, resources]),
        "matrix": {
            "base": (base or {}).get("access_matrix") or [],
            "head": (head or {}).get("access_matrix") or [],
        },
    }


ENV_ORDER = {"prod": 0, "staging": 1, "dev": 2, "local": 3}


def diff_sets(
    bases: dict[str, dict[str, Any]],
    heads: dict[str, dict[str, Any]],
    config: RuleConfig | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Diffs of every stack present on either side, risky stacks first, then prod before the rest."""
    stacks = [
        diff_plans(bases.get(name), heads.get(name), config) for name in sorted(set(bases) | set(heads))
    ]
    stacks.sort(key=lambda s: (not s["risky"], ENV_ORDER.get(str(s["environment"]), 9), str(s["stack"])))
    changed = [s for s in stacks if s["changed"]]
    return {
        "format": DIFF_FORMAT,
        "changed": bool(changed) or bool(errors),
        "risky": sum(len(s["risky"]) for s in stacks),
        "stacks_compared": len(stacks),
        "errors": dict(sorted((errors or {}).items())),
        "stacks": changed,
    }
