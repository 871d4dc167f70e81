"""Delivery benchmark: hook-side cost and throughput, ours against the reference emitter.

Prints, measured in one run:

(a) the time spent inside ``Dispatcher.submit`` -- what a listener hook call pays -- p50/p99/max,
    with the fake GMS healthy, answering after 5 s, and down;
(b) delivery throughput (MCPs/second) to the fake GMS on loopback: end to end (submit ->
    outbox -> HTTP -> accepted) and for the REST transport alone;
(c) the same figures for acryl-datahub's ``DatahubRestEmitter`` (``emit_mcps`` called in the
    hook, as the reference plugin does) when ``datahub`` is importable.

The fake GMS runs in its own process (``python -m tests.support.fake_gms``) so it does not
compete with the measured code for the GIL. Run from the repository root::

    PYTHONPATH=. /tmp/venvs/dh/bin/python bench/bench_delivery.py          # with (c)
    PYTHONPATH=. /tmp/venvs/transport/bin/python bench/bench_delivery.py   # ours only

Targets: p99 <= 1 ms in all three cases, >= 20,000 MCPs/s. Figures only, no asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datahub_airflow_listener.transport import (  # noqa: E402  # after the path setup
    DispatcherConfig,
    Outbox,
    WireRecord,
    build_dispatcher,
    transport_factory,
)
from datahub_airflow_listener.transport.rest import RestConfig, RestTransport  # noqa: E402

SLOW_SEC = 5.0


# ---------------------------------------------------------------------- the fake GMS process


class FakeGmsProcess:
    """The fake GMS in a child process, driven over HTTP (``/__control``, ``/__stats``)."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_gms", "--port", "0", "--no-keep"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        self.port = int(line[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._session = requests.Session()

    def control(self, **settings: Any) -> None:
        self._session.post(f"{self.url}/__control", data=json.dumps(settings), timeout=5)

    def accepted(self) -> int:
        stats = self._session.get(f"{self.url}/__stats", timeout=5).json()
        if stats["violations"]:
            print("  !! fake GMS saw protocol violations:", stats["violations"][:3])
        return int(stats["accepted"])

    def wait_accepted(self, count: int, timeout: float) -> float:
        """When ``count`` MCPs were accepted: one request the server answers then (no polling,
        which would take the GIL from the sender being measured)."""
        stats = self._session.get(
            f"{self.url}/__stats",
            params={"wait_for": count, "timeout": timeout},
            timeout=timeout + 5,
        ).json()
        done = time.perf_counter()
        if stats["accepted"] < count:
            raise TimeoutError(f"only {stats['accepted']} of {count} MCPs arrived in {timeout}s")
        return done

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def dead_address() -> str:
    """An address where nothing listens (connection refused): a GMS that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------- workload


def hook_calls(count: int) -> list[list[Any]]:
    """MCP lists as listener hooks produce them: task started (3 MCPs), task finished (1)."""
    try:
        from datahub_airflow_listener.domain.runs import RunMapper, TaskRunFacts
    except ImportError:  # the domain is optional for this benchmark
        from tests.support.fake_gms import StubMcp

        return [
            [StubMcp(entity_urn=f"urn:li:dataProcessInstance:b{i // 2}", seq=i)]
            for i in range(count)
        ]
    mapper = RunMapper()
    calls: list[list[Any]] = []
    for i in range(count):
        facts = TaskRunFacts(
            dag_id="bench_dag",
            task_id=f"task_{i // 2 % 500}",
            run_id=f"scheduled__2024-01-01T00:{i // 1000:02d}:00+00:00",
            try_number=1,
            max_tries=1,
            state="running" if i % 2 == 0 else "success",
            operator="PythonOperator",
            pool="default_pool",
            queue="default",
            hostname="worker-1",
            start_ms=1_700_000_000_000 + i,
            end_ms=None if i % 2 == 0 else 1_700_000_000_500 + i,
        )
        if i % 2 == 0:
            calls.append(list(mapper.task_run_started(facts)))
        else:
            calls.append(list(mapper.task_run_completed(facts, "SUCCESS", "success")))
    return calls


def percentiles(samples_ns: Sequence[int]) -> str:
    ordered = sorted(samples_ns)
    n = len(ordered)

    def pick(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] / 1000.0

    return (
        f"p50 {pick(0.50):8.1f} us   p99 {pick(0.99):8.1f} us   max {ordered[-1] / 1000.0:9.1f} us"
        f"   (n={n})"
    )


def paced(
    calls: Sequence[list[Any]], submit: Callable[[list[Any]], Any], gap_sec: float
) -> list[int]:
    samples = []
    for mcps in calls:
        start = time.perf_counter_ns()
        submit(mcps)
        samples.append(time.perf_counter_ns() - start)
        if gap_sec:
            time.sleep(gap_sec)
    return samples


# ---------------------------------------------------------------------- ours


def our_dispatcher(server: str, workdir: str, name: str) -> Any:
    factory = transport_factory("datahub-rest", {"server": server})
    return build_dispatcher(
        [("bench", factory)],
        Path(workdir) / f"{name}.sqlite",
        config=DispatcherConfig(register_atexit=False),
    )


def ours_hook_cost(gms: FakeGmsProcess, workdir: str, calls: int, gap: float) -> None:
    print("(a) time inside submit() (our listener's hook-side cost)")
    workload = hook_calls(calls)
    for label, server, slow in (
        ("healthy", gms.url, 0.0),
        (f"answers after {SLOW_SEC:.0f} s", gms.url, SLOW_SEC),
        ("down", dead_address(), 0.0),
    ):
        gms.control(delay_sec=slow, reset=True)
        dispatcher = our_dispatcher(server, workdir, f"hook-{label[:4]}")
        samples = paced(workload, dispatcher.submit, gap)
        time.sleep(0.2)
        counts = dispatcher.counts()
        report = dispatcher.close(timeout=0.5)
        print(
            f"  {label:<20} {percentiles(samples)}   first call {samples[0] / 1000:.0f} us   "
            f"delivered {report.delivered}, on disk {counts.waiting}"
        )
    gms.control(delay_sec=0.0, reset=True)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def ours_throughput(gms: FakeGmsProcess, workdir: str, hook_count: int) -> None:
    print("(b) delivery throughput to the loopback fake GMS (ours)")
    workload = hook_calls(hook_count)
    total = sum(len(c) for c in workload)

    # 1. Live: hooks submit as fast as they can; the sender serializes, spools and ships.
    gms.control(reset=True)
    dispatcher = our_dispatcher(gms.url, workdir, "throughput")
    dispatcher.submit(workload[0][:1])  # start the threads and the HTTP session off the clock
    gms.wait_accepted(1, 10)
    gms.control(reset=True)
    cpu, start = cpu_seconds(), time.perf_counter()
    for mcps in workload:
        dispatcher.submit(mcps)
    done = gms.wait_accepted(total, 300)
    cpu = cpu_seconds() - cpu
    dispatcher.close(timeout=1)
    print(
        f"  end to end, live (submit -> outbox -> GMS): {total / (done - start):8,.0f} MCPs/s "
        f"({total} MCPs in {done - start:.2f} s; {cpu / total * 1e6:.0f} us CPU per MCP)"
    )

    # 2. Catching up: the backlog an outage left in the outbox, shipped when GMS is back.
    outbox = Path(workdir) / "backlog.sqlite"
    records = [WireRecord.from_wire(m.to_wire(last_observed=1)) for c in workload for m in c]
    Outbox(outbox, max_rows=len(records) + 1).put("bench", records)
    gms.control(reset=True)
    dispatcher = build_dispatcher(
        [("bench", transport_factory("datahub-rest", {"server": gms.url}))],
        outbox,
        config=DispatcherConfig(register_atexit=False),
    )
    cpu, start = cpu_seconds(), time.perf_counter()
    report = dispatcher.flush(300)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    dispatcher.close(timeout=1)
    print(
        f"  backlog drain (outbox -> GMS):              {report.delivered / elapsed:8,.0f} MCPs/s "
        f"({report.delivered} MCPs in {elapsed:.2f} s; {cpu / total * 1e6:.0f} us CPU per MCP)"
    )

    # 3. The REST transport alone, records already serialized.
    transport = RestTransport(RestConfig(server=gms.url))
    gms.control(reset=True)
    start = time.perf_counter()
    emitted = transport.emit_records(records)
    elapsed = time.perf_counter() - start
    transport.close()
    print(
        f"  REST transport alone (pre-serialized):      {emitted.delivered / elapsed:8,.0f} MCPs/s "
        f"({emitted.delivered} MCPs in {elapsed:.2f} s)"
    )


# ---------------------------------------------------------------------- the reference emitter


def reference_mcps(calls: Sequence[list[Any]]) -> list[list[Any]]:
    """The same MCPs as acryl-datahub objects (MetadataChangeProposalWrapper + aspect class)."""
    from datahub.emitter.mcp import MetadataChangeProposalWrapper
    from datahub.metadata.schema_classes import ASPECT_NAME_MAP

    out = []
    for mcps in calls:
        converted = []
        for mcp in mcps:
            wire = mcp.to_wire()
            aspect = ASPECT_NAME_MAP[wire["aspectName"]].from_obj(
                json.loads(wire["aspect"]["value"])
            )
            converted.append(
                MetadataChangeProposalWrapper(entityUrn=wire["entityUrn"], aspect=aspect)
            )
        out.append(converted)
    return out


def reference(gms: FakeGmsProcess, calls: int, gap: float, hook_count: int) -> None:
    try:
        from datahub.emitter.rest_emitter import DatahubRestEmitter
    except ImportError:
        print("(c) acryl-datahub is not importable here: reference figures skipped")
        return
    import logging

    logging.getLogger("datahub").setLevel(logging.CRITICAL)

    def emitter(server: str) -> Any:
        return DatahubRestEmitter(gms_server=server, openapi_ingestion=False)

    print("(c) reference: acryl-datahub DatahubRestEmitter.emit_mcps called in the hook")
    workload = reference_mcps(hook_calls(calls))
    for label, server, slow, count in (
        ("healthy", gms.url, 0.0, len(workload)),
        (f"answers after {SLOW_SEC:.0f} s", gms.url, SLOW_SEC, 2),
        ("down", dead_address(), 0.0, 1),
    ):
        gms.control(delay_sec=slow, reset=True)
        emit = emitter(server)

        def call(mcps: list[Any], emit: Any = emit) -> None:
            with contextlib.suppress(Exception):  # a failing emit still cost the hook its time
                emit.emit_mcps(mcps)

        samples = paced(workload[:count], call, gap)
        print(f"  {label:<20} {percentiles(samples)}")
    gms.control(delay_sec=0.0, reset=True)
    big = [m for c in reference_mcps(hook_calls(min(hook_count, 8000))) for m in c]
    emit = emitter(gms.url)
    emit.emit_mcps(big[:1])
    gms.control(reset=True)
    start = time.perf_counter()
    emit.emit_mcps(big)
    elapsed = time.perf_counter() - start
    print(
        f"  throughput, one emit_mcps of {len(big)} MCPs: {len(big) / elapsed:10,.0f} MCPs/s "
        f"({elapsed:.2f} s)"
    )
    per_call = reference_mcps(hook_calls(min(hook_count, 2000)))
    n = sum(len(c) for c in per_call)
    start = time.perf_counter()
    for mcps in per_call:
        emit.emit_mcps(mcps)
    elapsed = time.perf_counter() - start
    print(f"  throughput, emit_mcps per hook call:   {n / elapsed:10,.0f} MCPs/s ({n} MCPs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="hook calls per latency case")
    parser.add_argument("--gap-ms", type=float, default=1.0, help="pause between hook calls")
    parser.add_argument("--hooks", type=int, default=30000, help="hook calls for throughput")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    gms = FakeGmsProcess()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            version = sys.version.split()[0]
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"python {version}, {os.cpu_count()} CPUs, load average {load} (other work)")
            ours_hook_cost(gms, workdir, args.calls, args.gap_ms / 1000)
            ours_throughput(gms, workdir, args.hooks)
            if not args.skip_reference:
                reference(gms, min(args.calls, 300), args.gap_ms / 1000, args.hooks)
    finally:
        gms.close()


if __name__ == "__main__":
    main()
