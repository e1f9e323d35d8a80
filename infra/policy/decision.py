"""The whole decision a gateway makes for one request once the caller's roles are known: path
normalisation, the route (the reference evaluator in `evaluate.py`), and for a DAG-trigger gateway
the DAG grant and the `conf` schemas that apply.

It mirrors, step for step, the Worker v2 pipeline (worker_templates/lib/gateway.js): the method
check (`invalid_method`), `normalisePath` (lib/path.js), `evaluate`, and for a DAG-trigger gateway
`check` then the handler's operation check (lib/dag_trigger.js). `airgate can-i` and
`airgate verify` answer with it; the unit tests hold it to the Worker's own code on generated
requests, so the two cannot drift silently.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

from infra.config.sections import HTTP_METHODS
from infra.policy.evaluate import evaluate

Outcome = Literal[
    "allow",
    "no_route",
    "method_not_allowed",
    "role_not_allowed",
    "invalid_path",
    "invalid_method",
    "dag_not_granted",
    "run_not_owned",
    "token_subject_missing",
]
STATUS: dict[str, int] = {
    "allow": 200,
    "no_route": 404,
    "method_not_allowed": 405,
    "role_not_allowed": 403,
    "invalid_path": 400,
    "invalid_method": 400,
    "dag_not_granted": 403,
    "run_not_owned": 403,
    "token_subject_missing": 401,
}
"""The status the decision endpoint reports per decision (its contract with `airgate verify`)."""

_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOT_WITH_PARAMETERS = re.compile(r"^\.\.?;")
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
"""The URL parser drops ASCII tab and newline anywhere in a URL (WHATWG URL, basic URL parser)."""
_NEEDS_ENCODING = re.compile(r'[\x00-\x20"#<>?`{}\x7f-\U0010ffff]')


def _ada_leaves_dots(path: str) -> bool:
    r"""True where the runtime's URL parser (ada-url, in workerd and Node) takes its fast path and
    hands the path over with its dot segments unresolved, unlike the WHATWG spec.

    ada's `parse_prepared_path`: a path whose only special characters are dots (no `%`, no `\`,
    nothing to percent-encode) and that does not begin with `.` is resolved only if its FIRST `/.`
    is followed by `.`, `/` or the end; so `/a/.x/..` and `/a/.;y/..` stay as written. path.js then
    resolves `..` itself, and refuses a `.;`/`..;` segment, on exactly what the parser left.
    """
    body = path[1:]
    if "." not in body or "%" in body or "\\" in body or _NEEDS_ENCODING.search(body):
        return False
    if body.startswith("."):
        return False
    slashdot = body.find("/.")
    if slashdot == -1:
        return True
    after = body[slashdot + 2 : slashdot + 3]
    return after not in ("", ".", "/")


class InvalidPath(ValueError):
    """The Worker answers 400 invalid_path for this path, before any identity or route check."""


def _decode(piece: str) -> str:
    """decodeURIComponent: every `%` starts two hex digits, and the bytes are strict UTF-8."""
    if _BAD_PERCENT.search(piece):
        raise InvalidPath("malformed percent-encoding")
    try:
        return unquote_to_bytes(piece).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath("malformed percent-encoding") from None


def url_pathname(raw: str) -> str:
    """The path a URL parser hands the Worker (`URL.pathname`) for a path as a user writes it.

    Models the WHATWG URL parser for http(s) URLs (https://url.spec.whatwg.org/#concept-basic-url-parser):
    trailing C0 controls and spaces are dropped, tab and newline vanish, `?`/`#` end the path, `\\`
    counts as `/`, and dot segments (`.`, `..`, and their `%2e` spellings) are resolved on the
    still-encoded segments, keeping empty ones. Percent-encoding it adds is undone by decoding.
    """
    raw = raw.rstrip("".join(map(chr, range(0x21)))).translate(_TAB_NEWLINE)
    raw = raw.split("#", 1)[0].split("?", 1)[0]
    if raw.startswith("/") and _ada_leaves_dots(raw):
        return raw
    raw = raw.replace("\\", "/")
    if not raw.startswith("/"):
        raise InvalidPath("path must start with '/'")
    pieces = raw[1:].split("/")
    out: list[str] = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        lowered = piece.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        elif lowered in (".", "%2e"):
            if last:
                out.append("")
        else:
            out.append(piece)
    return "/" + "/".join(out)


def normalise_path(raw: str) -> tuple[str, ...]:
    """Decoded segments of a path as the Worker matches them: the URL parser's part (`url_pathname`),
    then path.js `normalisePath` step for step."""
    out: list[str] = []
    for piece in url_pathname(raw).split("/"):
        if piece == "":
            continue
        if _ENCODED_SEPARATOR.search(piece):
            raise InvalidPath("encoded separator in a segment")
        segment = _decode(piece)
        if _CONTROL.search(segment) or "\\" in segment or "/" in segment:
            raise InvalidPath("control character or separator in a segment")
        if _DOT_WITH_PARAMETERS.match(segment):
            raise InvalidPath("dot segment with parameters")
        if segment == ".":
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return tuple(out)


@dataclass(frozen=True)
class Decision:
    decision: Outcome
    segments: tuple[str, ...] | None
    route: dict[str, Any] | None = None
    """The compiled route document that matched (name, pattern, methods, roles, rate_limit)."""
    detail: str = ""
    dag_id: str | None = None
    conf_schemas: tuple[Any, ...] = field(default=())
    """For a DAG trigger: the `conf` schema of each granting role (None: any conf)."""

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def status(self) -> int:
        return STATUS[self.decision]


def _params(segments: list[str], path: tuple[str, ...]) -> dict[str, str]:
    return {s[1:-1]: path[i] for i, s in enumerate(segments) if s.startswith("{")}


def run_owner_prefix(subject: str) -> str:
    """dag_trigger.js `ownerOf`: the run-id prefix of runs this subject triggered."""
    return f"airgate__{hashlib.sha256(subject.encode()).hexdigest()[:16]}__"


def decide(
    policy: dict[str, Any],
    method: str,
    raw_path: str,
    roles: frozenset[str],
    subject: str | None = None,
) -> Decision:
    """What the gateway enforcing `policy` decides for `method raw_path` from a caller holding `roles`.

    `subject` (the caller's identity.subject) decides whether a DAG run read is the caller's own;
    without it (a bare role) that check is left out and the decision's detail says so.
    The Worker checks the method before the path (gateway.js `handle`)."""
    if method not in HTTP_METHODS:
        return Decision("invalid_method", None, detail=f"{method!r} is not one of {', '.join(HTTP_METHODS)}")
    try:
        path = normalise_path(raw_path)
    except InvalidPath as error:
        return Decision("invalid_path", None, detail=str(error))
    verdict = evaluate(policy, method, path, roles)
    route = next((r for r in policy["routes"] if r["name"] == verdict.route), None)
    if verdict.decision != "allow" or route is None or policy.get("kind") != "dag_trigger":
        return Decision(verdict.decision, path, route)
    return _dag_step(policy, method, path, roles, route, subject)


def _dag_step(
    policy: dict[str, Any],
    method: str,
    path: tuple[str, ...],
    roles: frozenset[str],
    route: dict[str, Any],
    subject: str | None,
) -> Decision:
    """dag_trigger.js: `check` (the DAG grant; a run read must be the caller's own unless a held
    grant says `read_others_runs`), then the handler: POST …/{dag_id}/runs triggers, GET/HEAD
    …/runs/{run_id} reads, anything else is no_route."""
    params = _params(route["segments"], path)
    dag_id, run_id = params.get("dag_id"), params.get("run_id")
    if dag_id is None:
        return Decision("no_route", path, route, "the DAG-trigger gateway has no such operation")
    grants = policy["dags"].get(dag_id, {})
    held = sorted(role for role in roles if role in grants)
    if not held:
        return Decision("dag_not_granted", path, route, dag_id=dag_id)
    detail = ""
    if run_id is not None and not any(grants[role]["read_others_runs"] for role in held):
        if subject is None:
            detail = "if the run is the caller's own (no held grant reads others' runs)"
        elif not run_id.startswith(run_owner_prefix(subject)):
            return Decision(
                "run_not_owned",
                path,
                route,
                f"run {run_id} is not {subject}'s own (its id does not start "
                f"{run_owner_prefix(subject)}) and no held grant reads others' runs",
                dag_id=dag_id,
            )
    triggers = run_id is None and method == "POST"
    reads = run_id is not None and method in ("GET", "HEAD")
    if not (triggers or reads):
        return Decision("no_route", path, route, "the DAG-trigger gateway has no such operation")
    schemas = tuple(grants[role]["conf_schema"] for role in held) if triggers else ()
    return Decision("allow", path, route, detail, dag_id=dag_id, conf_schemas=schemas)
