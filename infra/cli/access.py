"""`airgate can-i` and `airgate verify`: could this identity do that, and does the running edge
enforce what was reviewed? Neither imports Pulumi."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.cli.app import (
    StackOption,
    StacksDirOption,
    StateDirOption,
    app,
    console,
    errors,
    load_or_exit,
)


def _asker(role: str | None, client: str | None, user: str | None, claims: Path | None) -> Any:
    from infra.policy.can_i import Asker

    given = [(k, v) for k, v in (("role", role), ("client", client), ("user", user)) if v is not None]
    if claims is not None:
        given.append(("claims", str(claims)))
    if len(given) != 1:
        errors.print("name exactly one identity: --as ROLE, --client ID, --user EMAIL or --claims FILE")
        raise typer.Exit(code=2)
    kind, value = given[0]
    if kind != "claims":
        return Asker(kind, value)  # type: ignore[arg-type]
    try:
        document = json.loads(Path(value).read_text())
    except (OSError, ValueError) as error:
        errors.print(f"--claims {value}: cannot read a JSON object ({error})", markup=False)
        raise typer.Exit(code=2) from None
    if not isinstance(document, dict):
        errors.print(f"--claims {value}: the claims must be a JSON object", markup=False)
        raise typer.Exit(code=2)
    return Asker("claims", value, document)


def _rate(limit: dict[str, int] | None) -> str:
    return f"{limit['requests']} per {limit['per_seconds']} s per caller" if limit else "-"


def _print_answer(answer: dict[str, Any]) -> None:
    verdict = "allow" if answer["allowed"] else f"deny ({answer['decision']}, {answer['status']})"
    lines = [
        f"{verdict}: {answer['method']} {answer['path']} at gateway {answer['gateway']}",
        f"  identity        {answer['identity']['kind']} {answer['identity']['value']}"
        f" -> roles {', '.join(answer['roles']) or '(none)'}",
        f"  route           {answer['route'] or '-'}  {answer['pattern'] or ''}".rstrip(),
        f"  reason          {answer['reason']}",
        f"  rate limit      {_rate(answer['rate_limit'])}",
    ]
    for schema in answer.get("conf_schemas", []):
        shown = "any conf" if schema is None else json.dumps(schema, sort_keys=True)
        lines.append(f"  conf schema     {shown}")
    lines.append(f"  policy version  {answer['policy_version']}")
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_grants(listing: dict[str, Any]) -> None:
    who = listing["identity"]
    console.print(f"{who['kind']} {who['value']} may:", markup=False, highlight=False)
    anything = False
    for gateway in listing["gateways"]:
        if not gateway["routes"] and not gateway["dags"]:
            continue
        anything = True
        console.print(
            f"gateway {gateway['gateway']} ({gateway['hostname']}, policy {gateway['policy_version']})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        for route in gateway["routes"]:
            console.print(
                f"  {','.join(route['methods']):<18} {route['pattern']:<32} route {route['route']}, "
                f"{_rate(route['rate_limit'])}, via {', '.join(route['via'])}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        for dag in gateway["dags"]:
            conf = "any conf" if None in dag["conf_schemas"] else "conf checked against the grant's schema"
            console.print(
                f"  DAG {dag['dag_id']}: trigger and read runs, {conf}", markup=False, highlight=False
            )
    if not anything:
        console.print("  nothing at any gateway", markup=False)


def _local_ports(state_dir: Path | None) -> Any:
    """The running local environment's ports (`ports.json` in the state folder), read only."""
    from infra.cli.local import _state
    from infra.policy.can_i import LocalPorts

    path = _state(state_dir) / "ports.json"
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        others = {
            int(saved["airflow"]): "the local Airflow",
            int(saved["oidc"]): "the local OpenID provider",
            **{int(port): f"the sample upstream of {name}" for name, port in saved["upstreams"].items()},
        }
        return LocalPorts({int(port): name for name, port in saved["gateways"].items()}, others)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        errors.print(
            f"{path}: not the ports `airgate up` writes ({error}); run `airgate up`",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=2) from None


@app.command("can-i")
def can_i(
    stack: StackOption,
    method: Annotated[str | None, typer.Argument(help="HTTP method, e.g. GET")] = None,
    url: Annotated[
        str | None,
        typer.Argument(
            help="https://<gateway host>/path, a local gateway's http://127.0.0.1:<port>/path, or a path "
            "(the one gateway with a route for it, or --gateway)"
        ),
    ] = None,
    role: Annotated[str | None, typer.Option("--as", help="Ask for a role")] = None,
    client: Annotated[
        str | None,
        typer.Option("--client", help="Ask for an OIDC client id (oidc gateways) / service token (access)"),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Ask for a person by email (no IdP groups)")
    ] = None,
    claims: Annotated[
        Path | None, typer.Option("--claims", help="Ask for a token's claims (a JSON file)")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option("--gateway", "-g", help="The gateway, when URL is a path")
    ] = None,
    list_all: Annotated[bool, typer.Option("--list", help="Print everything the identity can do")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
    state_dir: StateDirOption = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Could this identity make this request? Exit 0 allow, 1 deny, 2 error. Offline, no Pulumi.

    Answers from the compiled policy the gateway enforces (route, reason, DAG grant and conf schema,
    rate limit, policy version). `--list` prints everything the identity can do.
    """
    from infra.policy.can_i import AskError, ask, grants, is_local_url

    asker = _asker(role, client, user, claims)
    if list_all == (method is not None):
        errors.print("give METHOD and URL, or --list (not both)", markup=False)
        raise typer.Exit(code=2)
    if method is not None and url is None:
        errors.print("give a URL after the method", markup=False)
        raise typer.Exit(code=2)
    loaded = load_or_exit(stack, stacks_dir)
    try:
        if list_all:
            listing = grants(loaded.config, asker)
            print(json.dumps(listing, indent=2)) if as_json else _print_grants(listing)
            return
        assert method is not None and url is not None
        local = _local_ports(state_dir) if gateway is None and is_local_url(url) else None
        answer = ask(loaded.config, asker, method, url, gateway, local=local)
    except AskError as error:
        # One line, never wrapped: it names URLs and hosts people copy from it.
        errors.print(str(error), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    if as_json:
        print(json.dumps(answer, indent=2))
    else:
        _print_answer(answer)
    raise typer.Exit(code=0 if answer["allowed"] else 1)


def _deployed_inputs(loaded: Any, urls: list[str] | None, credentials: Path | None) -> tuple[Any, Any]:
    stack = loaded.config
    found = {name: f"https://{gateway.hostname}" for name, gateway in stack.gateways.items()}
    for pair in urls or []:
        name, _, url = pair.partition("=")
        if name not in found or not url:
            errors.print(f"--url {pair!r}: write <gateway>=<URL> for one of {', '.join(sorted(found))}")
            raise typer.Exit(code=2)
        found[name] = url
    if credentials is None:
        errors.print("a deployed stack needs --credentials FILE: {identity: {header: value}}", markup=False)
        raise typer.Exit(code=2)
    try:
        given = json.loads(credentials.read_text())
        assert isinstance(given, dict) and all(isinstance(v, dict) for v in given.values())
    except (OSError, ValueError, AssertionError):
        errors.print(f"--credentials {credentials}: expected a JSON object {{identity: {{header: value}}}}")
        raise typer.Exit(code=2) from None
    return found, given


@app.command()
def verify(
    stack: Annotated[
        str, typer.Option("--stack", "-s", help="The stack whose running edge to probe")
    ] = "local",
    url: Annotated[
        list[str] | None,
        typer.Option("--url", help="<gateway>=<base URL> (deployed; default https://<hostname>)"),
    ] = None,
    credentials: Annotated[
        Path | None,
        typer.Option("--credentials", help="Deployed: JSON {machine identity: {header: value}}"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    state_dir: StateDirOption = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Probe a running edge (the local environment by default) through each gateway's decision
    endpoint: every machine identity x (gateway, route, method), plus unauthenticated probes, compared
    with the compiled policy, and every gateway's policy version. Exit 1 on any mismatch."""
    loaded = load_or_exit(stack, stacks_dir)
    if loaded.config.environment == "local":
        report = _verify_local(loaded, state_dir)
    else:
        report = _verify_deployed(loaded, url, credentials)
    _print_report(loaded.name, report, as_json)
    if not report.passed:
        raise typer.Exit(code=1)


def _verify_local(loaded: Any, state_dir: Path | None) -> Any:
    from infra.cli.local import _state
    from infra.local.environment import prepare
    from infra.verify.local import verify_local

    state = _state(state_dir)
    if not (state / "ports.json").exists():
        errors.print(f"no local environment in {state}: run `airgate up` first", markup=False)
        raise typer.Exit(code=2)
    try:
        # Read what `up` saved, creating nothing: new secrets would not match the running environment.
        return verify_local(loaded, prepare(loaded, state, create=False))
    except (OSError, RuntimeError) as failure:
        errors.print(f"cannot verify the local environment: {failure} (is it up?)", markup=False)
        raise typer.Exit(code=2) from None


def _verify_deployed(loaded: Any, urls: list[str] | None, credentials: Path | None) -> Any:
    from infra.verify.probes import Uncoverable, machine_identities
    from infra.verify.run import verify_edge

    found, given = _deployed_inputs(loaded, urls, credentials)
    known = machine_identities(loaded.config)
    unknown = sorted(set(given) - set(known))
    if unknown:
        errors.print(f"--credentials names {', '.join(unknown)}; machine identities: {', '.join(known)}")
        raise typer.Exit(code=2)
    missing = [
        Uncoverable(identity, "*", "*", "no credential given") for identity in known if identity not in given
    ]
    return verify_edge(loaded.config, found, given, missing)


def _print_report(stack: str, report: Any, as_json: bool) -> None:
    from infra.verify.summary import report_document, summary_lines

    if as_json:
        print(json.dumps(report_document(stack, report), indent=2))
        return
    for line in summary_lines(stack, report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
