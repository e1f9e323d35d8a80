"""How a verify report reads: a summary line, then every mismatch and version problem."""

from __future__ import annotations

from typing import Any

from infra.verify.run import Report


def summary_lines(stack: str, report: Report) -> list[str]:
    versions = ", ".join(
        f"{gateway} {'/'.join(sorted(report.versions.get(gateway, set()))) or '?'}"
        for gateway in sorted(report.expected_versions)
    )
    lines = [
        f"verify {stack}: {len(report.verified)} verified, {len(report.mismatched)} mismatched, "
        f"{len(report.uncoverable)} not coverable (human-only roles); policy versions: {versions}"
    ]
    for outcome in report.mismatched[:50]:
        probe = outcome.probe
        who = probe.identity or "(no credential)"
        expected = probe.expected + (f" via {probe.expected_route}" if probe.expected_route else "")
        got = outcome.got + (f" via {outcome.got_route}" if outcome.got_route else "")
        lines.append(
            f"  MISMATCH {who} {probe.gateway} {probe.method} {probe.path}: expected {expected}, got {got}"
            + (f" ({outcome.note})" if outcome.note else "")
        )
    if len(report.mismatched) > 50:
        lines.append(f"  ... and {len(report.mismatched) - 50} more (--json lists all)")
    lines += [f"  VERSION {problem}" for problem in report.version_problems]
    for row in report.uncoverable:
        lines.append(f"  not coverable: {row.role} at {row.gateway}/{row.route}: {row.why}")
    return lines


def report_document(stack: str, report: Report) -> dict[str, Any]:
    return {
        "stack": stack,
        "passed": report.passed,
        "verified": len(report.verified),
        "mismatched": [
            {**o.probe.__dict__, "got": o.got, "got_route": o.got_route, "note": o.note}
            for o in report.mismatched
        ],
        "not_coverable": [row.__dict__ for row in report.uncoverable],
        "policy_versions": {g: sorted(v) for g, v in sorted(report.versions.items())},
        "expected_policy_versions": report.expected_versions,
        "version_problems": report.version_problems,
    }
