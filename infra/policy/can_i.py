"""`airgate can-i`: could this identity make this request, and what may it do at all?

Answers from the compiled policy of each gateway (the very documents the Worker enforces, see
compiler.py) with the reference decision (decision.py). No Pulumi, no network: it only needs the
stack file. An identity is a role (`--as`), a client (`--client`: an OIDC client id at an `oidc`
gateway, a service token's name at an `access` gateway), a person's email (`--user`; their IdP
groups are unknown offline) or a file of token claims (`--claims`).

The request names its gateway as people paste it: a deployed URL by its host, a URL of the local
environment (`http://127.0.0.1:<port>/...`) by its port in the ports `airgate up` saved, a bare path
by the one gateway with a route for it (several are listed, never guessed between), or `--gateway`.

Identities are mapped exactly as the Worker maps verified claims (identity.py): a `--user` stands
for a token whose IdP vouches for the email (`email_verified: true` at an `oidc` gateway), a
`--client` for a client-credentials token (`client_id` equal to `sub`, RFC 9068 §2.2) or an Access
service token; `--claims` are taken as they are, so an unverified email or an `azp` grants nothing
and claims with no usable subject get the Worker's 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from infra.config.model import StackConfig
from infra.policy.compiler import CompiledPolicy, compile_stack
from infra.policy.decision import Decision, InvalidPath, decide, normalise_path
from infra.policy.evaluate import matches
from infra.policy.identity import Identity, SubjectMissing, identify

IdentityKind = Literal["role", "client", "user", "claims"]


class AskError(ValueError):
    """A question can-i cannot answer (unknown role, host, ...): exit 2 with this message."""


@dataclass(frozen=True)
class Asker:
    kind: IdentityKind
    value: str
    claims: Mapping[str, Any] | None = None


def claims_of(mode: str, asker: Asker) -> Mapping[str, Any]:
    """The verified claims the Worker would see for `asker` at a gateway authenticating with `mode`."""
    if asker.kind == "client":
        if mode == "access":
            return {"common_name": asker.value}
        return {"sub": asker.value, "client_id": asker.value}
    if asker.kind == "user":
        # The person's IdP subject is unknown offline; their email stands in for it.
        return {"sub": asker.value, "email": asker.value, "email_verified": True}
    return asker.claims or {}


def identity_at(stack: StackConfig, policy: CompiledPolicy, asker: Asker) -> Identity:
    """Who `asker` is at this gateway, mapped exactly as the Worker maps token claims. A role asks
    for itself (subject unknown). Raises `SubjectMissing` where the Worker answers 401."""
    if asker.kind == "role":
        return Identity("", (), (asker.value,))
    mode = stack.gateway_auth(stack.gateways[policy.gateway])
    token_names = {name: name for name in stack.service_tokens}
    return identify(
        claims_of(mode, asker), mode, policy.document, stack.identity.oidc.roles_claim, token_names
    )


def roles_at(stack: StackConfig, policy: CompiledPolicy, asker: Asker) -> tuple[str, ...]:
    """The roles `asker` holds at this gateway (none where the Worker refuses the token)."""
    try:
        return identity_at(stack, policy, asker).roles
    except SubjectMissing:
        return ()


def check_asker(stack: StackConfig, asker: Asker) -> None:
    if asker.kind == "role" and asker.value not in stack.roles:
        raise AskError(f"no role {asker.value!r}; the stack's roles: {', '.join(sorted(stack.roles))}")
    if asker.kind == "client":
        known = {c for role in stack.roles.values() for c in (*role.oidc_clients, *role.service_tokens)}
        if asker.value not in known:
            raise AskError(
                f"no client {asker.value!r} in any role; known clients: {', '.join(sorted(known)) or 'none'}"
            )


LOOPBACK_HOSTS = ("localhost", "::1")


@dataclass(frozen=True)
class LocalPorts:
    """Where the running local environment listens (`airgate up` saves it in `ports.json`), so a
    URL copied from its output (`http://127.0.0.1:<port>/...`) names its gateway."""

    gateways: Mapping[int, str]
    """port -> gateway name"""
    others: Mapping[int, str]
    """port -> what else listens there (Airflow, the OpenID provider, a sample upstream)"""


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def is_local_url(url: str) -> bool:
    """A URL of this machine (the local environment's), placed by its port rather than its host."""
    host = urlsplit(url).hostname
    return host is not None and _is_loopback(host.lower())


def _local_gateway(stack: StackConfig, url: str, port: int | None, local: LocalPorts | None) -> str:
    if local is None:
        raise AskError(
            f"{url!r} is a local address, and no local environment's ports are known: run `airgate up` "
            "(it saves them in .state/local/ports.json), or name the gateway with --gateway"
        )
    listening = ", ".join(f"{name} (http://127.0.0.1:{p})" for p, name in sorted(local.gateways.items()))
    if port is None or port not in local.gateways:
        what = local.others.get(port) if port is not None else None
        where = f"port {port} is {what}, not a gateway" if what else f"no local gateway listens on {url!r}"
        raise AskError(f"{where}; the local gateways: {listening}")
    name = local.gateways[port]
    if stack.environment != "local":
        hint = (
            f"https://{stack.gateways[name].hostname}/..."
            if name in stack.gateways
            else f"one of its hosts ({', '.join(sorted(g.hostname for g in stack.gateways.values()))})"
        )
        raise AskError(
            f"{url!r} is the local environment's gateway {name!r}, and this stack is "
            f"{stack.environment}: ask the local stack, or give this stack's URL, {hint}"
        )
    if name not in stack.gateways:
        raise AskError(
            f"port {port} is the local environment's gateway {name!r}, which this stack does not have; "
            f"its gateways: {', '.join(sorted(stack.gateways))}"
        )
    return name


def serving(policies: Mapping[str, CompiledPolicy], raw_path: str) -> list[str]:
    """The gateways with a route whose pattern matches `raw_path` (any method)."""
    segments = normalise_path(raw_path)
    return sorted(
        name
        for name, compiled in policies.items()
        if any(matches(route["segments"], segments) for route in compiled.document["routes"])
    )


def _gateway_of_path(stack: StackConfig, raw_path: str, policies: Mapping[str, CompiledPolicy]) -> str:
    hosts = ", ".join(f"{n} ({g.hostname})" for n, g in sorted(stack.gateways.items()))
    try:
        found = serving(policies, raw_path)
    except InvalidPath as error:
        raise AskError(f"{raw_path!r}: every gateway refuses this path ({error})") from None
    if len(found) == 1:
        return found[0]
    if not found:
        raise AskError(f"no gateway has a route for {raw_path!r}; the stack's gateways: {hosts}")
    several = ", ".join(f"{n} ({stack.gateways[n].hostname})" for n in found)
    raise AskError(
        f"{raw_path!r} is served by several gateways: {several}; give a full URL or --gateway NAME"
    )


def gateway_for(
    stack: StackConfig,
    url: str,
    gateway: str | None,
    policies: Mapping[str, CompiledPolicy] | None = None,
    local: LocalPorts | None = None,
) -> tuple[str, str]:
    """(gateway name, raw path) for a deployed URL (its host names the gateway), a local URL (its port,
    through `local`), a bare path (the one gateway with a route for it) or a path with --gateway."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if gateway is not None:
        if gateway not in stack.gateways:
            raise AskError(
                f"no gateway {gateway!r}; the stack's gateways: {', '.join(sorted(stack.gateways))}"
            )
        return gateway, path
    if not parts.hostname:
        if not url.startswith("/"):
            raise AskError(
                f"{url!r} names no host: give a full URL (https://<gateway host>/path), a path (/...) "
                "or --gateway"
            )
        return _gateway_of_path(stack, path, policies or compile_stack(stack)), path
    host = parts.hostname.lower()
    if _is_loopback(host):
        try:
            port = parts.port
        except ValueError:
            port = None
        return _local_gateway(stack, url, port, local), path
    for name, candidate in sorted(stack.gateways.items()):
        if candidate.hostname.lower() == host:
            return name, path
    hosts = ", ".join(f"{g.hostname} ({n})" for n, g in sorted(stack.gateways.items()))
    raise AskError(f"no gateway serves {host!r}; the stack's hosts: {hosts}")


def _rate(route: Mapping[str, Any] | None) -> dict[str, int] | None:
    return dict(route["rate_limit"]) if route else None


def _reason(decision: Decision, policy: Mapping[str, Any], method: str, roles: tuple[str, ...]) -> str:
    route = decision.route
    held = ", ".join(roles) or "no role"
    match decision.decision:
        case "invalid_path":
            return f"the gateway refuses the path itself: {decision.detail}"
        case "invalid_method":
            return decision.detail
        case "no_route" if route is not None:
            return f"route {route['name']} matched, but {decision.detail}"
        case "no_route":
            return "no route's pattern matches this path"
        case "method_not_allowed":
            methods = sorted({m for r in policy["routes"] for m in r["methods"] if _covers(r, decision)})
            return f"the routes for this path allow {', '.join(methods)}, not {method}"
        case "role_not_allowed":
            assert route is not None
            return f"route {route['name']} grants {', '.join(route['roles'])}; the identity holds {held}"
        case "token_subject_missing":
            return f"the gateway refuses the token (401): {decision.detail}"
        case "run_not_owned":
            return decision.detail
        case "dag_not_granted":
            granted = sorted(policy["dags"].get(decision.dag_id or "", {}))
            return (
                f"route {route['name'] if route else '?'} matched, but no role held ({held}) has a grant "
                f"for DAG {decision.dag_id} (granted to: {', '.join(granted) or 'nobody'})"
            )
    assert route is not None
    shared = ", ".join(r for r in roles if r in route["roles"])
    if decision.dag_id is None:
        return f"route {route['name']} grants {method} to {shared}"
    if not decision.conf_schemas:
        owned = f", {decision.detail}" if decision.detail else ""
        return f"route {route['name']} grants {method} to {shared}; DAG {decision.dag_id} is granted{owned}"
    if None in decision.conf_schemas:
        return f"route {route['name']} grants {method} to {shared}; DAG {decision.dag_id} granted, any conf"
    return (
        f"route {route['name']} grants {method} to {shared}; DAG {decision.dag_id} granted "
        "if conf matches the grant's schema"
    )


def _covers(route: Mapping[str, Any], decision: Decision) -> bool:
    return decision.segments is not None and matches(route["segments"], decision.segments)


def ask(
    stack: StackConfig,
    asker: Asker,
    method: str,
    url: str,
    gateway: str | None = None,
    policies: Mapping[str, CompiledPolicy] | None = None,
    local: LocalPorts | None = None,
) -> dict[str, Any]:
    """The answer as a JSON-ready document (what `--json` prints)."""
    check_asker(stack, asker)
    policies = policies or compile_stack(stack)
    name, raw_path = gateway_for(stack, url, gateway, policies, local)
    compiled = policies[name]
    method = method.upper()
    identity: Identity | None = None
    missing: SubjectMissing | None = None
    try:
        identity = identity_at(stack, compiled, asker)
    except SubjectMissing as error:
        missing = error
    roles = identity.roles if identity is not None else ()
    subject = (identity.subject or None) if identity is not None else None
    decision = decide(compiled.document, method, raw_path, frozenset(roles), subject)
    # The Worker checks method and path before it authenticates (gateway.js `handle`): a token
    # without a subject is refused only once both pass.
    if missing is not None and decision.decision not in ("invalid_method", "invalid_path"):
        decision = Decision("token_subject_missing", decision.segments, detail=str(missing))
    route = decision.route
    answer: dict[str, Any] = {
        "allowed": decision.allowed,
        "decision": decision.decision,
        "status": decision.status,
        "gateway": name,
        "policy_version": compiled.version,
        "method": method,
        "path": raw_path,
        "identity": {"kind": asker.kind, "value": asker.value},
        "roles": list(roles),
        "route": route["name"] if route else None,
        "pattern": route["pattern"] if route else None,
        "reason": _reason(decision, compiled.document, method, roles),
        "rate_limit": _rate(route) if decision.allowed else None,
    }
    if decision.dag_id is not None:
        answer["dag_id"] = decision.dag_id
        answer["conf_schemas"] = list(decision.conf_schemas)
    return answer


def grants(
    stack: StackConfig, asker: Asker, policies: Mapping[str, CompiledPolicy] | None = None
) -> dict[str, Any]:
    """Everything `asker` may do, per gateway: routes with methods and rate limits, and DAG grants."""
    check_asker(stack, asker)
    compiled_all = policies or compile_stack(stack)
    gateways = []
    for name, compiled in sorted(compiled_all.items()):
        roles = roles_at(stack, compiled, asker)
        held = set(roles)
        routes = [
            {
                "route": route["name"],
                "pattern": route["pattern"],
                "methods": route["methods"],
                "rate_limit": route["rate_limit"],
                "via": sorted(held.intersection(route["roles"])),
            }
            for route in compiled.document["routes"]
            if held.intersection(route["roles"])
        ]
        dags = [
            {"dag_id": dag, "conf_schemas": [grant[r]["conf_schema"] for r in sorted(held & set(grant))]}
            for dag, grant in sorted(compiled.document["dags"].items())
            if held & set(grant)
        ]
        gateways.append(
            {
                "gateway": name,
                "hostname": stack.gateways[name].hostname,
                "policy_version": compiled.version,
                "roles": list(roles),
                "routes": routes,
                "dags": dags,
            }
        )
    return {"identity": {"kind": asker.kind, "value": asker.value}, "gateways": gateways}
