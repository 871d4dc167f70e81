"""The embedded local store: durable, idempotent, readable back, exportable."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from datahub_airflow_listener.transport import LocalConfig, LocalStore, TransientError
from tests.unit.transport.transport_helpers import record


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(LocalConfig.from_dict({"directory": str(tmp_path / "datahub")}))


def test_stores_in_order_and_reads_back_with_filters(store: LocalStore) -> None:
    assert store.emit_records([record("a", 1), record("b", 2), record("a", 3)]).ok
    assert store.emit_records([record("b", 4, "COMPLETE")]).ok
    everything = list(store.iter_mcps())
    assert [m.seq for m in everything] == sorted(m.seq for m in everything)
    assert [m.aspect()["timestampMillis"] for m in everything] == [1, 2, 3, 4]
    a_only = list(store.iter_mcps(urn="urn:li:dataProcessInstance:a"))
    assert [m.aspect()["timestampMillis"] for m in a_only] == [1, 3]
    assert everything[0].timestamp_ms == 1  # systemMetadata.lastObserved
    assert everything[0].entity_type == "dataProcessInstance"
    assert store.count() == 4
    assert (
        store.count(urn="urn:li:dataProcessInstance:b", aspect_name="dataProcessInstanceRunEvent")
        == 2
    )
    assert list(store.iter_mcps(after_seq=everything[2].seq)) == everything[3:]
    assert store.last_seq() == everything[-1].seq


def test_redelivery_of_the_same_envelope_is_stored_once(store: LocalStore) -> None:
    batch = [record("a", 1), record("a", 2)]
    store.emit_records(batch)
    store.emit_records(batch)  # at-least-once: the outbox may send a batch twice
    store.emit_records([record("a", 1, "COMPLETE")])  # a different event is kept
    assert store.count() == 3


def test_persists_across_instances_and_is_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "datahub"
    first = LocalStore(LocalConfig(directory=str(directory)))
    first.emit_records([record("a", 1)])
    first.close()
    second = LocalStore(LocalConfig(directory=str(directory)))
    assert [m.urn for m in second.iter_mcps()] == ["urn:li:dataProcessInstance:a"]
    assert stat.S_IMODE(os.stat(second.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


def test_export_writes_datahub_file_format(store: LocalStore, tmp_path: Path) -> None:
    store.emit_records([record("a", 1), record("b", 2), record("a", 3)])
    out = tmp_path / "export" / "mcps.json"
    assert store.export_file(out) == 3
    items = json.loads(out.read_text())
    assert [i["aspect"]["json"]["timestampMillis"] for i in items] == [1, 2, 3]
    assert all(set(i["aspect"]) == {"json"} for i in items)
    assert store.export_file(out, urn="urn:li:dataProcessInstance:b") == 1
    assert len(json.loads(out.read_text())) == 1
    assert store.export_file(tmp_path / "none.json", urn="urn:li:nothing:x") == 0
    assert json.loads((tmp_path / "none.json").read_text()) == []


def test_pages_through_large_histories(store: LocalStore) -> None:
    store.emit_records([record(f"r{i % 3}", i) for i in range(2500)])
    assert [m.aspect()["timestampMillis"] for m in store.iter_mcps()] == list(range(2500))


def test_mark_removed_appends_one_status_per_urn(store: LocalStore) -> None:
    store.emit_records([record("a", 1), record("b", 2)])
    store.mark_removed(["urn:li:dataProcessInstance:a"])
    status = list(store.iter_mcps(aspect_name="status"))
    assert [(m.urn, m.aspect()) for m in status] == [
        ("urn:li:dataProcessInstance:a", {"removed": True})
    ]
    assert store.count() == 3  # a soft delete keeps the history it hides


def test_mark_removed_raises_when_the_store_cannot_write(tmp_path: Path) -> None:
    directory = tmp_path / "datahub"
    directory.mkdir()
    (directory / "local.sqlite").write_text("this is not a database")
    broken = LocalStore(LocalConfig(directory=str(directory)))
    with pytest.raises(TransientError, match="cannot write the local store"):
        broken.mark_removed(["urn:li:dataProcessInstance:a"])


def test_delete_urns_removes_every_row_of_those_urns_only(store: LocalStore) -> None:
    store.emit_records([record("a", 1), record("b", 2), record("a", 3), record("c", 4)])
    gone = store.delete_urns(
        ["urn:li:dataProcessInstance:a", "urn:li:dataProcessInstance:c", "urn:li:nothing:x"]
    )
    assert gone == 3
    assert [m.urn for m in store.iter_mcps()] == ["urn:li:dataProcessInstance:b"]
    assert store.delete_urns([]) == 0
