"""DecisionLogpush: ships the stack's Worker decision lines (Workers trace events) to the
destination its `LogpushPlan` names, filtered to this stack's scripts only.

A storage destination carries the ownership challenge token Cloudflare wrote into it (a Pulumi
secret): without it the job is refused with "incorrect ownership challenge (1002)"
(cloudflare/terraform-provider-cloudflare#1019).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from infra.stack_plan import LOGPUSH_FIELDS, LogpushPlan


@dataclass(frozen=True)
class DecisionLogpushArgs:
    plan: LogpushPlan
    ownership_challenge: pulumi.Output[str] | None


class DecisionLogpush(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: DecisionLogpushArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("airgate:edge:DecisionLogpush", name, None, opts)
        plan = args.plan
        job = cloudflare.LogpushJob(
            f"{name}-job",
            account_id=plan.account_id,
            name=plan.job_name,
            dataset="workers_trace_events",
            destination_conf=plan.destination_conf,
            ownership_challenge=args.ownership_challenge,
            enabled=True,
            filter=plan.filter,
            output_options={
                "field_names": list(LOGPUSH_FIELDS),
                "output_type": "ndjson",
                "timestamp_format": "rfc3339",
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"job_id": job.id})
