"""The per-process sender: non-blocking submit, prompt durability, bounded flush, fork safety."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.transport import (
    Dispatcher,
    DispatcherConfig,
    Outbox,
    RecordingTransport,
    WireRecord,
    build_dispatcher,
    transport_factory,
)
from tests.support.fake_gms import FakeGms
from tests.support.waiting import wait_until
from tests.unit.transport.transport_helpers import FAST_BACKOFF, mcp, rest_settings, seqs

ROOT = Path(__file__).resolve().parents[3]


def config(**overrides: Any) -> DispatcherConfig:
    values: dict[str, Any] = {
        "poll_interval_sec": 0.1,
        "sink_backoff": FAST_BACKOFF,
        "register_atexit": False,
        "flush_timeout_sec": 5.0,
    }
    values.update(overrides)
    return DispatcherConfig(**values)


def recording_dispatcher(
    outbox_path: Path, *, max_rows: int = 100_000, **overrides: Any
) -> tuple[Dispatcher, RecordingTransport]:
    sink = RecordingTransport()
    dispatcher = build_dispatcher(
        [("rec", lambda: sink)], outbox_path, max_rows=max_rows, config=config(**overrides)
    )
    return dispatcher, sink


def run_events(run: str, start: int) -> list[Any]:
    return [mcp(run, start, "STARTED"), mcp(run, start + 1, "COMPLETE")]


def test_submit_never_waits_for_the_sink_and_never_raises(outbox_path: Path) -> None:
    """The sink hangs 10 s: no submit waits for it. (What a submit costs, microseconds, is a
    figure printed by bench/bench_delivery.py: a loaded machine must not fail a test.)"""
    release = threading.Event()

    def slow_factory() -> RecordingTransport:
        release.wait(10)  # resolving a connection that hangs
        return RecordingTransport()

    dispatcher = build_dispatcher([("slow", slow_factory)], outbox_path, config=config())
    slowest = 0.0
    submissions = [("warmup", 0)] + [("r", i) for i in range(2000)]  # the first starts the thread
    for run, seq in submissions:
        started = time.perf_counter()
        dispatcher.submit([mcp(run, seq)])
        slowest = max(slowest, time.perf_counter() - started)
    dispatcher.submit([])
    dispatcher.submit(None)  # type: ignore[arg-type]
    dispatcher.submit([object()])  # type: ignore[list-item]  # not an MCP: counted, not raised
    assert slowest < 5.0  # half the sink's hang: none of them waited for it
    assert wait_until(lambda: dispatcher.counts().failed == 1)
    assert wait_until(lambda: dispatcher.outbox.waiting("slow") == 2001)
    release.set()
    dispatcher.close(timeout=1)


def test_events_reach_disk_within_milliseconds_while_the_sink_is_stuck(
    outbox_path: Path, gms: FakeGms
) -> None:
    gms.delay_sec = 10.0  # the shipper will sit in its first request
    dispatcher = build_dispatcher(
        [("rest", transport_factory("datahub-rest", rest_settings(gms.url, timeout_sec=30)))],
        outbox_path,
        config=config(),
    )
    dispatcher.submit([mcp("a", 1)])
    assert wait_until(lambda: dispatcher._in_flight == "rest")
    dispatcher.submit([mcp("b", 2), mcp("b", 3)])
    assert wait_until(lambda: Outbox(outbox_path).waiting("rest") == 3)
    # On disk while the shipper still sits in the request it started before them.
    assert dispatcher._in_flight == "rest" and not gms.ingest_requests()
    flush = dispatcher.close(timeout=0.2)
    assert flush.waiting == 3 and not flush.ok


def test_flush_starts_no_request_after_its_deadline_and_cuts_none(
    outbox_path: Path, gms: FakeGms
) -> None:
    """A slow destination: the request in flight at the deadline ends normally (its batch is
    delivered once, never cut and sent again); no new request starts after the deadline."""
    gms.delay_sec = 1.0  # a request outlives the 0.4 s deadline
    outbox = Outbox(outbox_path)
    for first in (0, 50):  # two stored batches, left by another process
        outbox.put("rest", records("r", range(first, first + 50)))
    dispatcher = build_dispatcher(
        [("rest", transport_factory("datahub-rest", rest_settings(gms.url)))],
        outbox_path,
        config=config(batch_rows=50),
    )
    dispatcher.flush(0.4)  # nothing submitted: no sender thread, this flush is the only sender
    # The request it started before the deadline ran to its end; it started none after it.
    assert wait_until(gms.idle)
    assert [r.proposals for r in gms.ingest_requests()] == [50]
    # A later flush delivers the rest: everything arrives, and arrives once.
    assert dispatcher.flush(10).ok
    assert wait_until(gms.idle)
    dispatcher.close(timeout=0.1)
    keys = [(m["entityUrn"], m["aspect"]["value"]) for m in gms.accepted()]
    assert len(keys) == len(set(keys)) == 100


def test_flush_delivers_everything_in_submission_order(outbox_path: Path) -> None:
    dispatcher, sink = recording_dispatcher(outbox_path, batch_rows=7)
    for i in range(40):
        dispatcher.submit(run_events(f"r{i % 5}", i * 2))
    report = dispatcher.flush(5)
    assert report.ok and report.delivered == 80 and report.waiting == 0
    assert seqs(sink.wire_mcps) == list(range(80))
    assert {m["systemMetadata"]["runId"] for m in sink.wire_mcps} == {"no-run-id-provided"}
    dispatcher.close()


def test_flush_counts_what_the_shipper_thread_is_still_settling(outbox_path: Path) -> None:
    dispatcher, sink = recording_dispatcher(outbox_path)
    settle, spool = dispatcher.outbox.settle, dispatcher._spool
    flushing = threading.Event()
    test_thread = threading.get_ident()

    def spool_noting_the_flush(*args: Any, **kwargs: Any) -> bool:
        if threading.get_ident() == test_thread:  # the flush's first step
            flushing.set()
        return spool(*args, **kwargs)

    def slow_settle(*args: Any, **kwargs: Any) -> int:
        done = settle(*args, **kwargs)
        # Committed (the outbox says nothing waits), not yet counted: stay here until the
        # flush has begun, then 0.1 s more, in which a flush that did not wait for this step
        # would read the count without these two.
        flushing.wait(10)
        time.sleep(0.1)
        return done

    dispatcher.outbox.settle = slow_settle  # type: ignore[method-assign]
    dispatcher._spool = spool_noting_the_flush  # type: ignore[method-assign]
    dispatcher.submit(run_events("r", 0))
    assert wait_until(lambda: len(sink.records) == 2 and dispatcher.outbox.waiting("rec") == 0)
    report = dispatcher.flush(5)
    assert report.ok and report.delivered == 2
    dispatcher.close()


def test_last_observed_is_the_submission_time(outbox_path: Path) -> None:
    dispatcher, sink = recording_dispatcher(outbox_path, run_id="airflow-run-x")
    before = int(time.time() * 1000)
    dispatcher.submit([mcp("a", 1)])
    dispatcher.flush(5)
    system = sink.wire_mcps[0]["systemMetadata"]
    assert before <= system["lastObserved"] <= int(time.time() * 1000)
    assert system["runId"] == "airflow-run-x"


def test_outage_backs_off_then_delivers_everything_in_order(outbox_path: Path, caplog) -> None:
    dispatcher, sink = recording_dispatcher(outbox_path)
    sink.down = True
    with caplog.at_level("WARNING", logger="datahub_airflow_listener"):
        began = time.monotonic()
        for i in range(20):
            dispatcher.submit(run_events(f"r{i}", i * 2))
            time.sleep(0.01)  # submissions spread over the outage: each wakes the shipper
        assert wait_until(lambda: dispatcher.counts().waiting == 40)
        assert wait_until(lambda: sink.emit_calls >= 1)
        calls_while_down, down_for = sink.emit_calls, time.monotonic() - began
        sink.down = False
        assert wait_until(lambda: len(sink.records) == 40, timeout=5)
        # the "accepts events again" line is logged just after the delivery that succeeded
        assert wait_until(
            lambda: any("accepts events again" in r.getMessage() for r in caplog.records),
            timeout=5,
        )
    # Backed off: the policy (20 ms doubling up to 100 ms, jittered down to half) allows a few
    # calls and then one per 50 ms at most; a shipper that did not back off, or tried again on
    # every submission, makes far more.
    assert 1 <= calls_while_down < 10 + 40 * down_for
    assert seqs(sink.wire_mcps) == list(range(40))
    lines = [r.getMessage() for r in caplog.records if "destination rec " in r.getMessage()]
    failing = [line for line in lines if "is failing" in line]
    recovered = [line for line in lines if "accepts events again" in line]
    assert len(failing) == 1 and len(recovered) == 1
    dispatcher.close()


def test_permanent_failures_are_dead_lettered_and_counted(outbox_path: Path) -> None:
    dispatcher, sink = recording_dispatcher(outbox_path)
    sink.reject_urns = {"urn:li:dataProcessInstance:bad"}
    dispatcher.submit([mcp("a", 1), mcp("bad", 2), mcp("a", 3)])
    report = dispatcher.flush(5)
    assert (report.delivered, report.failed, report.waiting) == (2, 1, 0)
    assert seqs(sink.wire_mcps) == [1, 3]
    dead = dispatcher.outbox.dead_letters("rec")
    assert [d.urn for d in dead] == ["urn:li:dataProcessInstance:bad"]
    dispatcher.close()


def test_a_failing_factory_is_retried_later(outbox_path: Path) -> None:
    sink = RecordingTransport()
    attempts = {"n": 0}

    def flaky_factory() -> RecordingTransport:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise RuntimeError("connection not found yet")
        return sink

    dispatcher = build_dispatcher([("rec", flaky_factory)], outbox_path, config=config())
    dispatcher.submit([mcp("a", 1)])
    assert wait_until(lambda: len(sink.records) == 1, timeout=5)
    assert attempts["n"] == 3
    dispatcher.close()


def test_rows_left_by_other_processes_are_delivered_first(outbox_path: Path) -> None:
    other = Outbox(outbox_path)
    other.put("rec", [WireRecord.from_wire(mcp("old", i).to_wire()) for i in range(3)])
    dispatcher, sink = recording_dispatcher(outbox_path)
    dispatcher.submit([mcp("new", 3)])
    assert wait_until(lambda: len(sink.records) == 4)
    assert seqs(sink.wire_mcps) == [0, 1, 2, 3]
    other.put("rec", [WireRecord.from_wire(mcp("later", 4).to_wire())])  # while idle
    assert wait_until(lambda: len(sink.records) == 5, timeout=2)  # noticed by polling
    dispatcher.close()


def test_flush_alone_ships_leftovers(outbox_path: Path) -> None:
    Outbox(outbox_path).put(
        "rec", [WireRecord.from_wire(mcp("old", i).to_wire()) for i in range(3)]
    )
    dispatcher, sink = recording_dispatcher(outbox_path)
    report = dispatcher.flush(5)  # e.g. a "flush" command: no submit, no thread
    assert report.ok and seqs(sink.wire_mcps) == [0, 1, 2]
    assert dispatcher._thread is None


def records(run: str, seq_numbers: range) -> list[WireRecord]:
    return [WireRecord.from_wire(mcp(run, i).to_wire()) for i in seq_numbers]


def test_an_exiting_process_delivers_its_own_events_and_what_is_ahead(outbox_path: Path) -> None:
    Outbox(outbox_path).put("rec", records("before", range(2)))  # another process, earlier
    dispatcher, sink = recording_dispatcher(outbox_path, batch_rows=1)
    dispatcher.outbox.put("rec", records("mine", range(2, 4)))  # as this process spooled them
    Outbox(outbox_path).put("rec", records("after", range(4, 6)))  # another process, later
    report = dispatcher.flush(5, only_own=True)
    assert report.ok  # its own and what was ahead of them: delivered
    assert seqs(sink.wire_mcps)[:4] == [0, 1, 2, 3]
    assert dispatcher.flush(5).ok  # a full flush (the CLI's) takes the later ones too
    assert seqs(sink.wire_mcps) == [0, 1, 2, 3, 4, 5]


def _held_by_another_process(outbox_path: Path) -> tuple[Outbox, str]:
    shipping = f"{socket.gethostname()}:{os.getppid()}:other"  # a live process on this host
    other = Outbox(outbox_path)
    assert other.acquire("rec", shipping, ttl_sec=60)
    return other, shipping


def test_an_exiting_process_waits_a_bounded_time_for_its_own_events(outbox_path: Path) -> None:
    other, _ = _held_by_another_process(outbox_path)
    dispatcher, sink = recording_dispatcher(outbox_path)
    dispatcher.outbox.put("rec", records("mine", range(3)))
    other.put("rec", records("later", range(3, 5)))
    started = time.monotonic()
    report = dispatcher.flush(0.3, only_own=True)  # the holder ships nothing: bounded
    assert 0.3 <= time.monotonic() - started < 5.0  # not the holder's 60 s lease
    assert report.timed_out and report.waiting == 3 and not sink.records


def test_an_exiting_process_waits_only_for_its_own_events(outbox_path: Path) -> None:
    other, shipping = _held_by_another_process(outbox_path)
    dispatcher, sink = recording_dispatcher(outbox_path)
    dispatcher.outbox.put("rec", records("mine", range(3)))
    other.put("rec", records("later", range(3, 5)))
    waiting_mine, looked = dispatcher.outbox.waiting_mine, threading.Event()

    def noting_waiting_mine(*args: Any, **kwargs: Any) -> int:
        left = waiting_mine(*args, **kwargs)
        looked.set()
        return left

    dispatcher.outbox.waiting_mine = noting_waiting_mine  # type: ignore[method-assign]

    def holder_ships_mine() -> None:
        looked.wait(10)  # the exit flush has found its own events waiting
        rows = other.claim("rec", shipping, 3, ttl_sec=60) or []
        other.settle("rec", rows[:3])  # what the other process delivered

    thread = threading.Thread(target=holder_ships_mine)
    thread.start()
    started = time.monotonic()
    report = dispatcher.flush(20, only_own=True)
    thread.join()
    # Done when its own are, not at the end of its budget waiting for the later ones.
    assert time.monotonic() - started < 10
    assert report.ok and not sink.records
    assert dispatcher.outbox.waiting("rec") == 2


class SlowRecording(RecordingTransport):
    """Each emit takes ``delay`` seconds: the shipper is mid-step most of the time."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def emit_records(self, records: Any, *, deadline: float | None = None) -> Any:
        time.sleep(self.delay)
        return super().emit_records(records, deadline=deadline)


def test_an_exiting_process_hands_the_sink_over_once_its_own_are_delivered(
    outbox_path: Path,
) -> None:
    # The exiting process's shipper is busy with other processes' events when its own are
    # done. It must stop there and give the lease back: a process that exits holding it (or
    # lingers as a zombie its parent has not reaped) would keep every other sender off the
    # sink until the lease expires.
    sink = SlowRecording(0.15)
    dispatcher = build_dispatcher([("rec", lambda: sink)], outbox_path, config=config(batch_rows=1))
    with dispatcher._ship_lock:  # the shipper waits until the later rows are there too
        dispatcher.submit(run_events("mine", 0))
        assert wait_until(lambda: dispatcher.outbox.waiting("rec") == 2)
        later = Outbox(outbox_path)
        for i in range(2, 12):  # ten batches: ten steps of the shipper
            later.put("rec", records("later", range(i, i + 1)))
    report = dispatcher.flush(5, only_own=True)
    assert report.ok
    assert Outbox(outbox_path).counts("rec").lease_holder is None
    shipped = len(sink.records)
    assert 2 <= shipped < 12
    # It does not go on with the later rows behind the new holder's back. Nothing to wait
    # for: 0.5 s is three of its 0.15 s steps, time for a shipper that went on to ship more.
    time.sleep(0.5)
    assert len(sink.records) == shipped
    taker = Outbox(outbox_path)
    assert taker.acquire("rec", "host:1:next", ttl_sec=60)  # the next sender takes over at once
    taker.release("rec", "host:1:next")
    dispatcher.submit(run_events("again", 20))  # a process that goes on submitting ships again
    assert wait_until(lambda: 20 in seqs(sink.wire_mcps) and 21 in seqs(sink.wire_mcps))
    dispatcher.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_zombie_lease_holder_does_not_keep_the_sink(outbox_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    holder = f"{socket.gethostname()}:{child.pid}:gone"
    outbox = Outbox(outbox_path)
    outbox.put("rec", records("left", range(2)))
    assert outbox.acquire("rec", holder, ttl_sec=60)
    assert wait_until(lambda: _proc_state(child.pid) == "Z")  # exited, not reaped yet
    assert outbox.claim("rec", "host:1:next", 10) is not None
    child.wait()


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_memory_bound_drops_the_oldest_submissions(outbox_path: Path) -> None:
    dispatcher, sink = recording_dispatcher(outbox_path, max_queue=10)
    with dispatcher._spool_lock:  # the spooler is busy: submissions pile up in memory
        for i in range(15):
            dispatcher.submit([mcp("a", i)])
        assert dispatcher.counts().dropped == 5
    report = dispatcher.flush(5)
    assert seqs(sink.wire_mcps) == list(range(5, 15))
    assert report.dropped == 5
    dispatcher.close()


def test_an_unwritable_outbox_degrades_to_memory(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    dispatcher, sink = recording_dispatcher(blocker / "outbox.sqlite")
    with caplog.at_level("WARNING", logger="datahub_airflow_listener"):
        dispatcher.submit([mcp("a", 1), mcp("a", 2)])
        report = dispatcher.flush(5)
    assert seqs(sink.wire_mcps) == [1, 2]
    assert report.delivered == 2
    assert "keeping events in memory" in caplog.text
    dispatcher.close()


def test_close_stops_everything_and_later_submits_are_ignored(outbox_path: Path) -> None:
    dispatcher, sink = recording_dispatcher(outbox_path)
    dispatcher.submit([mcp("a", 1)])
    assert dispatcher.close(timeout=5).delivered == 1
    assert sink.closed
    dispatcher.submit([mcp("a", 2)])
    # Nothing to wait for: time for a sender that took the submit after all to deliver it.
    time.sleep(0.2)
    assert len(sink.records) == 1
    assert not (dispatcher._thread and dispatcher._thread.is_alive())


def test_sink_names_must_be_unique(outbox_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        build_dispatcher([("a", RecordingTransport), ("a", RecordingTransport)], outbox_path)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_fork_child_gets_a_fresh_queue_and_its_own_thread(tmp_path: Path) -> None:
    target = tmp_path / "events.json"
    factory = transport_factory("datahub-file", {"filename": str(target)})
    dispatcher = build_dispatcher([("file", factory)], tmp_path / "outbox.sqlite", config=config())
    dispatcher.submit([mcp("parent", 0)])
    assert dispatcher.flush(5).ok
    with dispatcher._spool_lock:  # the parent's spooler is mid-write when the fork happens
        dispatcher.submit([mcp("parent", 1), mcp("parent", 2)])
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                dispatcher.submit([mcp("child", 10), mcp("child", 11)])
                report = dispatcher.flush(5)
                # ok: nothing waits (the parent's shipper may have sent them: one outbox)
                code = 0 if report.ok else 2
                (tmp_path / "child.txt").write_text(repr(report))
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    child_report = (tmp_path / "child.txt").read_text()
    assert os.waitstatus_to_exitcode(status) == 0, child_report
    assert dispatcher.flush(5).ok
    by_run: dict[str, list[int]] = {}
    for item in json.loads(target.read_text()):
        by_run.setdefault(item["entityUrn"].rsplit(":", 1)[1], []).append(
            item["aspect"]["json"]["timestampMillis"]
        )
    assert by_run == {"parent": [0, 1, 2], "child": [10, 11]}
    dispatcher.close()


EXITING = textwrap.dedent(
    """
    import sys, time
    from datahub_airflow_listener.transport import (
        build_dispatcher, transport_factory, DispatcherConfig)
    from tests.support.fake_gms import StubMcp
    url, outbox = sys.argv[1], sys.argv[2]
    factory = transport_factory("datahub-rest", {"server": url, "timeout_sec": 30})
    d = build_dispatcher([("rest", factory)], outbox,
                         config=DispatcherConfig(exit_wait_sec=float(sys.argv[3])))
    d.short_lived = len(sys.argv) > 4
    first = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    d.submit([StubMcp(entity_urn=f"urn:li:dataProcessInstance:x{i}", seq=i)
              for i in range(first, first + 5)])
    print("submitted", flush=True)
    """
)


def run_exiting_process(url: str, outbox: Path, flush_timeout: float, *extra: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", EXITING, url, str(outbox), str(flush_timeout), *extra],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=30,
    )
    return time.monotonic() - started


def test_an_exiting_process_does_not_wait_for_a_destination_known_to_fail(
    outbox_path: Path,
) -> None:
    """Another process of the machine found the destination failing: an exiting process makes
    its events durable and leaves at once (the next sender delivers them)."""
    Outbox(outbox_path).record_health("rec", failing=True, error="connection refused")
    dispatcher, sink = recording_dispatcher(outbox_path)
    dispatcher.short_lived = True  # a task process: its shipper leaves the destination alone
    dispatcher.submit(run_events("mine", 0))
    started = time.monotonic()
    report = dispatcher.flush(10, only_own=True)
    assert time.monotonic() - started < 5.0  # it did not wait out its budget
    assert report.waiting == 2 and not sink.records
    assert Outbox(outbox_path).waiting("rec") == 2  # durable
    again = time.monotonic()
    dispatcher.flush(10, only_own=True)  # the exit handler after before_stopping: no-op
    assert time.monotonic() - again < 5.0


def test_a_short_lived_process_leaves_a_slow_destination_to_the_others(
    outbox_path: Path,
) -> None:
    Outbox(outbox_path).record_health("rec", failing=False, slow=True)
    dispatcher, sink = recording_dispatcher(outbox_path)
    dispatcher.short_lived = True
    dispatcher.submit(run_events("mine", 0))
    assert wait_until(lambda: dispatcher.outbox.waiting("rec") == 2)
    # It starts no request. Nothing to wait for: 0.3 s is three of its 0.1 s polls, time for
    # a shipper that ignored the destination's health to send the two.
    time.sleep(0.3)
    assert not sink.records
    dispatcher.short_lived = False  # a long-lived process delivers
    assert dispatcher.flush(5).ok and len(sink.records) == 2
    assert not Outbox(outbox_path).health("rec", max_age_sec=60).slow  # healthy again
    dispatcher.close()


def test_a_short_lived_process_leaving_a_destination_alone_does_not_spin(
    outbox_path: Path,
) -> None:
    """While it leaves a failing destination alone, its shipper looks at the destination's
    health once per poll, not in a busy loop (which would burn a core for the task's life)."""
    Outbox(outbox_path).record_health("rec", failing=True, error="connection refused")
    dispatcher, sink = recording_dispatcher(outbox_path)
    dispatcher.short_lived = True
    looks: list[float] = []
    known_bad = dispatcher._known_bad

    def counted(target: Any) -> bool:
        looks.append(time.monotonic())
        return known_bad(target)

    dispatcher._known_bad = counted  # type: ignore[method-assign]
    dispatcher.submit(run_events("mine", 0))
    assert wait_until(lambda: dispatcher.outbox.waiting("rec") == 2)
    started = time.monotonic()
    # Nothing to wait for: this counts how often the shipper looks during half a second
    # (0.1 s polls: a handful; a busy loop: tens of thousands).
    time.sleep(0.5)
    during = [t for t in looks if t >= started]
    assert len(during) <= 20, len(during)
    assert not sink.records
    dispatcher.close()


def test_process_exit_flushes_delivers(outbox_path: Path, gms: FakeGms) -> None:
    run_exiting_process(gms.url, outbox_path, 5.0)
    assert seqs(gms.accepted()) == [0, 1, 2, 3, 4]
    assert Outbox(outbox_path).waiting("rest") == 0


def test_a_slow_destination_is_not_sent_the_same_batch_by_each_exiting_task(
    outbox_path: Path, gms: FakeGms
) -> None:
    """Task processes that live shorter than the destination takes to answer: the first one
    exits in the middle of its request and says so; the next ones leave the destination alone
    and only make their events durable. A long-lived sender then delivers the rest once."""
    gms.delay_sec = 1.0
    for n in range(6):
        run_exiting_process(gms.url, outbox_path, 0.05, str(n * 5))
    assert Outbox(outbox_path).health("rest", max_age_sec=60).slow
    # The request the first process left behind is answered (nothing more is on its way: every
    # process has exited).
    assert wait_until(gms.idle, timeout=10)
    assert len(gms.accepted()) <= 5  # at most its one batch
    gms.delay_sec = 0.0
    dispatcher = build_dispatcher(
        [("rest", transport_factory("datahub-rest", rest_settings(gms.url)))],
        outbox_path,
        config=config(),
    )
    assert dispatcher.flush(10).ok
    dispatcher.close()
    received = [m["entityUrn"] for m in gms.accepted()]
    assert len(set(received)) == 30  # nothing lost
    assert len(received) <= 35  # the cut batch at most once again, never a storm


def test_process_exit_is_bounded_and_leaves_events_on_disk(outbox_path: Path, gms: FakeGms) -> None:
    gms.delay_sec = 20.0
    elapsed = run_exiting_process(gms.url, outbox_path, 0.5)
    assert elapsed < 10.0  # interpreter start + 0.5 s flush, never the 20 s answer
    assert Outbox(outbox_path).waiting("rest") == 5
