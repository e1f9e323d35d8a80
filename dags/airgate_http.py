"""Shared by the example DAGs: how a task calls an airgate gateway.

- `traceparent`: a W3C trace context derived from the DAG run and the task, so a run can be followed
  through every gateway Worker's decision log. The trace id is the same for every task of one run; the
  span id differs per task, try and map index. Derived, not random: a retried request keeps its ids.
- `gateway_retry_args()`: `HttpOperator(retry_args=...)`. Gateways answer RFC 9457 problems: 429, 502,
  503 and 504 may succeed later and are retried inside the task, honouring `Retry-After`, else
  exponential backoff; 401, 403, 404 and every other answer fail the task at once. The example DAGs set
  `retries=0` so Airflow's own task retry does not re-send what the gateway refused.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import random
from typing import Any

import tenacity

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
TRACE_FLAGS_SAMPLED = "01"


def _hex(*parts: object, length: int) -> str:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:length]
    # All-zero ids are invalid in W3C trace context; astronomically unlikely, but never emit one.
    return digest if digest.strip("0") else "1".rjust(length, "0")


def traceparent(dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
    trace_id = _hex("trace", dag_id, run_id, length=32)
    span_id = _hex("span", dag_id, run_id, task_id, try_number, map_index, length=16)
    return f"00-{trace_id}-{span_id}-{TRACE_FLAGS_SAMPLED}"


AIRGATE_MACROS = {"airgate_traceparent": traceparent}
"""Pass as the DAG's `user_defined_macros` to use `TRACEPARENT_TEMPLATE` in headers."""

TRACEPARENT_TEMPLATE = (
    "{{ airgate_traceparent(dag.dag_id, run_id, ti.task_id, ti.try_number, ti.map_index) }}"
)


def gateway_headers(**extra: str) -> dict[str, str]:
    """Headers every gateway call carries (templated: rendered when the task runs)."""
    return {"traceparent": TRACEPARENT_TEMPLATE, "Accept": "application/json", **extra}


def response_of(error: BaseException | None) -> Any:
    """The HTTP response behind an HttpHook failure (it raises AirflowException from HTTPError)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        response = getattr(error, "response", None)
        if response is not None and hasattr(response, "status_code"):
            return response
        error = error.__cause__ or error.__context__
    return None


def status_of(error: BaseException | None) -> int | None:
    response = response_of(error)
    return int(response.status_code) if response is not None else None


def is_retryable(error: BaseException) -> bool:
    return status_of(error) in RETRYABLE_STATUSES


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """`Retry-After` as delay-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - current).total_seconds())


class _GatewayWait(tenacity.wait.wait_base):
    def __init__(self, base_seconds: float, max_seconds: float) -> None:
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome is not None else None
        response = response_of(error)
        if response is not None:
            told = retry_after_seconds(response.headers.get("Retry-After"))
            if told is not None:
                return min(told, self.max_seconds)
        backoff = self.base_seconds * 2.0 ** (retry_state.attempt_number - 1)
        return min(self.max_seconds, backoff * (0.5 + random.random() / 2))  # noqa: S311 - jitter


def gateway_retry_args(
    max_attempts: int = 5, base_seconds: float = 1.0, max_seconds: float = 60.0
) -> dict[str, Any]:
    """For `HttpOperator(retry_args=...)`; re-raises the last error once attempts run out."""
    return {
        "retry": tenacity.retry_if_exception(is_retryable),
        "wait": _GatewayWait(base_seconds, max_seconds),
        "stop": tenacity.stop_after_attempt(max_attempts),
        "reraise": True,
    }
