"""Run-history test data: real example-DAG runs, and small synthetic scenarios.

``data/example_dag_runs.json`` is the ``export`` of a local store filled by real Airflow 3.3
``airflow dags test`` runs of the four DAGs in ``dags_examples/`` (three runs each), exactly as
the plugin recorded them. :func:`rebased` moves its times so that tests about ages ("older
than N days") do not depend on when the data was recorded or when the tests run.

The synthetic scenarios are built with the domain's :class:`RunMapper`, so they have the
shape the listener emits, with chosen results and times.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datahub_airflow_listener.domain.mcp import MetadataChangeProposal, file_form_to_wire
from datahub_airflow_listener.domain.runs import DagRunFacts, RunMapper, TaskRunFacts

EXAMPLE_RUNS = Path(__file__).resolve().parent / "data" / "example_dag_runs.json"
EXAMPLE_DAGS = {"etl_orders": 3, "taskflow_mapping": 3, "flaky_retry": 3, "branching": 3}
DAY_MS = 86_400_000
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
MAPPER = RunMapper()


def example_mcps() -> list[dict[str, Any]]:
    """The real runs, file form (as ``export`` wrote them)."""
    data: list[dict[str, Any]] = json.loads(EXAMPLE_RUNS.read_text())
    return data


def example_wire() -> list[dict[str, Any]]:
    """The real runs, wire form (as the local store holds them)."""
    return [file_form_to_wire(m) for m in example_mcps()]


def _aspect(mcp: dict[str, Any]) -> dict[str, Any]:
    aspect = mcp["aspect"]
    return aspect["json"] if "json" in aspect else json.loads(aspect["value"])


def newest_ms(mcps: Iterable[dict[str, Any]]) -> int:
    return max(
        _aspect(m)["timestampMillis"]
        for m in mcps
        if m["aspectName"] == "dataProcessInstanceRunEvent"
    )


def rebased(mcps: list[dict[str, Any]], newest: int) -> list[dict[str, Any]]:
    """A copy (file form) with every time shifted so the newest run event is at ``newest``."""
    delta = newest - newest_ms(mcps)
    out = []
    for mcp in mcps:
        item = copy.deepcopy(mcp)
        if "value" in item["aspect"]:
            item["aspect"] = {"json": json.loads(item["aspect"]["value"])}
        value = item["aspect"]["json"]
        if "timestampMillis" in value:
            value["timestampMillis"] += delta
        if isinstance(value.get("created"), dict) and "time" in value["created"]:
            value["created"]["time"] += delta
        for edge_key in ("inputEdges", "outputEdges"):
            for edge in value.get(edge_key) or []:
                if isinstance(edge.get("created"), dict):
                    edge["created"]["time"] += delta
        system = item.get("systemMetadata")
        if isinstance(system, dict) and "lastObserved" in system:
            system["lastObserved"] += delta
        out.append(item)
    return out


def wire(mcps: Iterable[MetadataChangeProposal], *, observed: int = T0) -> list[dict[str, Any]]:
    return [m.to_wire(run_id="test", last_observed=observed) for m in mcps]


def dag_run(
    dag_id: str,
    run_id: str,
    start: int,
    tasks: Iterable[tuple[str, list[tuple[int, int, str]]]] = (),
    *,
    result: str | None = "SUCCESS",
    end: int | None = None,
    mapper: RunMapper = MAPPER,
    inlets: tuple[str, ...] = (),
    outlets: tuple[str, ...] = (),
) -> list[MetadataChangeProposal]:
    """MCPs of one DAG run. ``tasks``: (task_id or "task[i]", [(start, end, result), ...] per try).

    A try with result "" is still running (no COMPLETE); ``result`` None: the DAG run too.
    """
    facts = DagRunFacts(dag_id=dag_id, run_id=run_id, run_type="scheduled", start_ms=start)
    out = list(mapper.dag_run_started(facts))
    last_end = start
    for label, tries in tasks:
        task_id, _, index = label.partition("[")
        map_index = int(index.rstrip("]")) if index else -1
        for number, (t_start, t_end, t_result) in enumerate(tries, start=1):
            task = TaskRunFacts(
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                map_index=map_index,
                try_number=number,
                state="running",
                start_ms=t_start,
                end_ms=t_end,
                inlets=inlets,
                outlets=outlets,
            )
            out.extend(mapper.task_run_started(task))
            if t_result:
                out.extend(mapper.task_run_completed(task, t_result, t_result.lower()))
            last_end = max(last_end, t_end)
    if result is not None:
        done = DagRunFacts(
            dag_id=dag_id,
            run_id=run_id,
            run_type="scheduled",
            start_ms=start,
            end_ms=end if end is not None else last_end + 10,
        )
        out.extend(mapper.dag_run_completed(done, result))
    return out


def daily_runs(dag_id: str, days: int, *, first: int = T0) -> list[MetadataChangeProposal]:
    """``days`` daily runs of a two-task DAG (``extract`` then ``load``), one per day."""
    out: list[MetadataChangeProposal] = []
    for day in range(days):
        start = first + day * DAY_MS
        out.extend(
            dag_run(
                dag_id,
                f"scheduled__day{day:03d}",
                start,
                [
                    ("extract", [(start + 100, start + 1100, "SUCCESS")]),
                    ("load", [(start + 1200, start + 1700 + day, "SUCCESS")]),
                ],
            )
        )
    return out
