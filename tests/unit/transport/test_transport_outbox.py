"""The outbox: durable, ordered, leased per sink, bounded, shared by processes."""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from datahub_airflow_listener.transport import Outbox, WireRecord
from datahub_airflow_listener.transport.outbox import new_holder_id
from tests.support.waiting import wait_until
from tests.unit.transport.transport_helpers import record

ROOT = Path(__file__).resolve().parents[3]


def stamps(rows) -> list[int]:
    return [row.record.wire()["systemMetadata"]["lastObserved"] for row in rows]


def test_put_claim_settle_in_seq_order(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path)
    outbox.put("rest", [record("a", 1), record("a", 2)])
    outbox.put("rest", [record("b", 3)])
    outbox.put("file", [record("a", 1)])
    rows = outbox.claim("rest", "me", 10)
    assert rows is not None and stamps(rows) == [1, 2, 3]
    assert [r.urn for r in rows] == ["urn:li:dataProcessInstance:a"] * 2 + [
        "urn:li:dataProcessInstance:b"
    ]
    assert outbox.settle("rest", rows[:2]) == 2
    assert stamps(outbox.claim("rest", "me", 10) or []) == [3]
    counts = outbox.counts("rest")
    assert (counts.waiting, counts.delivered, counts.dead, counts.dropped) == (1, 2, 0, 0)
    assert outbox.waiting() == 2  # 1 for rest + 1 for file
    assert outbox.sinks() == ["file", "rest"]


def test_refused_rows_go_to_the_dead_letters(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path, max_dead_rows=2)
    outbox.put("rest", [record("a", i) for i in range(5)])
    rows = outbox.claim("rest", "me", 5) or []
    outbox.settle("rest", rows, [(rows[1], 422, "bad"), (rows[3], 400, "worse")])
    counts = outbox.counts("rest")
    assert (counts.waiting, counts.delivered, counts.dead) == (0, 3, 2)
    dead = outbox.dead_letters("rest")
    observed = [json.loads(d.payload)["systemMetadata"]["lastObserved"] for d in dead]
    assert observed == [3, 1]
    assert [(d.status, d.error) for d in dead] == [(400, "worse"), (422, "bad")]
    outbox.put("rest", [record("z", 9)])
    more = outbox.claim("rest", "me", 5) or []
    outbox.settle("rest", more, [(more[0], 422, "again")])
    assert len(outbox.dead_letters()) == 2  # bounded: newest kept


def test_a_partly_settled_batch_keeps_its_tail(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path)
    outbox.put("rest", [record("a", i) for i in range(5)])
    rows = outbox.claim("rest", "me", 100) or []
    assert outbox.settle("rest", rows[:2]) == 2
    assert stamps(outbox.claim("rest", "me", 100) or []) == [2, 3, 4]
    assert outbox.counts("rest").waiting == 3


def test_settle_after_the_bound_trimmed_a_claimed_batch(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path, max_rows=6)
    outbox.put("rest", [record("a", i) for i in range(5)])
    claimed = outbox.claim("rest", "me", 100) or []
    assert outbox.put("rest", [record("a", i) for i in range(5, 8)]) == 2  # drops 0 and 1
    assert outbox.settle("rest", claimed[:4]) == 2  # 2 and 3: 0 and 1 were already dropped
    assert stamps(outbox.claim("rest", "me", 100) or []) == [4, 5, 6, 7]
    counts = outbox.counts("rest")
    assert (counts.waiting, counts.delivered, counts.dropped) == (4, 2, 2)


def test_large_puts_are_claimed_in_order_in_whole_batches(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path)
    outbox.put("rest", [record("a", i) for i in range(1200)])
    first = outbox.claim("rest", "me", 600) or []
    assert stamps(first) == list(range(1000))  # whole stored batches of 500
    outbox.settle("rest", first)
    assert stamps(outbox.claim("rest", "me", 600) or []) == list(range(1000, 1200))
    assert [stamps([r])[0] for r in outbox.rows("rest", limit=3)] == [1000, 1001, 1002]


def test_claims_page_through_many_small_batches(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path)
    for i in range(150):  # one stored batch per put, as a task process writes them
        outbox.put("rest", [record("a", i)])
    first = outbox.claim("rest", "me", 100) or []
    assert stamps(first) == list(range(100))
    outbox.settle("rest", first)
    assert stamps(outbox.claim("rest", "me", 1000) or []) == list(range(100, 150))


def test_payloads_are_stored_one_per_line(outbox_path: Path) -> None:
    pretty = WireRecord("urn:li:x", "a", "x", json.dumps({"k": "v\nw", "n": [1, 2]}, indent=2))
    writer = Outbox(outbox_path)
    writer.put("rest", [record("a", 1), pretty, record("a", 2)])
    dpi = "urn:li:dataProcessInstance:a"
    for outbox in (Outbox(outbox_path), writer):  # read from the file, and as written
        rows = outbox.claim("rest", "me", 10) or []
        assert [r.urn for r in rows] == [dpi, "urn:li:x", dpi]
        assert json.loads(rows[1].payload) == {"k": "v\nw", "n": [1, 2]}
        assert "\n" not in rows[1].payload
        assert rows[0].record == record("a", 1)


def test_a_writer_sees_what_another_process_settled_of_its_batches(outbox_path: Path) -> None:
    writer, shipper = Outbox(outbox_path), Outbox(outbox_path)
    writer.put("rest", [record("a", i) for i in range(5)])
    writer.put("rest", [record("a", i) for i in range(5, 7)])
    claimed = shipper.claim("rest", "other", 100) or []
    shipper.settle("rest", claimed[:3])  # the first batch loses its front, nothing else
    shipper.release("rest", "other")
    assert stamps(writer.claim("rest", "me", 100) or []) == [3, 4, 5, 6]
    writer.release("rest", "me")
    shipper.settle("rest", (shipper.claim("rest", "other", 100) or [])[:4])
    shipper.release("rest", "other")
    assert writer.claim("rest", "me", 100) == []
    assert writer.rows("rest") == []


def test_rows_of_the_earlier_array_format_are_still_read(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path)
    outbox.put("rest", [record("a", 1)])
    old = [record("b", 2), record("b", 3)]
    flat = [field for r in old for field in r]
    with sqlite3.connect(outbox_path) as conn:
        conn.execute(
            "INSERT INTO batches (sink, created_ms, count, data) VALUES ('rest', 1, 2, ?)",
            (json.dumps(flat, separators=(",", ":")),),
        )
        conn.execute("UPDATE sinks SET waiting = waiting + 2 WHERE sink = 'rest'")
    rows = outbox.claim("rest", "me", 10) or []
    assert stamps(rows) == [1, 2, 3]
    assert [r.record for r in rows[1:]] == old
    outbox.settle("rest", rows[:2])  # a partial settle rewrites the old row in the new format
    assert [r.record for r in outbox.claim("rest", "me", 10) or []] == old[1:]


def test_one_lease_holder_at_a_time_until_release_or_expiry(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path)
    outbox.put("rest", [record("a", 1)])
    assert outbox.claim("rest", "host:1:a", 10, ttl_sec=0.3) is not None
    assert outbox.claim("rest", "host:2:b", 10) is None  # held (a foreign host's holder)
    assert outbox.acquire("rest", "host:1:a")  # renewal by the holder
    outbox.release("rest", "host:2:b")  # not the holder: no effect
    assert outbox.claim("rest", "host:2:b", 10) is None
    outbox.release("rest", "host:1:a")
    assert outbox.claim("rest", "host:2:b", 10, ttl_sec=0.2) is not None
    assert wait_until(lambda: outbox.claim("rest", "host:1:a", 10) is not None)  # expired
    assert outbox.counts("rest").lease_holder == "host:1:a"


def test_a_lease_held_by_a_dead_local_process_is_taken_at_once(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path, lease_ttl_sec=3600)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead_holder = f"{socket.gethostname()}:{child.pid}:deadbeef"
    outbox.put("rest", [record("a", 1)])
    assert outbox.claim("rest", dead_holder, 1) is not None
    live_holder = f"{socket.gethostname()}:{os.getpid()}:cafe"
    assert outbox.claim("rest", live_holder, 1) is not None
    assert outbox.claim("rest", new_holder_id(), 1) is None  # this one is alive


def test_bounded_drops_oldest_warns_once_and_counts(outbox_path: Path, caplog) -> None:
    outbox = Outbox(outbox_path, max_rows=5)
    with caplog.at_level(logging.WARNING, logger="datahub_airflow_listener"):
        assert outbox.put("rest", [record("a", i) for i in range(4)]) == 0
        assert outbox.put("rest", [record("a", i) for i in range(4, 7)]) == 2
        assert outbox.put("rest", [record("a", 7)]) == 1
    rows = outbox.claim("rest", "me", 100) or []
    assert stamps(rows) == [3, 4, 5, 6, 7]
    assert outbox.counts("rest").dropped == 3
    assert outbox.counts("rest").waiting == 5
    warnings = [r for r in caplog.records if "full" in r.getMessage()]
    assert len(warnings) == 1
    outbox.put("other", [record("b", 1)])  # the bound is per sink
    assert outbox.counts("other").dropped == 0


def test_files_are_owner_only(outbox_path: Path) -> None:
    outbox = Outbox(outbox_path)
    outbox.put("rest", [record("a", 1)])
    files = sorted(p.name for p in outbox_path.parent.iterdir())
    assert files == [
        "outbox.sqlite",
        "outbox.sqlite-shm",
        "outbox.sqlite-wal",
        "outbox.sqlite.lock",
    ]
    for name in files:
        assert stat.S_IMODE(os.stat(outbox_path.parent / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(outbox_path.parent).st_mode) == 0o700


def test_survives_reopening(outbox_path: Path) -> None:
    first = Outbox(outbox_path)
    first.put("rest", [record("a", 1), record("a", 2)])
    first.close()
    assert stamps(Outbox(outbox_path).claim("rest", "me", 10) or []) == [1, 2]


PRODUCER = textwrap.dedent(
    """
    import sys
    from datahub_airflow_listener.transport import Outbox, WireRecord
    from tests.support.fake_gms import StubMcp
    path, name, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
    outbox = Outbox(path)
    for b in range(batches):
        mcps = [StubMcp(entity_urn=f"urn:li:dataProcessInstance:{name}", seq=b * 3 + k)
                for k in range(3)]
        outbox.put("rest", [WireRecord.from_wire(m.to_wire(last_observed=1)) for m in mcps])
    """
)


def test_many_processes_put_at_once_nothing_lost_order_kept(outbox_path: Path) -> None:
    producers, batches = 5, 60
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER, str(outbox_path), f"p{n}", str(batches)],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        for n in range(producers)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * producers
    outbox = Outbox(outbox_path)
    rows = outbox.claim("rest", "me", 100_000) or []
    assert len(rows) == producers * batches * 3
    assert outbox.counts("rest").waiting == len(rows)
    for n in range(producers):
        mine = [r.record.wire() for r in rows if r.urn.endswith(f":p{n}")]
        assert [json.loads(m["aspect"]["value"])["timestampMillis"] for m in mine] == list(
            range(batches * 3)
        )


def test_rejects_a_zero_bound(outbox_path: Path) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        Outbox(outbox_path, max_rows=0)
