"""Which Durable Object migration steps an upload carries: only the ones the live script has not
run, from its tag; and, when it is up to date, the last value only while nothing else changed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.stack_plan import MigrationEntry, MigrationHistory, MigrationHistoryError, PreviousUpload

HISTORY = MigrationHistory(
    (
        MigrationEntry("v1", ("RateLimiter", "IdempotencyStore")),
        MigrationEntry("v2", ("AuditLog",)),
        MigrationEntry("v3", (), ("AuditLog",)),
    )
)


def test_a_new_script_gets_every_step_and_no_old_tag() -> None:
    assert HISTORY.upload(None) == {
        "new_tag": "v3",
        "steps": [
            {"new_sqlite_classes": ["RateLimiter", "IdempotencyStore"]},
            {"new_sqlite_classes": ["AuditLog"]},
            {"deleted_classes": ["AuditLog"]},
        ],
    }


def test_a_script_at_v1_gets_the_later_steps_from_v1() -> None:
    assert HISTORY.upload("v1") == {
        "old_tag": "v1",
        "new_tag": "v3",
        "steps": [{"new_sqlite_classes": ["AuditLog"]}, {"deleted_classes": ["AuditLog"]}],
    }


def test_an_up_to_date_script_gets_nothing_unless_nothing_else_changed() -> None:
    created = HISTORY.upload(None)
    assert HISTORY.to_send("v3", None, "f1") is None
    assert HISTORY.to_send("v3", PreviousUpload(created, "f1"), "f1") == created
    assert HISTORY.to_send("v3", PreviousUpload(created, "f1"), "f2") is None


def test_a_live_tag_the_history_lost_is_an_error_naming_it() -> None:
    with pytest.raises(MigrationHistoryError, match=r"'v9'.*append-only"):
        HISTORY.upload("v9")


def test_previous_upload_reads_only_well_formed_outputs() -> None:
    assert PreviousUpload.from_output(None) is None
    assert PreviousUpload.from_output({"sent": None}) is None
    assert PreviousUpload.from_output({"sent": None, "fingerprint": "f"}) == PreviousUpload(None, "f")


def test_alive_classes_follow_the_history() -> None:
    assert HISTORY.alive_classes() == {"RateLimiter", "IdempotencyStore"}


histories = st.integers(min_value=1, max_value=6).map(
    lambda n: MigrationHistory(tuple(MigrationEntry(f"v{i}", (f"C{i}",)) for i in range(1, n + 1)))
)


def _api_accepts(live: str | None, upload: dict[str, object] | None) -> str | None:
    """The API's rule (code 10079): old_tag equals the script's tag, omitted only without one.
    Returns the script's tag after the upload."""
    if upload is None:
        return live
    assert upload.get("old_tag") == live
    return str(upload["new_tag"])


@given(histories, st.data())
def test_any_upload_is_accepted_and_ends_at_the_newest_tag(
    history: MigrationHistory, data: st.DataObject
) -> None:
    live = data.draw(st.sampled_from([None, *history.tags]))
    assert _api_accepts(live, history.upload(live)) == history.tags[-1]


@given(histories, st.data(), st.booleans())
def test_to_send_never_uploads_a_step_twice(
    history: MigrationHistory, data: st.DataObject, same: bool
) -> None:
    """Deploy after deploy, with the stack's outputs written or lost, whatever the program sends
    is either accepted by the API or identical to the state (then Pulumi uploads nothing)."""
    live = data.draw(st.sampled_from([None, *history.tags]))
    earlier = data.draw(st.sampled_from([None, *history.tags]))
    previous_sent = history.upload(earlier) if data.draw(st.booleans()) else None
    previous = PreviousUpload(previous_sent, "f") if data.draw(st.booleans()) else None
    sent = history.to_send(live, previous, "f" if same else "g")
    pending = history.pending(live)
    if pending:
        assert sent == history.upload(live)
    elif previous is not None and same and sent == previous.sent:
        assert sent is None or sent["new_tag"] == live  # kept: equal to the state, not uploaded
    else:
        assert sent is None
    if sent is not None and pending:
        assert _api_accepts(live, sent) == history.tags[-1]
