"""What `airgate up` prints when the environment is up: URLs, identities, a copy-paste token
command, then the sample DAG run and its decision lines."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from infra.config.loader import LoadedStack
from infra.local import demo
from infra.local.plan import LocalPlan, machine_clients, test_users
from infra.local.processes import Supervisor


def print_summary(loaded: LoadedStack, plan: LocalPlan, console: Console) -> None:
    table = Table(title="airgate local environment")
    table.add_column("what")
    table.add_column("where")
    for name in sorted(loaded.config.gateways):
        gateway = loaded.config.gateways[name]
        table.add_row(f"gateway {name} ({gateway.kind})", plan.gateway_url(name))
    table.add_row("OpenID provider", plan.issuer)
    table.add_row(
        "Airflow UI / API",
        f"{plan.airflow_url}  (sign in as a human test user, e.g. data-engineer-person)",
    )
    table.add_row("state, logs", str(plan.state_dir))
    console.print(table)

    clients = Table(title="machine identities (OAuth2 client credentials)")
    clients.add_column("client id")
    clients.add_column("roles")
    for client in machine_clients(loaded.config):
        roles = sorted(name for name, role in loaded.config.roles.items() if client in role.oidc_clients)
        clients.add_row(client, ", ".join(roles))
    console.print(clients)
    people = ", ".join(str(user["account_id"]) for user in test_users(loaded.config))
    console.print(f"Human test users (sign in on the provider's development pages): {people}", markup=False)
    console.print(
        "Get a token and call a gateway (any client id above, or --user <test user>):", markup=False
    )
    console.print(
        "  TOKEN=$(.venv/bin/airgate token --client ai-agent)\n"
        f'  curl -s -H "Authorization: Bearer $TOKEN" {plan.gateway_url("warehouse")}/v1/tables/revenue',
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def print_demo(loaded: LoadedStack, plan: LocalPlan, console: Console) -> demo.DemoRun:
    trigger = next(name for name, g in sorted(loaded.config.gateways.items()) if g.kind == "dag_trigger")
    secret = plan.secrets[f"oidc-client-{demo.SAMPLE_CLIENT}"]
    token = demo.client_token(plan, demo.SAMPLE_CLIENT, secret)
    with console.status(f"triggering {demo.SAMPLE_DAG} through the {trigger} gateway"):
        run = demo.trigger_and_wait(plan, token, trigger)
    verdict = "succeeded" if run.state == "success" else f"ended {run.state}"
    console.print(f"sample DAG {verdict}: {run.dag_id} run {run.run_id} in {run.seconds:.1f}s", markup=False)
    denied = demo.denied_attempt(plan, token, trigger, run)
    console.print(
        f"and a refused one: {demo.SAMPLE_CLIENT} asking for {demo.UNGRANTED_DAG} got {denied.status}",
        markup=False,
    )
    log_file = Supervisor(plan.state_dir).log_file("gateways")
    demo.wait_for_line(log_file, denied.headers.get("x-request-id", ""))
    records = demo.decision_lines(log_file)
    related = demo.run_trace_ids(run)
    shown = [r for r in records if demo.trace_id(r) in related]
    console.print(f"Decision lines of this run ({len(shown)}, correlated by traceparent):", markup=False)
    for record in shown:
        console.print(
            f"  {demo.trace_id(record)[:8]}  {record.get('gateway', ''):<10} {record.get('method', ''):<5}"
            f" {record.get('path', '')}  {record.get('subject', '')} -> {record.get('decision', '')}"
            f" ({record.get('reason', '')}, {record.get('status', '')})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.print("Every line in full: airgate logs gateways", markup=False)
    return run
