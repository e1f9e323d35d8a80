"""Workers KV through the official client: namespaces (unique titles, paged lists), values one by one
and in bulk, metadata, key listing with a cursor, and the size limits."""

from __future__ import annotations

import json

from cloudflare import Cloudflare

from local_services.cloudflare_api.resources.kv import KV_KEY_LIMIT
from local_services.cloudflare_api.testing import RunningEmulator
from tests.emulator.conftest import ACCOUNT, refused, unchanged


def test_namespaces_are_unique_by_title_and_listed_page_by_page(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    created = [cf.kv.namespaces.create(account_id=ACCOUNT, title=f"ns-{i:02}") for i in range(7)]
    refused(400, 10014, cf.kv.namespaces.create, account_id=ACCOUNT, title="ns-03")
    first = cf.kv.namespaces.list(account_id=ACCOUNT, per_page=3)
    assert [n.title for n in first.result] == ["ns-00", "ns-01", "ns-02"]
    assert first.result_info is not None and (first.result_info.page, first.result_info.per_page) == (1, 3)
    # The client follows the pages itself, stopping at the first empty one.
    assert [n.id for n in cf.kv.namespaces.list(account_id=ACCOUNT, per_page=3)] == [n.id for n in created]
    renamed = cf.kv.namespaces.update(created[0].id, account_id=ACCOUNT, title="policy")
    assert (
        renamed.title == "policy"
        and cf.kv.namespaces.get(created[0].id, account_id=ACCOUNT).title == "policy"
    )
    refused(400, 10014, cf.kv.namespaces.update, created[1].id, account_id=ACCOUNT, title="policy")
    cf.kv.namespaces.delete(created[1].id, account_id=ACCOUNT)
    refused(404, 10013, cf.kv.namespaces.get, created[1].id, account_id=ACCOUNT)
    titles = sorted(n["title"] for n in emulator.state()["accounts"][ACCOUNT]["kv_namespaces"].values())
    assert titles == ["ns-02", "ns-03", "ns-04", "ns-05", "ns-06", "policy"]


def test_the_raw_result_info_of_a_list(cf: Cloudflare) -> None:
    for i in range(5):
        cf.kv.namespaces.create(account_id=ACCOUNT, title=f"t{i}")
    raw = cf.kv.namespaces.with_raw_response.list(account_id=ACCOUNT, page=2, per_page=2)
    body = json.loads(raw.http_response.text)
    assert body["result_info"] == {"page": 2, "per_page": 2, "count": 2, "total_count": 5, "total_pages": 3}
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []


def test_values_metadata_and_keys(cf: Cloudflare, emulator: RunningEmulator) -> None:
    namespace = cf.kv.namespaces.create(account_id=ACCOUNT, title="policy").id
    values = cf.kv.namespaces.values
    values.update(
        "gateway/ingest",
        account_id=ACCOUNT,
        namespace_id=namespace,
        value=b'{"v": 1}',
        metadata='{"by": "test"}',
    )
    values.update("control", account_id=ACCOUNT, namespace_id=namespace, value=b"{}")
    assert values.get("gateway/ingest", account_id=ACCOUNT, namespace_id=namespace).text() == '{"v": 1}'
    assert cf.kv.namespaces.metadata.get("gateway/ingest", account_id=ACCOUNT, namespace_id=namespace) == {
        "by": "test"
    }
    keys = cf.kv.namespaces.keys.list(namespace, account_id=ACCOUNT)
    assert [(k.name, k.metadata) for k in keys] == [("control", None), ("gateway/ingest", {"by": "test"})]
    stored = emulator.state()["accounts"][ACCOUNT]["kv_namespaces"][namespace]["values"]
    assert stored["gateway/ingest"] == {"text": '{"v": 1}', "metadata": {"by": "test"}, "expiration": None}
    values.delete("control", account_id=ACCOUNT, namespace_id=namespace)
    refused(404, 10009, values.get, "control", account_id=ACCOUNT, namespace_id=namespace)
    refused(404, 10013, values.get, "control", account_id=ACCOUNT, namespace_id="0" * 32)


def test_keys_are_listed_with_a_cursor(cf: Cloudflare) -> None:
    namespace = cf.kv.namespaces.create(account_id=ACCOUNT, title="many").id
    names = [f"k{i:03}" for i in range(25)]
    cf.kv.namespaces.bulk_update(namespace, account_id=ACCOUNT, body=[{"key": n, "value": n} for n in names])
    page = cf.kv.namespaces.keys.list(namespace, account_id=ACCOUNT, limit=10)
    assert [k.name for k in page.result] == names[:10]
    assert page.result_info is not None and page.result_info.cursor
    assert [k.name for k in cf.kv.namespaces.keys.list(namespace, account_id=ACCOUNT, limit=10)] == names
    assert [k.name for k in cf.kv.namespaces.keys.list(namespace, account_id=ACCOUNT, prefix="k02")] == names[
        20:
    ]


def test_bulk_write_read_and_delete(cf: Cloudflare, emulator: RunningEmulator) -> None:
    namespace = cf.kv.namespaces.create(account_id=ACCOUNT, title="bulk").id
    written = cf.kv.namespaces.bulk_update(
        namespace,
        account_id=ACCOUNT,
        body=[
            {"key": "a", "value": '{"x": 1}', "metadata": {"m": 1}},
            {"key": "b", "value": "aGVsbG8=", "base64": True},
        ],
    )
    assert written is not None and written.successful_key_count == 2
    read = cf.kv.namespaces.bulk_get(namespace, account_id=ACCOUNT, keys=["a", "b", "c"])
    assert read is not None and read.values == {"a": '{"x": 1}', "b": "hello"}
    typed = cf.kv.namespaces.bulk_get(
        namespace, account_id=ACCOUNT, keys=["a"], type="json", with_metadata=True
    )
    assert typed is not None and typed.to_dict()["values"]["a"] == {
        "value": {"x": 1},
        "metadata": {"m": 1},
        "expiration": None,
    }
    deleted = cf.kv.namespaces.bulk_delete(namespace, account_id=ACCOUNT, body=["a", "b"])
    assert deleted is not None and deleted.successful_key_count == 2
    assert emulator.state()["accounts"][ACCOUNT]["kv_namespaces"][namespace]["values"] == {}


def test_limits_and_malformed_bulk_writes_change_nothing(cf: Cloudflare, emulator: RunningEmulator) -> None:
    namespace = cf.kv.namespaces.create(account_id=ACCOUNT, title="limits").id
    same = unchanged(emulator)
    values = cf.kv.namespaces.values
    refused(
        400,
        10033,
        values.update,
        "k" * (KV_KEY_LIMIT + 1),
        account_id=ACCOUNT,
        namespace_id=namespace,
        value=b"v",
    )
    refused(
        400,
        10033,
        values.update,
        "big",
        account_id=ACCOUNT,
        namespace_id=namespace,
        value=b"v" * (25 * 1024 * 1024 + 1),
    )
    # One bad pair refuses the whole bulk write: the good pair before it is not written either.
    bad = [{"key": "good", "value": "1"}, {"key": "bad", "value": 2}]
    refused(400, 10001, cf.kv.namespaces.bulk_update, namespace, account_id=ACCOUNT, body=bad)
    refused(
        400,
        10001,
        cf.kv.namespaces.bulk_update,
        namespace,
        account_id=ACCOUNT,
        body=[{"key": "x", "value": "!", "base64": True}],
    )
    refused(400, 10001, cf.kv.namespaces.create, account_id=ACCOUNT, title="")
    same()


def test_binary_values_come_back_byte_for_byte(cf: Cloudflare, emulator: RunningEmulator) -> None:
    namespace = cf.kv.namespaces.create(account_id=ACCOUNT, title="binary").id
    blob = bytes(range(256)) * 4 + b"\r\n--boundary\r\n\n\r"
    cf.kv.namespaces.values.update("blob", account_id=ACCOUNT, namespace_id=namespace, value=blob)
    assert cf.kv.namespaces.values.get("blob", account_id=ACCOUNT, namespace_id=namespace).read() == blob
    assert "base64" in emulator.state()["accounts"][ACCOUNT]["kv_namespaces"][namespace]["values"]["blob"]
