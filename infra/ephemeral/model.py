"""Ephemeral test stacks, as pure decisions: names, derivation from a base stack, TTL, the guard,
the account caps and what `sweep` does.

A pull request `n` gets stack `pr-<n>`, derived from a base stack (normally `dev`). Every
account-scoped name the program makes already carries the stack name (`airgate-<stack>-...`);
hostnames come from the stack file, so derivation rewrites them to `pr-<n>-<label>.<zone>`, one
label under the zone, which the zone's Universal SSL certificate still covers (a deeper name would not).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.config.model import StackConfig
from infra.plan.format import PlanDocument
from infra.rules.view import kind_of

EPHEMERAL_NAME = re.compile(r"^pr-([1-9][0-9]{0,6})$")
TAG_EPHEMERAL = "airgate:ephemeral"
TAG_EXPIRES = "airgate:expires-at"
TAG_BASE = "airgate:base"
TAG_PR = "airgate:pr"
TAG_PROTECTED = "airgate:protected"
TAG_WITH_AIRFLOW = "airgate:with-airflow"
DEFAULT_TTL = dt.timedelta(hours=72)
MAX_TTL = dt.timedelta(days=14)

# Cloudflare account limits that ephemeral stacks eat into (Zero Trust defaults).
CAPS: dict[str, int] = {"service_tokens": 50, "access_apps": 500, "identity_providers": 50}
CAP_KINDS: dict[str, str] = {
    "ZeroTrustAccessServiceToken": "service_tokens",
    "ZeroTrustAccessApplication": "access_apps",
    "ZeroTrustAccessIdentityProvider": "identity_providers",
}


class EphemeralError(ValueError):
    """A refusal, with a message that says what to do instead."""


def stack_name_for(pr: int) -> str:
    if pr < 1 or pr > 9_999_999:
        raise EphemeralError(f"pull request number {pr} is out of range")
    return f"pr-{pr}"


def is_ephemeral_name(name: str) -> bool:
    return EPHEMERAL_NAME.match(name) is not None


def parse_ttl(text: str) -> dt.timedelta:
    """`72h`, `3d`, `90m` -> timedelta, between 10 minutes and MAX_TTL."""
    match = re.fullmatch(r"([1-9][0-9]*)([mhd])", text.strip())
    if match is None:
        raise EphemeralError(f"TTL {text!r}: write a number and a unit, e.g. 72h, 3d or 90m")
    amount, unit = int(match.group(1)), match.group(2)
    ttl = {
        "m": dt.timedelta(minutes=amount),
        "h": dt.timedelta(hours=amount),
        "d": dt.timedelta(days=amount),
    }[unit]
    if ttl < dt.timedelta(minutes=10) or ttl > MAX_TTL:
        raise EphemeralError(f"TTL {text!r} must be between 10m and {MAX_TTL.days}d")
    return ttl


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def ephemeral_tags(base: str, pr: int, now: dt.datetime, ttl: dt.timedelta) -> dict[str, str]:
    return {
        TAG_EPHEMERAL: "true",
        TAG_BASE: base,
        TAG_PR: str(pr),
        TAG_EXPIRES: format_time(now + ttl),
        TAG_PROTECTED: "false",
    }


def ephemeral_hostname(hostname: str, zone: str, stack: str) -> str:
    """`ingest.dev.acme-data.com` in zone `dev.acme-data.com` -> `pr-7-ingest.dev.acme-data.com`."""
    if hostname == zone:
        derived = f"{stack}.{zone}"
    else:
        if not hostname.endswith("." + zone):
            raise EphemeralError(f"{hostname} is outside zone {zone}")
        relative = hostname[: -len(zone) - 1]
        labels = relative.split(".")
        labels[0] = f"{stack}-{labels[0]}"
        derived = ".".join(labels) + "." + zone
    if any(len(label) > 63 for label in derived.split(".")):
        raise EphemeralError(f"{derived}: a DNS label would exceed 63 characters; shorten the gateway host")
    return derived


def derive_stack_file(
    base_file: Mapping[str, Any],
    base: StackConfig,
    base_name: str,
    pr: int,
    with_airflow: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `Pulumi.pr-<n>.yaml` document: the base stack's own settings, with every hostname made
    unique, `protect` off, and no Logpush job (accounts allow only a few per dataset). Secrets
    (`secure:`) cannot be copied: they are encrypted for the base stack; `stack create` sets them
    from the environment.

    Airflow is left out unless asked for: a test stack's gateways then use the base's Airflow as
    their upstream. The file then names no shared file: it holds the base's merged settings
    (`settings`: `LoadedStack.settings`, its `airgate:extends` file under its own keys, as the loader
    merged them) without the `airflow` section. It never writes a null: `pulumi config set` stores
    a null as "" when it rewrites the file (pulumi/pulumi#19483), which the loader would refuse.
    With Airflow, the namespace and both tunnel hostnames get the stack's name too, so two pull
    requests never share a release."""
    if base.protected or base.environment == "prod":
        raise EphemeralError(
            f"stack {base_name!r} is protected ({base.environment}); derive test stacks from dev or staging"
        )
    if is_ephemeral_name(base_name):
        raise EphemeralError("derive from a long-lived stack (dev, staging), not from another pr stack")
    name = stack_name_for(pr)
    config = copy.deepcopy(dict(base_file.get("config") or {}))
    config = {
        key: value
        for key, value in config.items()
        if not (isinstance(value, dict) and set(value) == {"secure"}) and key != "airgate:logpush"
    }
    keep_airflow = with_airflow and base.airflow is not None
    if not keep_airflow:
        config = inline_settings(config, settings)
    gateways = copy.deepcopy(config.get("airgate:gateways") or {})
    for gateway_name, gateway in sorted(base.gateways.items()):
        entry = gateways.setdefault(gateway_name, {})
        entry["hostname"] = ephemeral_hostname(gateway.hostname, base.zone, name)
    config["airgate:gateways"] = gateways
    config["airgate:protect"] = False
    if keep_airflow:
        assert base.airflow is not None
        airflow = copy.deepcopy(config.get("airgate:airflow") or {})
        airflow_settings = base.airflow
        for key in ("ui_hostname", "api_hostname"):
            value = getattr(airflow_settings, key, None)
            if isinstance(value, str):
                airflow[key] = ephemeral_hostname(value, base.zone, name)
        namespace = f"{getattr(airflow_settings, 'namespace', 'airflow')}-{name}"
        if len(namespace) > 63:
            raise EphemeralError(f"namespace {namespace} would exceed 63 characters")
        airflow["namespace"] = namespace
        config["airgate:airflow"] = airflow
        # The trigger gateway's upstream follows Airflow's API to its new hostname.
        api = getattr(airflow_settings, "api_hostname", None)
        for gateway_name, gateway in sorted(base.gateways.items()):
            if api and gateway.upstream.url.split("://", 1)[-1].split("/", 1)[0] == api:
                upstream = gateways[gateway_name].setdefault("upstream", {})
                upstream["url"] = gateway.upstream.url.replace(api, airflow["api_hostname"], 1)
    nulls = list(_null_paths(config))
    if nulls:
        raise EphemeralError(
            f"the derived stack would hold null at {', '.join(nulls)}; set a value or drop the key"
        )
    return {"config": config}


def inline_settings(
    config: Mapping[str, Any],
    settings: Mapping[str, Any] | None,
    drop: Iterable[str] = ("airflow", "logpush"),
) -> dict[str, Any]:
    """A stack file's config standing on its own: the file's other keys, then the loader's merged
    `airgate:` settings (so the merge is written once, no `airgate:extends`), less the sections in
    `drop` (a test stack drops Airflow and Logpush; secrets are never among the settings)."""
    prefix = "airgate:"
    dropped = set(drop)
    others = {key: value for key, value in config.items() if not key.startswith(prefix)}
    own = {
        f"{prefix}{key}": copy.deepcopy(value)
        for key, value in (settings or {}).items()
        if key not in dropped
    }
    return {**others, **own}


def _null_paths(node: Any, trail: str = "") -> Iterable[str]:
    if node is None:
        yield trail or "(root)"
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _null_paths(value, f"{trail}.{key}" if trail else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _null_paths(value, f"{trail}[{index}]")


def derived_header(base_name: str, pr: int) -> str:
    return (
        f"# Generated by `airgate stack create --pr {pr} --base {base_name}`: an ephemeral test stack.\n"
        "# Do not commit or edit; `airgate stack destroy` / `sweep` remove it with its resources.\n"
    )


# --- names that must never collide --------------------------------------------------------------

NAME_KEYS: dict[str, tuple[str, ...]] = {
    "WorkersScript": ("scriptName",),
    "WorkersKvNamespace": ("title",),
    "WorkersCustomDomain": ("hostname",),
    "WorkersRoute": ("pattern",),
    "ZeroTrustAccessApplication": ("name", "domain"),
    "ZeroTrustAccessPolicy": ("name",),
    "ZeroTrustAccessServiceToken": ("name",),
    "ZeroTrustAccessIdentityProvider": ("name",),
    "LogpushJob": ("name",),
    "ZeroTrustTunnelCloudflared": ("name",),
    "DnsRecord": ("name",),
}


def account_names(plan: PlanDocument) -> set[tuple[str, str]]:
    """(kind, name) of everything that must be unique in the account or zone."""
    names: set[tuple[str, str]] = set()
    for resource in plan["resources"]:
        kind = kind_of(resource["type"])
        for key in NAME_KEYS.get(kind, ()):
            value = resource["inputs"].get(key)
            if isinstance(value, str):
                names.add((kind, value.lower()))
    return names


def collisions(plan: PlanDocument, others: Iterable[PlanDocument]) -> list[str]:
    mine = account_names(plan)
    clashes: set[str] = set()
    for other in others:
        for kind, name in sorted(mine & account_names(other)):
            clashes.add(f"{kind} {name} (also in stack {other['stack']})")
    return sorted(clashes)


# --- caps ---------------------------------------------------------------------------------------


def count_caps(resource_types: Iterable[str]) -> dict[str, int]:
    """How many of each capped kind these resource types (a plan's or a state's) hold."""
    counts = dict.fromkeys(CAPS, 0)
    for resource_type in resource_types:
        kind = CAP_KINDS.get(kind_of(resource_type))
        if kind:
            counts[kind] += 1
    return counts


def needed_from_plan(plan: PlanDocument) -> dict[str, int]:
    return count_caps(resource["type"] for resource in plan["resources"])


def check_caps(
    in_use: Mapping[str, int],
    needed: Mapping[str, int],
    already_ours: Mapping[str, int] | None = None,
    caps: Mapping[str, int] = CAPS,
) -> list[str]:
    """Problems, empty when the stack fits. `already_ours` is what this stack holds today (an
    update replaces it rather than adding to it)."""
    ours = already_ours or {}
    problems = []
    for kind, cap in caps.items():
        after = in_use.get(kind, 0) - ours.get(kind, 0) + needed.get(kind, 0)
        if after > cap:
            problems.append(
                f"{kind.replace('_', ' ')}: {in_use.get(kind, 0)} in use + {needed.get(kind, 0)} needed "
                f"> account cap {cap}; run `airgate stack sweep` or destroy an idle pr stack"
            )
    return problems


# --- the guard and sweep ------------------------------------------------------------------------


@dataclass(frozen=True)
class StackFacts:
    """What the workspace tells about one stack."""

    name: str
    tags: Mapping[str, str]
    protected_config: bool = False
    """The stack file marks it protected (prod, or `protect: true`)."""
    protected_resources: int = 0
    """Resources with `protect` set in the stack's state."""


def destroy_refusal(facts: StackFacts) -> str | None:
    """Why this path must not destroy the stack, or None. Every condition is a separate lock."""
    if not is_ephemeral_name(facts.name):
        return f"{facts.name!r} is not an ephemeral pr-<n> stack; this path destroys only those"
    if facts.tags.get(TAG_EPHEMERAL) != "true":
        return f"{facts.name!r} has no {TAG_EPHEMERAL}=true tag, so it was not made by `airgate stack create`"
    if facts.tags.get(TAG_PROTECTED, "false") != "false" or facts.protected_config:
        return f"{facts.name!r} is marked protected; protected stacks are never destroyed by this path"
    if facts.protected_resources:
        return f"{facts.name!r} holds {facts.protected_resources} protected resource(s); refusing to destroy"
    return None


def expiry(tags: Mapping[str, str]) -> dt.datetime | None:
    raw = tags.get(TAG_EXPIRES)
    if raw is None:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class SweepDecision:
    name: str
    action: str
    """destroy | keep | skip"""
    reason: str


def sweep_decisions(stacks: Iterable[StackFacts], now: dt.datetime) -> list[SweepDecision]:
    decisions = []
    for facts in sorted(stacks, key=lambda f: f.name):
        if not is_ephemeral_name(facts.name) or facts.tags.get(TAG_EPHEMERAL) != "true":
            decisions.append(SweepDecision(facts.name, "skip", "not an ephemeral stack"))
            continue
        refusal = destroy_refusal(facts)
        if refusal is not None:
            decisions.append(SweepDecision(facts.name, "skip", refusal))
            continue
        expires = expiry(facts.tags)
        if expires is None:
            decisions.append(SweepDecision(facts.name, "skip", f"no readable {TAG_EXPIRES} tag"))
        elif expires <= now:
            decisions.append(SweepDecision(facts.name, "destroy", f"expired at {format_time(expires)}"))
        else:
            decisions.append(SweepDecision(facts.name, "keep", f"expires at {format_time(expires)}"))
    return decisions
