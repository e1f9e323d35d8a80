"""Rules over what the policy allows (not how the infrastructure is built): the grants, routes,
gateway switches and upstreams a security reviewer asks about.

Each reads the compiled policies and resources through `PlanView`, so `airgate lint` and the
CrossGuard pack see the same facts. A subject a rule names (`gateway/route`, `gateway/role/dag`,
...) can be let through by a named exception in the stack's `review.exceptions`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from infra.rules.model import Finding, Rule, Thresholds
from infra.rules.view import PlanView, known, literal_prefix, within

DESTRUCTIVE_METHODS = ("DELETE",)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _error(
    rule: str, message: str, fix: str, gateway: str | None = None, resource: str | None = None
) -> Finding:
    return Finding(rule, "error", message, fix, resource, gateway)


def _exception_fix(rule: str, subject: str) -> str:
    return f"or name it under review.exceptions.{rule}: [{subject}] in the stack if it is intended"


def _segments(route: dict[str, Any]) -> list[str]:
    return [s for s in str(route.get("pattern", "/")).strip("/").split("/") if s]


def is_admin_route(route: dict[str, Any], config: Thresholds) -> bool:
    return any(segment in config.admin_path_segments for segment in _segments(route))


def wildcard_grants_in_prod(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """In prod a route names what it opens: no pattern whose first segment is already a wildcard."""
    rule = "no-wildcard-in-prod"
    if not view.is_prod:
        return
    for gateway, facts in sorted(view.gateways.items()):
        for route in facts.routes:
            pattern = str(route.get("pattern", ""))
            subject = f"{gateway}/{route.get('name')}"
            if pattern == "/" or literal_prefix(pattern) != "/" or config.excepted(rule, subject):
                continue
            yield _error(
                rule,
                f"route {route.get('name')} ({pattern}) on {gateway} grants "
                f"{', '.join(route.get('roles') or [])} every path of the gateway",
                "start the path with a literal segment (e.g. /v1/tables/**) " + _exception_fix(rule, subject),
                gateway=gateway,
            )


def destructive_data_routes(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """DELETE on a data route (a proxy route that is not an admin route) needs a named exception."""
    rule = "no-destructive-data-routes"
    for gateway, facts in sorted(view.gateways.items()):
        if facts.kind != "proxy":
            continue
        for route in facts.routes:
            subject = f"{gateway}/{route.get('name')}"
            methods = [m for m in route.get("methods") or [] if m in DESTRUCTIVE_METHODS]
            if not methods or is_admin_route(route, config) or config.excepted(rule, subject):
                continue
            yield _error(
                rule,
                f"route {route.get('name')} ({route.get('pattern')}) on {gateway} allows "
                f"{' '.join(methods)} on data",
                "drop the method, move it under an admin route " + _exception_fix(rule, subject),
                gateway=gateway,
            )


def prod_dag_conf_schema(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """A prod DAG grant pins the `conf` it accepts, so a caller cannot steer a run with any input."""
    rule = "prod-dag-conf-schema"
    if not view.is_prod:
        return
    for gateway, policy in sorted(view.policies.items()):
        for dag, roles in sorted((policy.get("dags") or {}).items()):
            for role, grant in sorted((roles or {}).items()):
                subject = f"{gateway}/{role}/{dag}"
                if not isinstance(grant, dict) or grant.get("conf_schema") is not None:
                    continue
                if config.excepted(rule, subject):
                    continue
                yield _error(
                    rule,
                    f"role {role} may trigger DAG {dag} on {gateway} with any conf (no schema)",
                    "add conf_schema to the dag_grants entry " + _exception_fix(rule, subject),
                    gateway=gateway,
                )


def machine_roles_on_admin_routes(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """Admin routes are for people: a role held only by service tokens / OIDC clients may not call them."""
    rule = "no-machine-admin"
    for gateway, facts in sorted(view.gateways.items()):
        for route in facts.routes:
            if not is_admin_route(route, config):
                continue
            for role in route.get("roles") or []:
                subject = f"{gateway}/{route.get('name')}/{role}"
                if view.is_machine_role(str(role)) and not config.excepted(rule, subject):
                    yield _error(
                        rule,
                        f"machine role {role} may call admin route {route.get('name')} "
                        f"({route.get('pattern')}) on {gateway}",
                        "grant admin routes to people's roles only " + _exception_fix(rule, subject),
                        gateway=gateway,
                    )


def fail_open_in_prod(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """In prod a Durable Object outage denies (rate limits, idempotency) instead of letting all through."""
    rule = "no-fail-open-in-prod"
    if not view.is_prod:
        return
    for gateway, facts in sorted(view.gateways.items()):
        if facts.limits.get("durable_objects_fail_open") is True and not config.excepted(rule, gateway):
            yield _error(
                rule,
                f"gateway {gateway} lets every request through when its Durable Objects fail",
                "set durable_objects_fail_open: false " + _exception_fix(rule, gateway),
                gateway=gateway,
            )


def prod_body_limit(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """A prod gateway's body limit stays under the threshold (`review.max_prod_body_bytes`)."""
    rule = "prod-body-limit"
    if not view.is_prod:
        return
    for gateway, facts in sorted(view.gateways.items()):
        size = facts.limits.get("max_body_bytes")
        if isinstance(size, int) and size > config.max_prod_body_bytes and not config.excepted(rule, gateway):
            yield _error(
                rule,
                f"gateway {gateway} accepts bodies of {size} bytes, above {config.max_prod_body_bytes}",
                "lower limits.max_body_bytes, or raise review.max_prod_body_bytes for this stack",
                gateway=gateway,
            )


def upstream_allowed_domains(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """An upstream lives in the stack's zone or a domain the stack allows: the gateway (and its
    upstream credential) never talks to a host nobody listed."""
    rule = "upstream-allowed-domain"
    domains = set(config.allowed_upstream_domains)
    if view.zone:
        domains.add(view.zone)
    for gateway, facts in sorted(view.gateways.items()):
        host = facts.upstream_host
        if not known(host) or not domains:
            continue
        if view.environment == "local" and host in LOCAL_HOSTS:
            continue
        if any(within(host, domain) for domain in domains) or config.excepted(rule, f"{gateway}/{host}"):
            continue
        credential = " with the upstream credential" if facts.upstream_credential else ""
        yield _error(
            rule,
            f"gateway {gateway} sends requests{credential} to {host}, outside {', '.join(sorted(domains))}",
            "point the upstream into the zone, or add the domain to review.allowed_upstream_domains",
            gateway=gateway,
        )


def prod_logpush(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """Prod keeps its decision lines: a Logpush job exists."""
    rule = "prod-logpush"
    if not view.is_prod or config.excepted(rule, view.stack):
        return
    if not any(True for _ in view.of_kind("LogpushJob")):
        yield _error(
            rule,
            f"prod stack {view.stack} has no Logpush job, so gateway decisions are not kept",
            "add a logpush: section (destination_conf) to the stack",
        )


GRANT_RULES: tuple[Rule, ...] = (
    Rule("no-wildcard-in-prod", "No wildcard-first route patterns in prod", wildcard_grants_in_prod),
    Rule(
        "no-destructive-data-routes",
        "No DELETE on data routes without a named exception",
        destructive_data_routes,
    ),
    Rule("prod-dag-conf-schema", "Prod DAG grants pin a conf schema", prod_dag_conf_schema),
    Rule("no-machine-admin", "No machine roles on admin routes", machine_roles_on_admin_routes),
    Rule("no-fail-open-in-prod", "No fail-open gateways in prod", fail_open_in_prod),
    Rule("prod-body-limit", "Prod body limits stay under the threshold", prod_body_limit),
    Rule("upstream-allowed-domain", "Upstreams live in allowed domains", upstream_allowed_domains),
    Rule("prod-logpush", "Prod has Logpush", prod_logpush),
)
