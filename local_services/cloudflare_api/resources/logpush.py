"""Logpush at account level: jobs, and the ownership challenge a storage destination needs first
(Cloudflare writes a token into a file in the destination; the job must quote it)."""

from __future__ import annotations

import secrets
from typing import Any

from local_services.cloudflare_api.errors import ApiError
from local_services.cloudflare_api.fields import Fields
from local_services.cloudflare_api.request import Answer, Request, whole
from local_services.cloudflare_api.router import account, item, route
from local_services.cloudflare_api.store import State, Store

# Destinations that need an ownership challenge (cloudflare/terraform-provider-cloudflare#1019;
# https://developers.cloudflare.com/logs/logpush/logpush-job/api-configuration/), refused with
# "incorrect ownership challenge" (code 1002) when it is missing or wrong.
STORAGE_SCHEMES = ("s3://", "gs://", "azure://")
WRONG_CHALLENGE = 1002
# No public source names the codes for a malformed Logpush request or an unknown job; 1004 and 1003 stand in.
INVALID = 1004
NOT_FOUND = 1003
# Datasets an account-level job may push (https://developers.cloudflare.com/logs/reference/log-fields/account/).
ACCOUNT_DATASETS = {
    "access_requests",
    "audit_logs",
    "audit_logs_v2",
    "casb_findings",
    "device_posture_results",
    "dns_firewall_logs",
    "email_security_alerts",
    "gateway_dns",
    "gateway_http",
    "gateway_network",
    "magic_ids_detections",
    "network_analytics_logs",
    "sinkhole_http_logs",
    "workers_trace_events",
    "zero_trust_network_sessions",
}


def _bucket(destination: str) -> str:
    return destination.split("?")[0]


def _challenge_ok(state: State, request: Request, destination: str, challenge: str | None) -> bool:
    expected = account(state, request)["ownership_challenges"].get(_bucket(destination))
    return expected is not None and challenge == expected


@route("POST", "/accounts/{account_id}/logpush/ownership")
def request_challenge(request: Request, store: Store) -> Answer:
    destination = Fields(request.json_object(INVALID), INVALID, "ownership").need_text("destination_conf")

    def apply(state: State) -> Answer:
        token = secrets.token_hex(64)
        account(state, request)["ownership_challenges"][_bucket(destination)] = token
        # The token goes into a file in the destination; the answer names only the file.
        filename = (
            f"{_bucket(destination).split('://', 1)[-1]}/ownership-challenge-{secrets.token_hex(4)}.txt"
        )
        return Answer({"filename": filename, "message": "", "valid": True})

    return store.change(apply)


@route("POST", "/accounts/{account_id}/logpush/ownership/validate")
def validate_challenge(request: Request, store: Store) -> Answer:
    fields = Fields(request.json_object(INVALID), INVALID, "ownership")
    destination, challenge = fields.need_text("destination_conf"), fields.need_text("ownership_challenge")
    return store.read(lambda state: Answer({"valid": _challenge_ok(state, request, destination, challenge)}))


def _job_fields(body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    fields = Fields(body, INVALID, "logpush job")
    merged = {**(current or {})}
    destination = fields.text("destination_conf") if current else fields.need_text("destination_conf")
    dataset = fields.text("dataset") if current else fields.need_text("dataset")
    if dataset is not None:
        if current and dataset != current["dataset"]:
            raise fields.refuse("a job's dataset cannot change")
        if dataset not in ACCOUNT_DATASETS:
            raise fields.refuse(f"dataset {dataset} is not an account-level dataset")
        merged["dataset"] = dataset
    if destination is not None:
        merged["destination_conf"] = destination
    for key, value in (
        ("name", fields.text("name")),
        ("enabled", fields.flag("enabled")),
        ("filter", fields.text("filter", empty=True)),
        ("output_options", fields.mapping("output_options")),
        ("frequency", fields.text("frequency")),
        ("kind", fields.text("kind", empty=True)),
        ("max_upload_bytes", fields.number("max_upload_bytes")),
        ("max_upload_records", fields.number("max_upload_records")),
        ("max_upload_interval_seconds", fields.number("max_upload_interval_seconds")),
    ):
        if value is not None:
            merged[key] = value
    merged.setdefault("enabled", False)
    merged["_challenge"] = fields.text("ownership_challenge")
    return merged


def _check(state: State, request: Request, job: dict[str, Any], current: dict[str, Any] | None) -> None:
    destination = job["destination_conf"]
    moved = current is None or current["destination_conf"] != destination
    if (
        destination.startswith(STORAGE_SCHEMES)
        and moved
        and not _challenge_ok(state, request, destination, job["_challenge"])
    ):
        # Storage destinations need the token Cloudflare wrote into them
        # (cloudflare/terraform-provider-cloudflare#1019: "incorrect ownership challenge (1002)").
        raise ApiError(400, WRONG_CHALLENGE, "incorrect ownership challenge")


def _answer(job_id: str, job: dict[str, Any]) -> dict[str, Any]:
    public = {k: v for k, v in job.items() if not k.startswith("_")}
    return {
        "id": int(job_id),
        "last_complete": None,
        "last_error": None,
        "error_message": None,
        **public,
    }


@route("POST", "/accounts/{account_id}/logpush/jobs")
def create(request: Request, store: Store) -> Answer:
    job = _job_fields(request.json_object(INVALID), None)

    def apply(state: State) -> Answer:
        home = account(state, request)
        _check(state, request, job, None)
        job_id = str(home["next_logpush_job_id"])
        home["next_logpush_job_id"] += 1
        home["logpush_jobs"][job_id] = {k: v for k, v in job.items() if k != "_challenge"}
        return Answer(_answer(job_id, job))

    return store.change(apply)


def _job(state: State, request: Request) -> dict[str, Any]:
    return item(
        account(state, request)["logpush_jobs"], request.params["job_id"], 404, NOT_FOUND, "Job not found"
    )


@route("PUT", "/accounts/{account_id}/logpush/jobs/{job_id}")
def update(request: Request, store: Store) -> Answer:
    body = request.json_object(INVALID)

    def apply(state: State) -> Answer:
        current = _job(state, request)
        job = _job_fields(body, current)
        _check(state, request, job, current)
        stored = {k: v for k, v in job.items() if k != "_challenge"}
        account(state, request)["logpush_jobs"][request.params["job_id"]] = stored
        return Answer(_answer(request.params["job_id"], stored))

    return store.change(apply)


@route("GET", "/accounts/{account_id}/logpush/jobs")
def list_jobs(request: Request, store: Store) -> Answer:
    return store.read(
        lambda state: whole(
            [
                _answer(i, j)
                for i, j in sorted(account(state, request)["logpush_jobs"].items(), key=lambda p: int(p[0]))
            ]
        )
    )


@route("GET", "/accounts/{account_id}/logpush/jobs/{job_id}")
def get(request: Request, store: Store) -> Answer:
    return store.read(lambda state: Answer(_answer(request.params["job_id"], _job(state, request))))


@route("DELETE", "/accounts/{account_id}/logpush/jobs/{job_id}")
def delete(request: Request, store: Store) -> Answer:
    def apply(state: State) -> Answer:
        _job(state, request)
        del account(state, request)["logpush_jobs"][request.params["job_id"]]
        return Answer({"id": int(request.params["job_id"])})

    return store.change(apply)
