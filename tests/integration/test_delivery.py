"""Delivery end to end: real processes, one shared outbox, a real HTTP server on loopback.

No Airflow here: the "scheduler" is this test process and the "task processes" are Python
subprocesses using the same sender the listener uses. The fake GMS validates every request.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.transport import (
    Dispatcher,
    DispatcherConfig,
    Outbox,
    build_dispatcher,
    transport_factory,
)
from datahub_airflow_listener.transport.retry import BackoffPolicy
from tests.support.fake_gms import FakeGms, StubMcp, run_events
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-integration-7d1e0c55aa"
SINK = "conn:datahub_rest_default"


def rest_settings(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "server": url,
        "token": TOKEN,
        "timeout_sec": 5,
        "connect_timeout_sec": 1,
        "retry_max_times": 2,
        "retry_backoff_sec": 0.01,
        "retry_backoff_max_sec": 0.05,
        "retry_after_max_sec": 1,
        **extra,
    }


def scheduler_dispatcher(url: str, outbox: Path) -> Dispatcher:
    return build_dispatcher(
        [(SINK, transport_factory("datahub-rest", rest_settings(url)))],
        outbox,
        config=DispatcherConfig(
            poll_interval_sec=0.1,
            sink_backoff=BackoffPolicy(base=0.05, cap=0.2),
            register_atexit=False,
        ),
    )


@pytest.fixture
def gms() -> Iterator[FakeGms]:
    with FakeGms(token=TOKEN) as server:
        yield server


TASK_PROCESS = textwrap.dedent(
    """
    import json, sys, time
    from datahub_airflow_listener.transport import (
        build_dispatcher, transport_factory, DispatcherConfig)
    from tests.support.fake_gms import StubMcp
    settings, outbox, sink, run, events, flush_sec = (
        json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
        float(sys.argv[6]))
    d = build_dispatcher([(sink, transport_factory("datahub-rest", settings))], outbox,
                         config=DispatcherConfig(exit_wait_sec=flush_sec))
    urn = f"urn:li:dataProcessInstance:{run}"
    for i in range(events):  # one try: STARTED, progress..., COMPLETE, like a task's hooks
        status = "STARTED" if i == 0 else ("COMPLETE" if i == events - 1 else "RUNNING")
        d.submit([StubMcp(entity_urn=urn, seq=i, status=status)])
        time.sleep(0.002)
    if len(sys.argv) > 7:  # a stuck task: alive until the test kills it with SIGKILL
        print("ready", flush=True)
        time.sleep(60)  # never elapses in a passing run; bounds an orphan if the test fails
    """
)


def task_process(
    url: str, outbox: Path, run: str, events: int, flush_sec: float, *extra: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            TASK_PROCESS,
            json.dumps(rest_settings(url)),
            str(outbox),
            SINK,
            run,
            str(events),
            str(flush_sec),
            *extra,
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )


def expected_run(events: int) -> list[tuple[int, str]]:
    return [
        (i, "STARTED" if i == 0 else ("COMPLETE" if i == events - 1 else "RUNNING"))
        for i in range(events)
    ]


def dedupe(events: list[tuple[int, str]]) -> list[tuple[int, str]]:
    seen: set[tuple[int, str]] = set()
    return [e for e in events if not (e in seen or seen.add(e))]  # type: ignore[func-returns-value]


def test_a_whole_dag_run_during_an_outage_arrives_complete_and_in_order(
    gms: FakeGms, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite"
    gms.stop()  # DataHub is down for the whole DAG run
    scheduler = scheduler_dispatcher(gms.url, outbox)
    scheduler.submit([StubMcp(entity_urn="urn:li:dataProcessInstance:dagrun", seq=0)])
    tasks = [task_process(gms.url, outbox, f"task{n}", 6, 0.3) for n in range(4)]
    assert [t.wait(timeout=30) for t in tasks] == [0] * 4  # each exits after a bounded flush
    scheduler.submit(
        [StubMcp(entity_urn="urn:li:dataProcessInstance:dagrun", seq=1, status="COMPLETE")]
    )
    assert wait_until(lambda: Outbox(outbox).waiting(SINK) == 26, timeout=15)
    assert gms.accepted() == []

    gms.start()  # back up: the scheduler's sender delivers what every process left behind
    assert wait_until(lambda: len(gms.accepted()) >= 26, timeout=15)
    report = scheduler.close(timeout=2)
    assert report.waiting == 0

    delivered = run_events(gms.accepted())
    assert dedupe(delivered.pop("urn:li:dataProcessInstance:dagrun")) == [
        (0, "STARTED"),
        (1, "COMPLETE"),
    ]
    assert {urn.rsplit(":", 1)[1]: dedupe(ev) for urn, ev in delivered.items()} == {
        f"task{n}": expected_run(6) for n in range(4)
    }
    assert gms.violations == []


def test_flaky_server_with_retry_after_loses_nothing(gms: FakeGms, tmp_path: Path) -> None:
    scheduler = scheduler_dispatcher(gms.url, tmp_path / "outbox.sqlite")
    gms.fail_next(3, 503)
    gms.fail_next(2, 429, retry_after="0.1")
    gms.fail_next(2, 500)
    for n in range(30):
        scheduler.submit([StubMcp(entity_urn=f"urn:li:dataProcessInstance:r{n % 3}", seq=n)])
    assert wait_until(lambda: len(gms.accepted()) >= 30, timeout=15)
    report = scheduler.close(timeout=2)
    assert (report.waiting, report.failed) == (0, 0)
    by_run = run_events(gms.accepted())
    for r in range(3):
        assert [s for s, _ in dedupe(by_run[f"urn:li:dataProcessInstance:r{r}"])] == list(
            range(r, 30, 3)
        )
    statuses = [req.status for req in gms.ingest_requests()]
    assert statuses.count(503) == 3 and statuses.count(429) == 2 and statuses.count(500) == 2
    assert gms.violations == []


def test_a_rejected_mcp_is_logged_once_and_the_rest_delivered(
    gms: FakeGms, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = "urn:li:dataProcessInstance:bad"
    gms.reject_urns = {bad}
    scheduler = scheduler_dispatcher(gms.url, tmp_path / "outbox.sqlite")
    with caplog.at_level(logging.WARNING, logger="datahub_airflow_listener"):
        scheduler.submit(
            [StubMcp(entity_urn="urn:li:dataProcessInstance:ok", seq=i) for i in range(3)]
        )
        scheduler.submit([StubMcp(entity_urn=bad, seq=99)])
        scheduler.submit([StubMcp(entity_urn="urn:li:dataProcessInstance:ok", seq=3)])
        report = scheduler.flush(5)
    assert (report.delivered, report.failed, report.waiting) == (4, 1, 0)
    assert run_events(gms.accepted()) == {
        "urn:li:dataProcessInstance:ok": [(i, "STARTED") for i in range(4)]
    }
    lines = [r.getMessage() for r in caplog.records if bad in r.getMessage()]
    assert len(lines) == 1 and "HTTP 422" in lines[0]
    assert [d.urn for d in scheduler.outbox.dead_letters()] == [bad]
    scheduler.close()


def test_the_token_never_reaches_a_log_line_or_the_outbox(
    gms: FakeGms, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = tmp_path / "outbox.sqlite"
    scheduler = scheduler_dispatcher(gms.url, outbox)
    with caplog.at_level(logging.DEBUG):  # every logger, urllib3 included
        gms.reject_urns = {"urn:li:dataProcessInstance:bad"}
        gms.fail_next(2, 503, retry_after="0")
        scheduler.submit([StubMcp(entity_urn="urn:li:dataProcessInstance:bad", seq=1)])
        scheduler.submit([StubMcp(entity_urn="urn:li:dataProcessInstance:ok", seq=2)])
        assert scheduler.flush(5).waiting == 0
        gms.stop()
        scheduler.submit([StubMcp(entity_urn="urn:li:dataProcessInstance:ok", seq=3)])
        scheduler.flush(0.3)
        wrong = build_dispatcher(
            [(SINK, transport_factory("datahub-rest", rest_settings(gms.url, token="x" + TOKEN)))],
            tmp_path / "other.sqlite",
            config=DispatcherConfig(register_atexit=False),
        )
        gms.start()
        wrong.submit([StubMcp(entity_urn="urn:li:dataProcessInstance:ok", seq=4)])
        wrong.flush(0.5)
    assert gms.ingest_requests()[0].headers["Authorization"] == f"Bearer {TOKEN}"  # it was used
    texts = [r.getMessage() for r in caplog.records]
    texts += [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert any("refused the credentials" in t for t in texts)
    assert any("is failing" in t for t in texts)
    assert [t for t in texts if TOKEN in t] == []
    files = sorted(tmp_path.iterdir())
    assert any(f.name.endswith("-wal") for f in files)
    for file in files:
        assert TOKEN.encode() not in file.read_bytes(), file.name
    assert b"dataProcessInstance:ok" in outbox.with_name("outbox.sqlite-wal").read_bytes()
    scheduler.close(timeout=0.5)
    wrong.close(timeout=0.5)


def test_many_task_processes_ship_one_outbox_in_per_run_order(gms: FakeGms, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite"
    tasks = [task_process(gms.url, outbox, f"t{n}", 20, 5.0) for n in range(5)]
    assert [t.wait(timeout=30) for t in tasks] == [0] * 5
    assert Outbox(outbox).waiting(SINK) == 0
    by_run = run_events(gms.accepted())
    assert {urn.rsplit(":", 1)[1]: dedupe(ev) for urn, ev in by_run.items()} == {
        f"t{n}": expected_run(20) for n in range(5)
    }
    assert gms.violations == []


EXITING_SHIPPER = textwrap.dedent(
    """
    import json, sys, time
    from datahub_airflow_listener.transport import (
        build_dispatcher, transport_factory, DispatcherConfig, Outbox, WireRecord)
    from tests.support.fake_gms import StubMcp
    settings, outbox, sink = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    d = build_dispatcher([(sink, transport_factory("datahub-rest", settings))], outbox,
                         config=DispatcherConfig(exit_wait_sec=10, batch_rows=1))
    mine = "urn:li:dataProcessInstance:exiting"
    d.submit([StubMcp(entity_urn=mine, seq=0), StubMcp(entity_urn=mine, seq=1,
                                                        status="COMPLETE")])
    while Outbox(outbox).waiting(sink) < 2:  # spooled: what follows is behind it
        time.sleep(0.005)
    later, other = "urn:li:dataProcessInstance:later", Outbox(outbox)  # another process
    for i in range(30):
        status = "STARTED" if i == 0 else ("COMPLETE" if i == 29 else "RUNNING")
        other.put(sink, [WireRecord.from_wire(StubMcp(entity_urn=later, seq=i,
                                                      status=status).to_wire())])
    while Outbox(outbox).waiting(sink) > 30:  # its own are delivered, the later ones not
        time.sleep(0.005)
    """  # then exits: the atexit flush has nothing of its own left to wait for
)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_process_that_exits_while_shipping_others_events_hands_the_sink_over(
    gms: FakeGms, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite"
    gms.delay_sec = 0.05  # its shipper is still busy with the later events when it exits
    exiting = subprocess.Popen(
        [
            sys.executable,
            "-c",
            EXITING_SHIPPER,
            json.dumps(rest_settings(gms.url)),
            str(outbox),
            SINK,
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    # Not reaped yet: a zombie, as a task process is until its supervisor waits for it.
    assert wait_until(lambda: proc_state(exiting.pid) == "Z", 20)
    assert dedupe(run_events(gms.accepted())["urn:li:dataProcessInstance:exiting"]) == [
        (0, "STARTED"),
        (1, "COMPLETE"),
    ]
    gms.delay_sec = 0
    started = time.monotonic()
    task = task_process(gms.url, outbox, "next", 5, 3.0)
    assert task.wait(timeout=30) == 0
    assert time.monotonic() - started < 20  # an interpreter's start and at most its 3 s exit wait
    assert Outbox(outbox).waiting(SINK) == 0  # the next task got the sink and delivered
    events = {urn.rsplit(":", 1)[1]: dedupe(ev) for urn, ev in run_events(gms.accepted()).items()}
    assert events["later"] == expected_run(30) and events["next"] == expected_run(5)
    assert gms.violations == []
    assert exiting.wait(timeout=5) == 0


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_rows_of_a_killed_process_are_delivered_by_the_next_sender(
    gms: FakeGms, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite"
    gms.delay_sec = 30  # the task's sender is stuck in a request, holding the lease
    task = task_process(gms.url, outbox, "killed", 5, 0.5, "stay")
    try:
        assert task.stdout is not None and task.stdout.readline().strip() == "ready"
        assert wait_until(lambda: Outbox(outbox).counts(SINK).lease_holder is not None, 15)
        assert wait_until(lambda: Outbox(outbox).waiting(SINK) == 5, 15)  # durable before the kill
    finally:
        os.kill(task.pid, signal.SIGKILL)  # kill -9, as Airflow does to a stuck task
        task.wait(timeout=10)
    gms.delay_sec = 0
    scheduler = scheduler_dispatcher(gms.url, outbox)
    started = time.monotonic()
    report = scheduler.flush(40)
    assert report.waiting == 0
    # The dead holder's lease did not have to expire (60 s: the flush would have timed out).
    assert time.monotonic() - started < 30
    assert dedupe(run_events(gms.accepted())["urn:li:dataProcessInstance:killed"]) == expected_run(
        5
    )
    scheduler.close()
