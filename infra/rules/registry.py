"""The rules. Each is a pure function of a plan view and the rule config; `RULES` fixes their order.

Rule ids are API: CI output, the policy pack and people's muscle memory use them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

from infra.plan.format import PlanDocument
from infra.rules.grants import GRANT_RULES
from infra.rules.model import Finding, Rule, RuleConfig, Thresholds
from infra.rules.view import (
    SECRET_MASK,
    UNKNOWN,
    PlanView,
    known,
)

SECRET_NAME = re.compile(r"(secret|token|password|passwd|api[-_]?key|credential|private[-_]?key)", re.I)
SECRET_JSON_KEY = re.compile(r"(secret|password|passwd|api[-_]?key|private[-_]?key|token)$", re.I)
SECRET_VALUE = re.compile(
    r"(-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."  # a JWT
    r"|\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|://[^/\s:@]+:[^/\s@]+@)"  # credentials in a URL
)
PUBLIC_SERVICE_TYPES = ("LoadBalancer", "NodePort")


def _finding(rule: str, severity: str, message: str, fix: str, **where: str | None) -> Finding:
    assert severity in ("error", "warning")
    return Finding(rule, severity, message, fix, where.get("resource"), where.get("gateway"))  # type: ignore[arg-type]


# --- access-in-prod -----------------------------------------------------------------------------


def access_in_prod(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """Every route of every prod gateway is behind a Cloudflare Access app, and no side door
    (workers.dev) reaches the Worker around it."""
    if not view.is_prod:
        return
    rule = "access-in-prod"
    for gateway, facts in view.gateways.items():
        if facts.behind_access is None:
            continue  # a preview cannot tell yet; the plan after it will (never a false mandatory)
        if not facts.hosts:
            yield _finding(
                rule,
                "error",
                f"gateway {gateway!r} has no custom domain or route, so nothing shows it is behind Access",
                "expose the gateway on a hostname of the zone with an Access application covering it",
                gateway=gateway,
            )
            continue
        if facts.behind_access:
            continue
        for host in facts.hosts:
            uncovered = view.uncovered_routes(host, facts.routes)
            if not uncovered:
                continue
            yield _finding(
                rule,
                "error",
                f"{host} (gateway {gateway!r}) is reachable without Cloudflare Access on route(s) "
                f"{', '.join(sorted(uncovered))}",
                "set behind_access: true and auth: access for the gateway; an Access application must "
                "cover the whole hostname",
                gateway=gateway,
            )
    for resource in view.of_kind("WorkersScriptSubdomain", "WorkerScriptSubdomain"):
        if resource.inputs.get("enabled") is True:
            yield _finding(
                rule,
                "error",
                "the Worker is also served on workers.dev, which Access does not guard",
                "remove the workers.dev subdomain (enabled: false) for prod Workers",
                resource=resource.name,
                gateway=resource.gateway,
            )


# --- no-bypass-in-prod --------------------------------------------------------------------------


def _decisions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("decision"), str):
            yield node["decision"]
        for value in node.values():
            yield from _decisions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _decisions(item)


def no_bypass_in_prod(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """`bypass` switches Access off for whoever matches; prod never does that. Elsewhere it warns."""
    for resource in view.resources:
        if "Access" not in resource.kind:
            continue
        if "bypass" in _decisions(resource.inputs):
            yield _finding(
                "no-bypass-in-prod",
                "error" if view.is_prod else "warning",
                f"Access decision 'bypass' lets requests through without identity ({view.environment})",
                "use decision allow (people) or non_identity (service tokens) instead of bypass",
                resource=resource.name,
                gateway=resource.gateway,
            )


# --- service-token-duration ---------------------------------------------------------------------


def service_token_duration(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """Service tokens expire, within the configured bound, so a leaked one dies on its own."""
    rule = "service-token-duration"
    limit = config.max_service_token_hours
    for token in view.of_kind("ZeroTrustAccessServiceToken", "AccessServiceToken"):
        duration = token.inputs.get("duration")
        fix = f"set duration to at most {limit}h on the service token and rotate by bumping rotation.version"
        if duration in (None, ""):
            yield _finding(
                rule,
                "error",
                "service token has no explicit duration (the provider default may change)",
                fix,
                resource=token.name,
            )
            continue
        if duration == UNKNOWN:
            continue
        match = re.fullmatch(r"([0-9]+)h", str(duration))
        if match is None:
            yield _finding(
                rule, "error", f"service token duration {duration!r} is unbounded", fix, resource=token.name
            )
        elif int(match.group(1)) > limit:
            yield _finding(
                rule,
                "error",
                f"service token lives {match.group(1)}h, more than the allowed {limit}h",
                fix,
                resource=token.name,
            )


# --- no-plaintext-secret ------------------------------------------------------------------------


def _looks_secret(value: Any) -> bool:
    return isinstance(value, str) and value != SECRET_MASK and SECRET_VALUE.search(value) is not None


def _json_secret_keys(text: str) -> list[str]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return []
    found: list[str] = []

    def walk(node: Any, trail: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{trail}.{key}" if trail else str(key)
                if SECRET_JSON_KEY.search(str(key)) and isinstance(value, str) and value:
                    found.append(here)
                walk(value, here)
        elif isinstance(node, list):
            for item in node:
                walk(item, trail)

    walk(parsed, "")
    return found


def _env_literals(node: Any) -> Iterator[tuple[str, str]]:
    """`{name: X, value: "literal"}` pairs anywhere (container env, helm values)."""
    if isinstance(node, dict):
        name, value = node.get("name"), node.get("value")
        if isinstance(name, str) and isinstance(value, str) and set(node) <= {"name", "value"}:
            yield name, value
        for item in node.values():
            yield from _env_literals(item)
    elif isinstance(node, list):
        for item in node:
            yield from _env_literals(item)


def no_plaintext_secret(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """A secret never travels as a plain-text binding, JSON var, ConfigMap entry or env literal."""
    rule = "no-plaintext-secret"
    fix = "bind it as secret_text from a Pulumi secret (`{secret: key}` in the stack), or a k8s Secret"
    for script in view.of_kind("WorkersScript", "WorkerScript"):
        for binding in view.bindings(script):
            kind, name = binding.get("type"), str(binding.get("name", ""))
            if kind not in ("plain_text", "json"):
                continue
            value = binding.get("text") if kind == "plain_text" else binding.get("json")
            if not known(value):
                continue  # unknown at preview, or masked: nothing to judge
            reasons: list[str] = []
            if SECRET_NAME.search(name) and value not in (None, "", SECRET_MASK):
                reasons.append("its name says it is a secret")
            if _looks_secret(value):
                reasons.append("its value looks like a credential")
            if kind == "json" and isinstance(value, str):
                reasons += [f"JSON key {key!r} holds a secret" for key in _json_secret_keys(value)]
            if reasons:
                yield _finding(
                    rule,
                    "error",
                    f"binding {name} is {kind}, but {'; '.join(reasons)}",
                    fix,
                    resource=script.name,
                    gateway=script.gateway,
                )
    for resource in view.resources:
        if not resource.type.startswith("kubernetes:") or resource.kind == "Secret":
            continue
        if resource.kind == "ConfigMap":
            for key, value in sorted((resource.inputs.get("data") or {}).items()):
                if known(value) and ((SECRET_NAME.search(str(key)) and value) or _looks_secret(value)):
                    yield _finding(
                        rule,
                        "error",
                        f"ConfigMap key {key} holds what looks like a secret",
                        fix,
                        resource=resource.name,
                    )
        for name, value in _env_literals(resource.inputs):
            if not known(value):
                continue
            if (SECRET_NAME.search(name) and value and value != SECRET_MASK) or _looks_secret(value):
                yield _finding(
                    rule,
                    "error",
                    f"environment variable {name} is set to a literal that looks like a secret",
                    "use valueFrom.secretKeyRef (or the chart's `secret:` list) instead of value",
                    resource=resource.name,
                )


# --- compatibility-date -------------------------------------------------------------------------


def compatibility_date(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """Workers pin a compatibility date that is neither missing, in the future, nor too old."""
    rule = "compatibility-date"
    oldest = config.today - dt.timedelta(days=config.max_compatibility_age_days)
    for script in view.of_kind("WorkersScript", "WorkerScript"):
        raw = script.inputs.get("compatibilityDate")
        where = {"resource": script.name, "gateway": script.gateway}
        if not known(raw):
            continue
        if not raw:
            yield _finding(
                rule,
                "error",
                "the Worker has no compatibility date, so runtime behaviour changes under it",
                "set compatibility_date in the stack (YYYY-MM-DD)",
                **where,
            )
            continue
        try:
            date = dt.date.fromisoformat(str(raw))
        except ValueError:
            yield _finding(
                rule,
                "error",
                f"compatibility date {raw!r} is not YYYY-MM-DD",
                "write it as YYYY-MM-DD",
                **where,
            )
            continue
        if date > config.today:
            yield _finding(
                rule,
                "error",
                f"compatibility date {raw} is in the future; Cloudflare refuses the upload",
                f"use {config.today.isoformat()} or earlier",
                **where,
            )
        elif date < oldest:
            yield _finding(
                rule,
                "error",
                f"compatibility date {raw} is older than {config.max_compatibility_age_days} days",
                f"move compatibility_date to a recent date (on or after {oldest.isoformat()}) and test",
                **where,
            )


# --- airflow-no-public-ingress ------------------------------------------------------------------


def _public_helm_values(node: Any, trail: str = "") -> Iterator[str]:
    """Paths in chart values that open a public door: an enabled ingress or a public Service type."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{trail}.{key}" if trail else str(key)
            if key == "ingress" and '"enabled": true' in json.dumps(value, sort_keys=True):
                yield here
                continue
            if key == "service" and isinstance(value, dict) and value.get("type") in PUBLIC_SERVICE_TYPES:
                yield f"{here}.type={value['type']}"
            yield from _public_helm_values(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from _public_helm_values(item, trail)


def airflow_no_public_ingress(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """Airflow's API is reached only through the tunnel, by the trigger Worker: nothing in the
    cluster opens a public door (LoadBalancer/NodePort Services, external IPs, Ingresses, Gateway
    API routes, chart values that enable them), and no tunnel hostname serves Airflow without Access."""
    rule = "airflow-no-public-ingress"
    fix = "keep Airflow on ClusterIP and reach it only through the Cloudflare Tunnel"
    for resource in view.resources:
        module, kind = resource.type.rsplit(":", 1)[0], resource.kind
        if not resource.type.startswith("kubernetes:"):
            continue
        spec = resource.inputs.get("spec") if isinstance(resource.inputs.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        if kind == "Service" and (spec.get("type") in PUBLIC_SERVICE_TYPES or spec.get("externalIPs")):
            exposure = spec.get("type") if spec.get("type") in PUBLIC_SERVICE_TYPES else "externalIPs"
            yield _finding(
                rule,
                "error",
                f"Service is exposed outside the cluster ({exposure})",
                fix,
                resource=resource.name,
            )
        elif kind == "Ingress" or (
            "gateway.networking.k8s.io" in module and kind in ("Gateway", "HTTPRoute", "GRPCRoute")
        ):
            yield _finding(
                rule,
                "error",
                f"{kind} publishes cluster services to the network",
                fix,
                resource=resource.name,
            )
        elif "helm.sh" in module:
            for path in _public_helm_values(resource.inputs.get("values") or {}):
                yield _finding(
                    rule,
                    "error",
                    f"chart values open a public door: {path}",
                    fix + " (disable the chart's ingress, keep service types ClusterIP)",
                    resource=resource.name,
                )
    for tunnel in view.of_kind("ZeroTrustTunnelCloudflaredConfig", "TunnelConfig"):
        configuration = tunnel.inputs.get("config") or {}
        ingresses = configuration.get("ingresses") or configuration.get("ingressRules") or []
        for entry in ingresses if isinstance(ingresses, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("hostname"), str):
                continue
            if not view.access_decidable([entry["hostname"]]):
                continue  # a preview cannot tell yet
            service = str(entry.get("service", ""))
            if "airflow" not in (service + entry["hostname"]).lower():
                continue
            if view.access_covers(entry["hostname"].lower()) is None:
                yield _finding(
                    rule,
                    "error",
                    f"tunnel hostname {entry['hostname']} serves Airflow ({service}) without Access in front",
                    "put an Access application (service-token policy for the trigger Worker) on it, "
                    "or route it privately",
                    resource=tunnel.name,
                )


# --- durable-object-deletion --------------------------------------------------------------------


def _deleted_classes(migrations: Any) -> list[str]:
    if not isinstance(migrations, dict):
        return []
    deleted = list(migrations.get("deletedClasses") or [])
    for step in migrations.get("steps") or []:
        if isinstance(step, dict):
            deleted += list(step.get("deletedClasses") or [])
    return [str(name) for name in deleted]


def _flagged_in_plan(view: PlanView) -> set[str]:
    """Classes whose deletion the stack itself flagged (`allow_deleting_classes: true`), when the plan
    document carries the migration history."""
    flagged: set[str] = set()
    for step in view.document.get("durable_object_migrations") or []:
        if isinstance(step, dict) and step.get("allow_deleting_classes"):
            flagged |= {str(name) for name in step.get("deleted_classes") or []}
    return flagged


def durable_object_deletion(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """Deleting a Durable Object class destroys its stored state; it needs an explicit flag."""
    allowed = set(config.allow_deleting_classes) | _flagged_in_plan(view)
    for script in view.of_kind("WorkersScript", "WorkerScript"):
        for name in _deleted_classes(script.inputs.get("migrations")):
            if name in allowed or "*" in allowed or not known(name):
                continue
            yield _finding(
                "durable-object-deletion",
                "error",
                f"migration deletes Durable Object class {name} and all of its stored state",
                "set allow_deleting_classes: true on that migration step (and "
                f"--allow-deleting-class {name} / policy config allow_deleting_classes) if intended",
                resource=script.name,
                gateway=script.gateway,
            )


# --- prod-data-protected ------------------------------------------------------------------------


def prod_data_protected(view: PlanView, config: Thresholds) -> Iterator[Finding]:
    """In a protected stack, what holds data (KV, Workers with Durable Objects) cannot be deleted by
    accident: `protect` is on."""
    if not view.protected:
        return
    for resource in view.resources:
        holds_data = resource.kind in ("WorkersKvNamespace", "D1Database", "R2Bucket") or (
            resource.kind == "WorkersScript" and view.durable_object_classes(resource)
        )
        if holds_data and not resource.protect:
            yield _finding(
                "prod-data-protected",
                "error",
                f"{resource.kind} holds data but is not protected in a protected stack",
                "create it with ResourceOptions(protect=True)",
                resource=resource.name,
                gateway=resource.gateway,
            )


RULES: tuple[Rule, ...] = (
    Rule("access-in-prod", "Every prod gateway route is behind Cloudflare Access", access_in_prod),
    Rule("no-bypass-in-prod", "No Access 'bypass' decision in prod", no_bypass_in_prod),
    Rule("service-token-duration", "Service tokens have a bounded duration", service_token_duration),
    Rule("no-plaintext-secret", "No secret-looking plain-text binding", no_plaintext_secret),
    Rule("compatibility-date", "Compatibility date set and recent", compatibility_date),
    Rule("airflow-no-public-ingress", "No public ingress to Airflow", airflow_no_public_ingress),
    Rule(
        "durable-object-deletion",
        "Durable Object classes are never deleted without a flag",
        durable_object_deletion,
    ),
    Rule("prod-data-protected", "Data-holding resources are protected", prod_data_protected),
    *GRANT_RULES,
)


def rule_ids() -> list[str]:
    return [rule.id for rule in RULES]


def evaluate(
    document: PlanDocument | PlanView, config: RuleConfig | None = None, only: set[str] | None = None
) -> list[Finding]:
    """Every finding of every rule (or of `only`), errors first, in a stable order. Thresholds are
    the run's (`config`) over the stack's own `review:` section. A caller that already has the
    document's view passes it, so its indexes are built once."""
    view = document if isinstance(document, PlanView) else PlanView(document)
    chosen = (config or RuleConfig()).resolve(view.review)
    findings = [
        finding for rule in RULES if only is None or rule.id in only for finding in rule.check(view, chosen)
    ]
    findings += [
        Finding(
            "review-exceptions",
            "warning",
            f"review.exceptions names {name!r}, which is no rule, so it excuses nothing",
            f"use one of: {', '.join(rule_ids())}",
        )
        for name in sorted(set(chosen.exceptions) - set(rule_ids()))
    ]
    return sorted(
        set(findings), key=lambda f: (f.severity != "error", f.rule, f.gateway or "", f.resource or "")
    )
