"""Sends the probes to each gateway's decision endpoint and compares the answers with the compiled
policy. The endpoint (`GET /.airgate/decision?method=M&path=P`, the caller's own credentials)
answers the decision the gateway would make without forwarding or spending a rate-limit token:
`{"gateway", "policy_version", "subject", "roles", "method", "path", "decision", "status",
"route", "rate_limit", "dag_id"?}`, and 401 with `WWW-Authenticate: Bearer error="invalid_token"`
to a caller without a valid credential."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from infra.config.model import StackConfig
from infra.policy.compiler import compile_stack
from infra.policy.decision import run_owner_prefix
from infra.verify.probes import SAMPLE_SEGMENT, Probe, Uncoverable, plan_probes, uncoverable

DECISION_PATH = "/.airgate/decision"


@dataclass(frozen=True)
class Outcome:
    probe: Probe
    ok: bool
    got: str
    got_route: str | None = None
    policy_version: str | None = None
    note: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    uncoverable: list[Uncoverable] = field(default_factory=list)
    expected_versions: dict[str, str] = field(default_factory=dict)

    @property
    def versions(self) -> dict[str, set[str]]:
        """gateway → every policy version its answers named"""
        seen: dict[str, set[str]] = {}
        for outcome in self.outcomes:
            if outcome.policy_version is not None:
                seen.setdefault(outcome.probe.gateway, set()).add(outcome.policy_version)
        return seen

    @property
    def verified(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def mismatched(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def version_problems(self) -> list[str]:
        problems = []
        for gateway, expected in sorted(self.expected_versions.items()):
            seen = self.versions.get(gateway, set())
            if seen and seen != {expected}:
                problems.append(
                    f"gateway {gateway} runs policy {', '.join(sorted(seen))}, expected {expected}"
                )
        return problems

    @property
    def passed(self) -> bool:
        return not self.mismatched and not self.version_problems and bool(self.outcomes)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def _get(url: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One GET, redirects not followed (an Access login redirect is an answer, not a detour)."""
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 - gateway URLs we were given
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def owned_run_id(subject: str) -> str:
    """A run id the caller owns. The trigger gateway names each run it starts
    `airgate__<sha256(subject)[:16]>__<suffix>` and lets a caller read only runs with its own
    prefix (worker_templates/lib/dag_trigger.js, `ownerOf`), so a run-read probe must ask about one."""
    return run_owner_prefix(subject) + "verify"


def probe_once(probe: Probe, base_url: str, headers: Mapping[str, str]) -> Outcome:
    query = urllib.parse.urlencode({"method": probe.method, "path": probe.path})
    try:
        status, answer_headers, body = _get(f"{base_url.rstrip('/')}{DECISION_PATH}?{query}", headers)
    except OSError as error:
        return Outcome(probe, False, "unreachable", note=str(error))
    if probe.expected == "unauthenticated":
        challenge = answer_headers.get("www-authenticate", "")
        ok = status == 401 and challenge.lower().startswith("bearer") and "invalid_token" in challenge
        if probe.behind_access and not ok:
            # Access answers a caller without a session or service token itself: a redirect to the
            # team's login page, or 403 (https://developers.cloudflare.com/cloudflare-one/policies/access/).
            login = urllib.parse.urlsplit(answer_headers.get("location", "")).hostname or ""
            ok = (status in (301, 302, 303, 307) and login.endswith(".cloudflareaccess.com")) or status == 403
        refused = "unauthenticated" if ok else f"HTTP {status}"
        return Outcome(probe, ok, refused, note=challenge or answer_headers.get("location", ""))
    try:
        answer = json.loads(body) if status == 200 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return Outcome(probe, False, f"HTTP {status}", note=body[:200].decode(errors="replace"))
    got, route = str(answer.get("decision")), answer.get("route")
    subject = answer.get("subject")
    sample_run = "/" + SAMPLE_SEGMENT
    if got == "run_not_owned" and isinstance(subject, str) and probe.path.endswith(sample_run):
        # The sample run id is nobody's: ask again about a run this caller would own.
        owned = probe.path.removesuffix(sample_run) + "/" + owned_run_id(subject)
        return probe_once(replace(probe, path=owned), base_url, headers)
    version = answer.get("policy_version")
    ok = got == probe.expected and route == probe.expected_route and answer.get("gateway") == probe.gateway
    return Outcome(probe, ok, got, route if isinstance(route, str) else None, str(version), "")


def run_probes(
    probes: list[Probe],
    urls: Mapping[str, str],
    credentials: Mapping[str, Mapping[str, str]],
    expected_versions: Mapping[str, str],
    uncovered: list[Uncoverable],
    workers: int = 8,
) -> Report:
    """`credentials` maps a machine identity to the headers that present it (e.g. Authorization)."""

    def send(probe: Probe) -> Outcome:
        headers = credentials[probe.identity] if probe.identity is not None else {}
        return probe_once(probe, urls[probe.gateway], headers)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(send, probes))
    return Report(outcomes, uncovered, expected_versions=dict(expected_versions))


def verify_edge(
    stack: StackConfig,
    urls: Mapping[str, str],
    credentials: Mapping[str, Mapping[str, str]],
    also_uncoverable: Sequence[Uncoverable] = (),
) -> Report:
    """`airgate verify` for any edge, local or deployed: compile the stack's policies, probe every
    identity in `credentials` at `urls`, and report against the compiled policy versions."""
    policies = compile_stack(stack)
    return run_probes(
        plan_probes(stack, policies, sorted(credentials)),
        urls,
        credentials,
        {name: policy.version for name, policy in policies.items()},
        uncoverable(stack, policies) + list(also_uncoverable),
    )
