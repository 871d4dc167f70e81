"""How many MCPs per second the domain serializes for a typical Airflow task run, on one core.

"Serialized" means what goes on the wire: ``MetadataChangeProposal.to_wire(...)`` and the JSON
encoding of the resulting envelope. A typical task run is the MCPs :class:`RunMapper` builds for
one try (properties, relationships, input, output, STARTED) plus its COMPLETE event.

Every MCP is a fresh object serialized exactly once, as in production (the listener builds an
MCP, the dispatcher serializes it once); so no per-object cache can flatter the figure. The MCPs
are built before the clock starts; a second figure includes building them with RunMapper.

Times are CPU time of this process (``time.process_time``), so other load on the machine
disturbs them less than wall-clock time would. ``--generic`` also times the generic serializer
(``aspect_to_dict`` + ``dumps``, what ``to_wire`` did before the compiled encoders) for comparison.

Usage: ``PYTHONPATH=. python bench/bench_serialize.py [--runs N] [--repeat R] [--generic]``.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from collections.abc import Callable

from datahub_airflow_listener.domain import mcp as mcp_module
from datahub_airflow_listener.domain.aspects import aspect_to_dict
from datahub_airflow_listener.domain.encode import aspect_to_json, dumps
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.runs import RunMapper, TaskRunFacts

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_LAST_OBSERVED = 1_767_225_600_000


def _facts(i: int) -> TaskRunFacts:
    start = 1_767_225_600_000 + i * 1000
    return TaskRunFacts(
        dag_id="sales_pipeline",
        task_id="process_sales_data",
        run_id=f"scheduled__2026-01-01T00:00:00+00:00__{i}",
        try_number=1,
        max_tries=3,
        state="success",
        operator="PythonOperator",
        pool="default_pool",
        queue="default",
        executor="CeleryExecutor",
        hostname="worker-1.example.com",
        start_ms=start,
        end_ms=start + 4321,
        upstream_task_ids=("extract_sales",),
        inlets=("urn:li:dataset:(urn:li:dataPlatform:postgres,sales_db.raw_orders,PROD)",),
        outlets=("urn:li:dataset:(urn:li:dataPlatform:postgres,sales_db.processed_orders,PROD)",),
        url="https://airflow.example.com/dags/sales_pipeline/grid?task_id=process_sales_data",
    )


def _task_run_mcps(mapper: RunMapper, i: int) -> list[MetadataChangeProposal]:
    facts = _facts(i)
    return [
        *mapper.task_run_started(facts),
        *mapper.task_run_completed(facts, "SUCCESS", "success"),
    ]


def _serialize(mcps: list[MetadataChangeProposal]) -> int:
    size = 0
    for m in mcps:
        size += len(_ENCODE(m.to_wire(run_id="airflow-listener", last_observed=_LAST_OBSERVED)))
    return size


def _best(label: str, repeat: int, work: Callable[[], tuple[int, float]]) -> float:
    rates = []
    for _ in range(repeat):
        count, seconds = work()
        rates.append(count / seconds)
    best = max(rates)
    print(f"{label:<52} {best:>10,.0f} MCPs/s   (median {sorted(rates)[len(rates) // 2]:,.0f})")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="task runs per measurement")
    parser.add_argument("--repeat", type=int, default=7, help="measurements; the best is shown")
    parser.add_argument("--generic", action="store_true", help="also time the generic path")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    mapper = RunMapper(cluster="prod")
    sample = _task_run_mcps(mapper, 0)
    wire_bytes = _serialize(sample)
    print(
        f"python {platform.python_version()}; a task run = {len(sample)} MCPs, "
        f"{wire_bytes} bytes on the wire; {args.runs} task runs x {args.repeat} measurements"
    )

    def serialize_only() -> tuple[int, float]:
        mcps = [m for i in range(args.runs) for m in _task_run_mcps(mapper, i)]
        gc.collect()
        t0 = time.process_time()
        _serialize(mcps)
        return len(mcps), time.process_time() - t0

    def build_and_serialize() -> tuple[int, float]:
        gc.collect()
        count = 0
        t0 = time.process_time()
        for i in range(args.runs):
            mcps = _task_run_mcps(mapper, i)
            _serialize(mcps)
            count += len(mcps)
        return count, time.process_time() - t0

    best = _best("serialize (to_wire + json envelope), fresh MCPs", args.repeat, serialize_only)
    print(f"{'  per MCP':<52} {1e6 / best:>10.2f} us")
    _best("build with RunMapper + serialize", args.repeat, build_and_serialize)
    if args.generic:
        compiled = aspect_to_json
        setattr(mcp_module, "aspect_to_json", lambda aspect: dumps(aspect_to_dict(aspect)))  # noqa: B010  # swap the serializer
        try:
            best = _best("generic serializer (aspect_to_dict + dumps)", args.repeat, serialize_only)
            print(f"{'  per MCP':<52} {1e6 / best:>10.2f} us")
        finally:
            setattr(mcp_module, "aspect_to_json", compiled)  # noqa: B010  # restore it


if __name__ == "__main__":
    main()
