"""DecisionLogpush: ships the stack's Worker decision lines (Workers trace events) to the
destination the stack names, filtered to this stack's scripts only."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from infra.config.model import StackConfig


@dataclass(frozen=True)
class DecisionLogpushArgs:
    stack_name: str
    stack: StackConfig


class DecisionLogpush(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: DecisionLogpushArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("airgate:edge:DecisionLogpush", name, None, opts)
        assert args.stack.logpush is not None
        script_filter = {
            "where": {
                "key": "ScriptName",
                "operator": "startsWith",
                "value": f"airgate-{args.stack_name}-",
            }
        }
        job = cloudflare.LogpushJob(
            f"{name}-job",
            account_id=args.stack.account_id,
            name=f"{args.stack.logpush.name}-{args.stack_name}",
            dataset="workers_trace_events",
            destination_conf=args.stack.logpush.destination_conf,
            enabled=True,
            filter=json.dumps(script_filter, sort_keys=True, separators=(",", ":")),
            output_options={
                "field_names": ["EventTimestampMs", "Outcome", "ScriptName", "Logs", "Exceptions"],
                "output_type": "ndjson",
                "timestamp_format": "rfc3339",
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"job_id": job.id})
