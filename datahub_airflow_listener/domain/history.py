"""Run history rebuilt from process-instance MCPs: DAG run -> task runs -> attempts.

Pure (stdlib + attrs). The input is MCP dicts in either form DataHub knows -- the Rest.li
envelope (``"aspect": {"value": "<json>"}``, as the local store keeps it) or the file form
(``"aspect": {"json": {...}}``, as the GMS read side rebuilds it) -- so the local store and a
GMS answer the same questions with the same code:

* :func:`collect_instances` folds MCPs into one :class:`InstanceRecord` per process-instance
  urn (latest versioned aspect wins, run events accumulate, ``status.removed`` is honoured);
* :func:`build_history` turns records into :class:`DagRun` trees, newest first; task runs whose
  DAG-run instance was never recorded (e.g. history of the official plugin) hang under a
  placeholder DAG run so nothing is hidden;
* :func:`select_runs` filters by DAG, task, result and time window.

What is computed over the history lives beside it: statistics in
:mod:`~datahub_airflow_listener.domain.stats`, retention in
:mod:`~datahub_airflow_listener.domain.retention`.

Definitions the tree rests on:

* An attempt is the run events sharing an ``attempt`` number. Its result is the latest
  COMPLETE's, unless a later STARTED re-opened it (a cleared DAG run restarts attempt 1).
  An attempt without COMPLETE is ``RUNNING``.
* A task run's result is its last attempt's; its duration is the last attempt's duration
  (what the task took when it ran to its end).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from datahub_airflow_listener.domain.errors import InvalidUrnError

# Re-exported: the adapter's config imports the sampling decision from here.
from datahub_airflow_listener.domain.sampling import sampled_in
from datahub_airflow_listener.domain.urns import DataFlowUrn, DataJobUrn, parse_urn

__all__ = [
    "FINAL_RESULTS",
    "RESULTS",
    "RUNNING",
    "Attempt",
    "DagRun",
    "InstanceRecord",
    "RunEvent",
    "TaskRun",
    "attempts_of",
    "build_history",
    "collect_instances",
    "dag_id_of_flow",
    "dag_ids",
    "sampled_in",
    "select_runs",
]

RUNNING: Final = "RUNNING"
RESULTS: Final = ("SUCCESS", "FAILURE", "SKIPPED", "UP_FOR_RETRY", RUNNING)
FINAL_RESULTS: Final = frozenset({"SUCCESS", "FAILURE", "SKIPPED"})
DPI_PREFIX: Final = "urn:li:dataProcessInstance:"
FLOW_PREFIX: Final = "urn:li:dataFlow:"
JOB_PREFIX: Final = "urn:li:dataJob:"

# -- records -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RunEvent:
    """One ``dataProcessInstanceRunEvent``."""

    timestamp_ms: int
    status: str
    attempt: int = 1
    result: str | None = None
    native_result: str | None = None
    duration_ms: int | None = None
    external_url: str | None = None

    @classmethod
    def from_aspect(cls, value: Mapping[str, Any]) -> RunEvent:
        result = value.get("result") if isinstance(value.get("result"), Mapping) else {}
        duration = value.get("durationMillis")
        return cls(
            timestamp_ms=int(value.get("timestampMillis") or 0),
            status=str(value.get("status") or ""),
            attempt=int(value.get("attempt") or 1),
            result=result.get("type") if result else None,
            native_result=result.get("nativeResultType") if result else None,
            duration_ms=int(duration) if isinstance(duration, int | float) else None,
            external_url=value.get("externalUrl"),
        )


@attrs.frozen(kw_only=True)
class InstanceRecord:
    """Everything recorded for one process instance.

    ``kind`` is ``dag_run`` (parent template a DataFlow), ``task_run`` (a DataJob) or
    ``other``. ``dag_id``/``task_id``/``run_id``/``map_index`` come from the properties the
    listener writes, the DataFlow/DataJob urn filling what is missing.
    """

    urn: str
    kind: str
    template_urn: str | None = None
    parent_instance: str | None = None
    name: str | None = None
    custom: Mapping[str, str] = attrs.field(factory=dict)
    created_ms: int | None = None
    process_type: str | None = None
    external_url: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    removed: bool = False
    events: tuple[RunEvent, ...] = ()
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int = -1

    @property
    def start_ms(self) -> int | None:
        """When it (last) started: the first STARTED event, else its creation time."""
        started = [e.timestamp_ms for e in self.events if e.status == "STARTED"]
        if started:
            return min(started)
        if self.created_ms is not None:
            return self.created_ms
        ends = [e.timestamp_ms - (e.duration_ms or 0) for e in self.events]
        return min(ends) if ends else None


def _aspect_value(mcp: Mapping[str, Any]) -> dict[str, Any] | None:
    aspect = mcp.get("aspect")
    if not isinstance(aspect, Mapping):
        return None
    if "json" in aspect:
        value = aspect["json"]
    elif "value" in aspect:
        raw = aspect["value"]
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return None
    else:
        return None
    return dict(value) if isinstance(value, Mapping) else None


def _flow_parts(urn: str) -> tuple[str, str] | None:
    """(flow_id, cluster) of a dataFlow urn (or of a dataJob's flow), else None."""
    try:
        parsed = parse_urn(urn)
    except InvalidUrnError:
        return None
    if isinstance(parsed, DataJobUrn):
        parsed = parsed.flow_urn
    if isinstance(parsed, DataFlowUrn):
        return parsed.flow_id, parsed.cluster
    return None


def _job_id(urn: str) -> str | None:
    try:
        parsed = parse_urn(urn)
    except InvalidUrnError:
        return None
    return parsed.job_id if isinstance(parsed, DataJobUrn) else None


def dag_id_of_flow(flow_urn: str, platform_instance: str | None = None) -> str | None:
    """The DAG id in a DataFlow (or DataJob) urn, without the platform-instance prefix."""
    parts = _flow_parts(flow_urn)
    if parts is None:
        return None
    flow_id = parts[0]
    if platform_instance and flow_id.startswith(f"{platform_instance}."):
        return flow_id[len(platform_instance) + 1 :]
    return flow_id


@attrs.define
class _Acc:
    aspects: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    events: dict[tuple[int, str, int], RunEvent] = attrs.field(factory=dict)


def collect_instances(
    mcps: Iterable[Mapping[str, Any]], *, platform_instance: str | None = None
) -> dict[str, InstanceRecord]:
    """One record per process-instance urn, in first-seen order.

    Later versioned aspects replace earlier ones (input order is delivery order); identical
    run events (re-delivery) count once. MCPs of other entities are ignored.
    """
    accs: dict[str, _Acc] = {}
    for mcp in mcps:
        urn = mcp.get("entityUrn")
        if not isinstance(urn, str) or not urn.startswith(DPI_PREFIX):
            continue
        value = _aspect_value(mcp)
        if value is None:
            continue
        acc = accs.setdefault(urn, _Acc())
        name = str(mcp.get("aspectName") or "")
        if name == "dataProcessInstanceRunEvent":
            event = RunEvent.from_aspect(value)
            acc.events[(event.timestamp_ms, event.status, event.attempt)] = event
        else:
            acc.aspects[name] = value
    return {urn: _record(urn, acc, platform_instance) for urn, acc in accs.items()}


def _record(urn: str, acc: _Acc, platform_instance: str | None) -> InstanceRecord:
    props = acc.aspects.get("dataProcessInstanceProperties", {})
    rel = acc.aspects.get("dataProcessInstanceRelationships", {})
    template = rel.get("parentTemplate")
    custom = {str(k): str(v) for k, v in (props.get("customProperties") or {}).items()}
    kind = "other"
    dag_id = custom.get("dag_id")
    task_id = custom.get("task_id")
    if isinstance(template, str) and template.startswith(FLOW_PREFIX):
        kind = "dag_run"
        dag_id = dag_id or dag_id_of_flow(template, platform_instance)
    elif isinstance(template, str) and template.startswith(JOB_PREFIX):
        kind = "task_run"
        dag_id = dag_id or dag_id_of_flow(template, platform_instance)
        task_id = task_id or _job_id(template)
    created = (props.get("created") or {}).get("time")
    try:
        map_index = int(custom.get("map_index", -1))
    except ValueError:
        map_index = -1
    events = tuple(sorted(acc.events.values(), key=lambda e: (e.timestamp_ms, e.status)))
    return InstanceRecord(
        urn=urn,
        kind=kind,
        template_urn=template if isinstance(template, str) else None,
        parent_instance=rel.get("parentInstance"),
        name=props.get("name"),
        custom=custom,
        created_ms=int(created) if isinstance(created, int) else None,
        process_type=props.get("type"),
        external_url=props.get("externalUrl"),
        inputs=tuple(acc.aspects.get("dataProcessInstanceInput", {}).get("inputs") or ()),
        outputs=tuple(acc.aspects.get("dataProcessInstanceOutput", {}).get("outputs") or ()),
        removed=bool(acc.aspects.get("status", {}).get("removed", False)),
        events=events,
        dag_id=dag_id,
        task_id=task_id,
        run_id=custom.get("run_id") or (props.get("name") if kind == "dag_run" else None),
        map_index=map_index,
    )


# -- the tree ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Attempt:
    """One try: its start, end, duration and result (None while it runs)."""

    number: int
    start_ms: int | None = None
    end_ms: int | None = None
    duration_ms: int | None = None
    result: str | None = None
    native_result: str | None = None
    external_url: str | None = None

    @property
    def status(self) -> str:
        return "COMPLETE" if self.result else "STARTED"

    @property
    def outcome(self) -> str:
        """The result, or RUNNING."""
        return self.result or RUNNING


def attempts_of(events: Sequence[RunEvent]) -> tuple[Attempt, ...]:
    """Group run events into attempts (see the module docstring), ordered by number."""
    by_number: dict[int, list[RunEvent]] = {}
    for event in events:
        by_number.setdefault(event.attempt, []).append(event)
    out = []
    for number in sorted(by_number):
        group = sorted(by_number[number], key=lambda e: e.timestamp_ms)
        started = [e for e in group if e.status == "STARTED"]
        complete = [e for e in group if e.status == "COMPLETE"]
        last_start = started[-1] if started else None
        last_done = complete[-1] if complete else None
        if last_start and last_done and last_done.timestamp_ms < last_start.timestamp_ms:
            last_done = None  # re-opened (a cleared run started again)
        start = last_start.timestamp_ms if last_start else None
        end = last_done.timestamp_ms if last_done else None
        duration = last_done.duration_ms if last_done else None
        if duration is None and start is not None and end is not None:
            duration = max(end - start, 0)
        if start is None and end is not None:
            start = end - duration if duration is not None else None
        out.append(
            Attempt(
                number=number,
                start_ms=start,
                end_ms=end,
                duration_ms=duration,
                result=last_done.result if last_done else None,
                native_result=last_done.native_result if last_done else None,
                external_url=(last_done or last_start or group[-1]).external_url,
            )
        )
    return tuple(out)


@attrs.frozen(kw_only=True)
class TaskRun:
    """One task (or one mapped index of it) in one DAG run, with its attempts."""

    urn: str
    dag_id: str
    task_id: str
    run_id: str | None
    map_index: int = -1
    job_urn: str | None = None
    parent_instance: str | None = None
    attempts: tuple[Attempt, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    external_url: str | None = None
    removed: bool = False
    created_ms: int | None = None

    @property
    def label(self) -> str:
        return f"{self.task_id}[{self.map_index}]" if self.map_index >= 0 else self.task_id

    @property
    def result(self) -> str:
        return self.attempts[-1].outcome if self.attempts else RUNNING

    @property
    def start_ms(self) -> int | None:
        starts = [a.start_ms for a in self.attempts if a.start_ms is not None]
        return min(starts) if starts else self.created_ms

    @property
    def end_ms(self) -> int | None:
        return self.attempts[-1].end_ms if self.attempts else None

    @property
    def duration_ms(self) -> int | None:
        return self.attempts[-1].duration_ms if self.attempts else None


@attrs.frozen(kw_only=True)
class DagRun:
    """One DAG run and its task runs. ``recorded`` False: a placeholder for task runs whose
    DAG-run instance is not in the source (``urn`` is then the parent urn they name, if any)."""

    urn: str | None
    dag_id: str
    run_id: str | None
    flow_urn: str | None = None
    run_type: str | None = None
    logical_date: str | None = None
    attempts: tuple[Attempt, ...] = ()
    task_runs: tuple[TaskRun, ...] = ()
    external_url: str | None = None
    recorded: bool = True
    removed: bool = False
    created_ms: int | None = None

    @property
    def result(self) -> str:
        if self.attempts:
            return self.attempts[-1].outcome
        if not self.recorded and self.task_runs:
            results = {t.result for t in self.task_runs}
            if RUNNING in results or "UP_FOR_RETRY" in results:
                return RUNNING
            return "FAILURE" if "FAILURE" in results else "SUCCESS"
        return RUNNING

    @property
    def start_ms(self) -> int | None:
        if self.attempts and self.attempts[-1].start_ms is not None:
            return self.attempts[-1].start_ms
        starts = [t.start_ms for t in self.task_runs if t.start_ms is not None]
        return min(starts) if starts else self.created_ms

    @property
    def end_ms(self) -> int | None:
        if self.attempts:
            return self.attempts[-1].end_ms
        ends = [t.end_ms for t in self.task_runs]
        return max(e for e in ends if e is not None) if ends and None not in ends else None

    @property
    def duration_ms(self) -> int | None:
        if self.attempts:
            return self.attempts[-1].duration_ms
        start, end = self.start_ms, self.end_ms
        return end - start if start is not None and end is not None else None


def _task_run(record: InstanceRecord) -> TaskRun:
    return TaskRun(
        urn=record.urn,
        dag_id=record.dag_id or "?",
        task_id=record.task_id or (record.name or record.urn),
        run_id=record.run_id,
        map_index=record.map_index,
        job_urn=record.template_urn,
        parent_instance=record.parent_instance,
        attempts=attempts_of(record.events),
        inputs=record.inputs,
        outputs=record.outputs,
        external_url=record.external_url,
        removed=record.removed,
        created_ms=record.created_ms,
    )


def _sort_key_newest(run: DagRun) -> tuple[int, str]:
    start = run.start_ms
    return (-(start if start is not None else -1), run.run_id or "")


def build_history(
    records: Mapping[str, InstanceRecord] | Iterable[Mapping[str, Any]],
    *,
    platform_instance: str | None = None,
) -> list[DagRun]:
    """DAG runs with their task runs, newest first. Accepts records or raw MCP dicts."""
    if not isinstance(records, Mapping):
        records = collect_instances(records, platform_instance=platform_instance)
    dag_records = {u: r for u, r in records.items() if r.kind == "dag_run"}
    children: dict[str, list[TaskRun]] = {}
    orphans: dict[tuple[str, str | None, str | None], list[TaskRun]] = {}
    for record in records.values():
        if record.kind != "task_run":
            continue
        task = _task_run(record)
        parent = record.parent_instance
        if parent and parent in dag_records:
            children.setdefault(parent, []).append(task)
        else:
            orphans.setdefault((task.dag_id, task.run_id, parent), []).append(task)
    runs: list[DagRun] = []
    for urn, record in dag_records.items():
        runs.append(
            DagRun(
                urn=urn,
                dag_id=record.dag_id or "?",
                run_id=record.run_id,
                flow_urn=record.template_urn,
                run_type=record.custom.get("run_type"),
                logical_date=record.custom.get("logical_date"),
                attempts=attempts_of(record.events),
                task_runs=_ordered(children.get(urn, [])),
                external_url=record.external_url,
                removed=record.removed,
                created_ms=record.created_ms,
            )
        )
    for (dag_id, run_id, parent), tasks in orphans.items():
        runs.append(
            DagRun(
                urn=parent,
                dag_id=dag_id,
                run_id=run_id,
                task_runs=_ordered(tasks),
                recorded=False,
                removed=all(t.removed for t in tasks),
            )
        )
    runs.sort(key=_sort_key_newest)
    return runs


def _ordered(tasks: list[TaskRun]) -> tuple[TaskRun, ...]:
    big = 1 << 62
    return tuple(
        sorted(
            tasks,
            key=lambda t: (t.start_ms if t.start_ms is not None else big, t.task_id, t.map_index),
        )
    )


# -- filters -------------------------------------------------------------------------------------


def select_runs(
    runs: Iterable[DagRun],
    *,
    dag_id: str | None = None,
    task_id: str | None = None,
    result: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int | None = None,
    include_removed: bool = False,
) -> list[DagRun]:
    """Filter DAG runs (newest-first order kept).

    * ``task_id``: keep DAG runs where the task ran, with only that task's runs;
    * ``result``: the DAG run's result, or with ``task_id`` the task run's (RUNNING included);
    * ``since_ms``/``until_ms``: the DAG run's start in ``[since, until)``;
    * soft-deleted (``status.removed``) instances are left out unless ``include_removed``.
    """
    wanted = result.upper() if result else None
    out: list[DagRun] = []
    for candidate in runs:
        run: DagRun | None = candidate
        if dag_id is not None and candidate.dag_id != dag_id:
            continue
        if not include_removed:
            run = _without_removed(candidate)
        if run is None or not _in_window(run.start_ms, since_ms, until_ms):
            continue
        if task_id is not None:
            tasks = tuple(
                t
                for t in run.task_runs
                if t.task_id == task_id and (wanted is None or t.result == wanted)
            )
            if not tasks:
                continue
            run = attrs.evolve(run, task_runs=tasks)
        elif wanted is not None and run.result != wanted:
            continue
        out.append(run)
        if limit is not None and len(out) >= limit:
            break
    return out


def _without_removed(run: DagRun) -> DagRun | None:
    """The run without soft-deleted task runs; None if the run itself is removed."""
    if run.removed and run.recorded:
        return None
    if any(t.removed for t in run.task_runs):
        run = attrs.evolve(run, task_runs=tuple(t for t in run.task_runs if not t.removed))
    if not run.recorded and not run.task_runs:
        return None
    return run


def _in_window(start: int | None, since_ms: int | None, until_ms: int | None) -> bool:
    if since_ms is not None and (start is None or start < since_ms):
        return False
    return until_ms is None or (start is not None and start < until_ms)


def dag_ids(runs: Iterable[DagRun]) -> list[str]:
    return sorted({r.dag_id for r in runs})
