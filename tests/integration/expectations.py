"""What the example and scenario DAGs must record, and the checks shared by both test paths.

``EXPECTED[dag_id][task_id][map_index]`` is ``{attempt: result}`` for every task try; an
attempt of ``None`` means "whatever number the closing sweep gives a task that never ran"
(its result is what matters). A result may name Airflow's state too, ``"SKIPPED:upstream_failed"``
(DataHub's result type, then ``result.nativeResultType``). ``dag_result`` is the DAG run's
COMPLETE result.

Tasks that never ran because an upstream failed are SKIPPED (they did not run, so they did not
fail) with nativeResultType ``upstream_failed``: DataHub's failure counts stay those of the
task that actually failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from tests.integration.records import Instance, Recorded

S, F, R, K = "SUCCESS", "FAILURE", "UP_FOR_RETRY", "SKIPPED"
CLUSTER: Final = "prod"


@attrs.frozen
class DagExpectation:
    dag_result: str
    tasks: Mapping[str, Mapping[int, Mapping[int | None, str]]]
    # task_id -> upstream task ids whose instances must appear in upstreamInstances
    upstream: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    # task_id -> (inputs, outputs)
    lineage: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = attrs.field(factory=dict)


def _ds(platform: str, name: str) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:{platform},{name},PROD)"


EXPECTED: Final[dict[str, DagExpectation]] = {
    "etl_orders": DagExpectation(
        dag_result=S,
        tasks={
            "extract_orders": {-1: {1: S}},
            "transform_orders": {-1: {1: S}},
            "load_revenue": {-1: {1: S}},
        },
        upstream={"transform_orders": ("extract_orders",), "load_revenue": ("transform_orders",)},
        lineage={
            "extract_orders": (
                (_ds("postgres", "shop.public.orders"), _ds("postgres", "shop.public.customers")),
                (_ds("file", "etl_orders/orders_raw.csv"),),
            ),
            "transform_orders": (
                (_ds("file", "etl_orders/orders_raw.csv"),),
                (_ds("file", "etl_orders/daily_revenue.csv"),),
            ),
            "load_revenue": (
                (_ds("file", "etl_orders/daily_revenue.csv"),),
                (_ds("sqlite", "warehouse.reporting.daily_revenue"),),
            ),
        },
    ),
    "taskflow_mapping": DagExpectation(
        dag_result=S,
        tasks={
            "list_regions": {-1: {1: S}},
            "process_region": {0: {1: S}, 1: {1: S}, 2: {1: S}},
            "summarize": {-1: {1: S}},
        },
        upstream={"process_region": ("list_regions",), "summarize": ("process_region",)},
    ),
    "flaky_retry": DagExpectation(
        dag_result=S,
        tasks={"flaky": {-1: {1: R, 2: S}}, "report": {-1: {1: S}}},
        upstream={"report": ("flaky",)},
    ),
    "branching": DagExpectation(
        dag_result=S,
        tasks={
            "choose_path": {-1: {1: S}},
            "full_refresh": {-1: {1: S}},
            "incremental_refresh": {-1: {None: K}},
            "join": {-1: {None: S}},
        },
        upstream={"full_refresh": ("choose_path",)},
    ),
    "scenario_kill9": DagExpectation(
        dag_result=F,
        tasks={"victim": {-1: {1: R, 2: F}}, "after": {-1: {None: "SKIPPED:upstream_failed"}}},
    ),
    "scenario_dagrun_timeout": DagExpectation(
        dag_result=F,
        # Airflow sets the running task to skipped when the run times out
        tasks={"quick": {-1: {1: S}}, "slow": {-1: {1: "SKIPPED:skipped"}}},
    ),
    "scenario_marked_failed": DagExpectation(
        dag_result=F,
        # marking the run failed fails the running task and skips the ones not started
        tasks={"sleeper": {-1: {1: F}}, "after": {-1: {None: "SKIPPED:skipped"}}},
    ),
    "scenario_blocked": DagExpectation(
        dag_result=F,
        # marked failed while its only task waits for a pool: the task is skipped, never ran
        tasks={"waiting": {-1: {None: "SKIPPED:skipped"}}},
    ),
    "scenario_upstream_failed": DagExpectation(
        dag_result=F,
        tasks={
            "boom": {-1: {1: F}},
            "middle": {-1: {None: "SKIPPED:upstream_failed"}},
            "last": {-1: {None: "SKIPPED:upstream_failed"}},
            "sibling": {-1: {1: S}},
        },
    ),
}


def dpi_urn(instance_id: str, cluster: str = CLUSTER) -> str:
    """The documented identity, computed here independently of the package."""
    key = json.dumps(
        {"cluster": cluster, "id": instance_id, "orchestrator": "airflow"},
        separators=(",", ":"),
        sort_keys=True,
    )
    return "urn:li:dataProcessInstance:" + hashlib.md5(key.encode()).hexdigest()


def check_dag_run(
    recorded: Recorded,
    dag_id: str,
    run_id: str,
    run_type: str,
    try_numbers: Mapping[tuple[str, int], int] | None = None,
    *,
    results: bool = True,
) -> list[str]:
    """Every rule of the issue for one DAG run; returns the violations (empty = all good).

    ``try_numbers`` -- Airflow's own final try_number per (task_id, map_index), read from its
    REST API -- switches the attempt check from the fixed numbers of :data:`EXPECTED` to
    "the results in order, the last attempt being Airflow's try_number". Under the Airflow 2
    scheduler a task that ran once can carry try_number 2 (its log is ``attempt=2.log``: the
    scheduler and the task-side mini scheduler both schedule it), and attempt must follow
    Airflow, not our table.
    """
    exp = EXPECTED[dag_id]
    problems: list[str] = []
    flows = recorded.flow_runs(dag_id, run_id)
    if len(flows) != 1:
        return [f"{dag_id}: {len(flows)} DAG-run instances for {run_id}"]
    flow = flows[0]
    flow_urn = f"urn:li:dataFlow:(airflow,{dag_id},{CLUSTER})"
    if flow.parent_template != flow_urn:
        problems.append(f"run parentTemplate {flow.parent_template} != {flow_urn}")
    if flow.parent_instance is not None:
        problems.append("a DAG run must have no parentInstance")
    want_type = "BATCH_AD_HOC" if run_type in ("manual", "backfill") else "BATCH_SCHEDULED"
    if flow.properties.get("type") != want_type:
        problems.append(f"run type {flow.properties.get('type')} != {want_type}")
    for key, want in (("run_id", run_id), ("run_type", run_type)):
        if flow.custom.get(key) != want:
            problems.append(f"run customProperties[{key}] = {flow.custom.get(key)!r} != {want!r}")
    if "airflow_version" not in flow.custom:
        problems.append("run customProperties lacks airflow_version")
    problems += _check_events(flow, {1: exp.dag_result}, f"{dag_id} run")

    seen_tasks: set[tuple[str, int]] = set()
    for task_id, by_index in exp.tasks.items():
        runs = recorded.task_runs(flow, task_id)
        got_indexes = sorted(int(r.custom.get("map_index", -1)) for r in runs)
        if got_indexes != sorted(by_index):
            problems.append(f"{task_id}: map indexes {got_indexes} != {sorted(by_index)}")
            continue
        for inst in runs:
            map_index = int(inst.custom.get("map_index", -1))
            seen_tasks.add((task_id, map_index))
            label = f"{task_id}[{map_index}]"
            expected: Mapping[int | None, str] = by_index[map_index]
            if try_numbers is not None:
                problems += _check_attempts(
                    inst, expected, try_numbers.get((task_id, map_index)), label
                )
                attempts = sorted(inst.result_by_attempt())
                if len(attempts) == len(expected):  # else _check_attempts reported it
                    expected = dict(zip(attempts, expected.values(), strict=True))
            if results:
                problems += _check_events(inst, expected, label)
            elif inst.open_attempts():
                problems.append(f"{label}: attempts left STARTED: {inst.open_attempts()}")
            job = f"urn:li:dataJob:({flow_urn},{task_id})"
            if inst.parent_template != job:
                problems.append(f"{label}: parentTemplate {inst.parent_template} != {job}")
            if map_index < 0 and inst.urn != dpi_urn(f"{dag_id}_{task_id}_{run_id}"):
                problems.append(f"{label}: urn is not the official plugin's id rule")
            for up in inst.relationships.get("upstreamInstances", []):
                if up not in recorded.instances:
                    problems.append(f"{label}: upstreamInstances names unknown instance {up}")
            for up_task in exp.upstream.get(task_id, ()):
                wanted = {u.urn for u in recorded.task_runs(flow, up_task)}
                have = set(inst.relationships.get("upstreamInstances", []))
                if not wanted or not wanted <= have:
                    problems.append(f"{label}: upstreamInstances lack {up_task}")
            if task_id in exp.lineage:
                inputs, outputs = exp.lineage[task_id]
                if sorted(inst.inputs) != sorted(inputs):
                    problems.append(f"{label}: inputs {inst.inputs} != {list(inputs)}")
                if sorted(inst.outputs) != sorted(outputs):
                    problems.append(f"{label}: outputs {inst.outputs} != {list(outputs)}")
    extra = [
        i.urn
        for i in recorded.task_runs(flow)
        if (i.parent_template or "").rsplit(",", 1)[-1][:-1] not in exp.tasks
    ]
    if extra:
        problems.append(f"unexpected task instances {extra}")
    return problems


def _check_attempts(
    inst: Instance, want: Mapping[int | None, str], try_number: int | None, label: str
) -> list[str]:
    """The last recorded attempt is Airflow's try_number; as many attempts as expected."""
    attempts = sorted(inst.result_by_attempt())
    if len(attempts) != len(want):
        return [f"{label}: {len(attempts)} closed attempts, expected {len(want)}"]
    if None not in want and try_number is not None and attempts and attempts[-1] != try_number:
        return [f"{label}: last attempt {attempts[-1]} != Airflow's try_number {try_number}"]
    return []


def _check_events(inst: Instance, want: Mapping[int | None, str], label: str) -> list[str]:
    problems: list[str] = []
    natives = {
        int(e.get("attempt", 0)): e.get("result", {}).get("nativeResultType")
        for e in inst.completed()
    }
    results: dict[int, str] = {}
    for attempt, result in inst.result_by_attempt().items():
        expected = want.get(attempt, want.get(None, ""))
        results[attempt] = f"{result}:{natives[attempt]}" if ":" in expected else result
    if None in want:
        if len(results) != 1:
            problems.append(f"{label}: expected one closed attempt, got {results}")
        elif next(iter(results.values())) != want[None]:
            problems.append(f"{label}: result {results} != {want[None]}")
    elif results != dict(want):
        problems.append(f"{label}: results by attempt {results} != {dict(want)}")
    if inst.open_attempts():
        problems.append(f"{label}: attempts left STARTED without COMPLETE: {inst.open_attempts()}")
    for event in inst.completed():
        if "durationMillis" not in event:
            problems.append(
                f"{label}: COMPLETE of attempt {event.get('attempt')} lacks durationMillis"
            )
        if not event.get("result", {}).get("nativeResultType"):
            problems.append(f"{label}: COMPLETE lacks result.nativeResultType")
    started_at = {e.get("attempt"): e["timestampMillis"] for e in inst.started()}
    for event in inst.completed():
        start = started_at.get(event.get("attempt"))
        if start is not None and start >= event["timestampMillis"]:
            problems.append(f"{label}: COMPLETE not after STARTED (same timestamp overwrites)")
    for event in inst.started():
        if "attempt" not in event:
            problems.append(f"{label}: STARTED lacks attempt")
    return problems


# -- the acryl-datahub oracle ---------------------------------------------------------------------

_ORACLE_SCRIPT = """
import json, sys
from tests.compat.compat_oracle import assert_round_trips
errors = []
for mcp in json.load(sys.stdin):
    try:
        assert_round_trips(mcp)
    except Exception as exc:  # report every MCP, not just the first
        errors.append(f"{mcp['aspectName']} {mcp['entityUrn']}: {type(exc).__name__}: {exc}")
print(json.dumps(errors))
"""


def oracle_errors(mcps: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """What acryl-datahub (the test oracle, in its own interpreter: ``$DHAL_ORACLE_PYTHON``)
    says of each MCP: parse, validate, round-trip. None when no such interpreter exists."""
    python = Path(os.environ.get("DHAL_ORACLE_PYTHON", "/tmp/venvs/dh/bin/python"))
    if not python.exists():
        return None
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [str(python), "-c", _ORACLE_SCRIPT],
        input=json.dumps(list(mcps)),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        return [f"the oracle failed: {proc.stderr[-3000:]}"]
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))
