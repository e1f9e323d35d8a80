"""The DAGs' shared gateway-call logic: W3C traceparent, which answers are retried, Retry-After."""

from __future__ import annotations

import datetime as dt
import email.utils
import re

import requests
import tenacity
from airflow.exceptions import AirflowException
from airgate_http import (
    gateway_retry_args,
    is_retryable,
    retry_after_seconds,
    status_of,
    traceparent,
)
from hypothesis import given, settings
from hypothesis import strategies as st

TRACEPARENT = re.compile(r"\A00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-01\Z")
names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30)


@settings(max_examples=100, deadline=None)
@given(dag=names, run=names, task=names, attempt=st.integers(1, 50), index=st.integers(-1, 500))
def test_traceparent_is_valid_w3c_and_shared_by_the_run(
    dag: str, run: str, task: str, attempt: int, index: int
) -> None:
    header = traceparent(dag, run, task, attempt, index)
    assert TRACEPARENT.match(header)
    other_task = traceparent(dag, run, task + "x", attempt, index)
    assert header.split("-")[1] == other_task.split("-")[1]  # one trace per DAG run
    assert header.split("-")[2] != other_task.split("-")[2]  # one span per task
    assert header == traceparent(dag, run, task, attempt, index)  # derived, not random


def test_runs_get_different_traces() -> None:
    assert traceparent("d", "run-1", "t").split("-")[1] != traceparent("d", "run-2", "t").split("-")[1]


def hook_error(status: int, headers: dict[str, str] | None = None) -> Exception:
    """What HttpHook.check_response raises: AirflowException from inside `except HTTPError`."""
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    try:
        try:
            response.raise_for_status()
        except requests.HTTPError:
            raise AirflowException(f"{status}:x")  # noqa: B904 - mirrors the hook exactly
    except AirflowException as error:
        return error
    raise AssertionError("unreachable")


@settings(deadline=None)
@given(st.integers(400, 599))
def test_only_429_and_gateway_errors_are_retried(status: int) -> None:
    error = hook_error(status)
    assert status_of(error) == status
    assert is_retryable(error) == (status in (429, 502, 503, 504))


def test_errors_without_a_response_are_not_retried() -> None:
    assert not is_retryable(ValueError("boom"))


@given(st.integers(0, 10**6))
def test_retry_after_seconds(seconds: int) -> None:
    assert retry_after_seconds(str(seconds)) == float(seconds)


@given(st.integers(0, 86_400))
def test_retry_after_http_date(offset: int) -> None:
    now = dt.datetime(2026, 11, 29, 4, 0, tzinfo=dt.UTC)
    when = email.utils.format_datetime(now + dt.timedelta(seconds=offset), usegmt=True)
    assert retry_after_seconds(when, now=now) == float(offset)


def test_retry_after_garbage_or_past_dates() -> None:
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    now = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    assert retry_after_seconds("Sat, 01 Jan 2000 00:00:00 GMT", now=now) == 0.0


def wait_for(error: Exception, attempt: int = 1, **kwargs: float) -> float:
    args = gateway_retry_args(**kwargs)  # type: ignore[arg-type]
    state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, error.__traceback__))
    return float(args["wait"](state))


def test_wait_honours_retry_after_within_the_cap() -> None:
    assert wait_for(hook_error(429, {"Retry-After": "7"})) == 7.0
    assert wait_for(hook_error(503, {"Retry-After": "7200"}), max_seconds=60) == 60.0


@given(st.integers(1, 12))
def test_wait_backs_off_exponentially_without_retry_after(attempt: int) -> None:
    delay = wait_for(hook_error(503), attempt=attempt, base_seconds=1.0, max_seconds=60.0)
    expected = min(60.0, 2.0 ** (attempt - 1))
    assert expected / 2 <= delay <= expected
