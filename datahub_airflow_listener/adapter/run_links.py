"""Links between runs, read from the metadata database: the runs a DAG run or a task run follows.

What links to what, and the records each link is read from (one bounded query each, through
:mod:`.metadb`'s private session):

* **A DAG run triggered by assets** (2.x: datasets): the events it consumed
  (``dagrun_asset_event``). Each names the task run that produced it (its source dag, task,
  run and map index): those are the run's upstream instances. Each event's asset is an input
  of the run; the latest event per asset gives the input edge its time and properties
  (:mod:`..domain.links`).
* **A DAG run ``TriggerDagRunOperator`` created** (3.x: ``triggered_by`` ``operator``; 2.x
  cannot tell such a run from one triggered in the UI, so every ``manual`` run is looked at):
  the try that stored this run's id as its ``trigger_run_id`` XCom within minutes of the
  run's creation, and whose rendered ``trigger_dag_id`` names this DAG -- the two records
  Airflow's own "Triggered DAG" link reads. The XCom is written just after the run, so a
  scheduler hook can come too early: the answer says so (``complete`` False) and the run's
  end looks again.
* **A task run** (:class:`TaskLinks`): every instance of an upstream task that can have
  several (a mapped task, or a task in a mapped task group: index ``i`` of the same group
  follows index ``i``); and, for an ``ExternalTaskSensor``, the runs it waited for: the task
  runs of its external tasks (or the external DAG's runs) at the logical dates the sensor
  computed. Those dates come from ``execution_delta`` or ``execution_date_fn``, which the
  serialized DAG drops, so the sensor's own process stores them in the XCom
  ``datahub_waited_for`` when its try starts (:func:`record_sensor_target`, one XCom per
  try), and every process that transcribes the try reads them from there.

Nothing here raises: a read that fails leaves its links out, with one warning per kind of
read and process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from datahub_airflow_listener.adapter import compat, metadb
from datahub_airflow_listener.adapter.logs import log_once, one_line
from datahub_airflow_listener.domain.links import (
    ConsumedEvent,
    RunLinks,
    RunRef,
    extra_properties,
    upstream_map_indexes,
)
from datahub_airflow_listener.domain.runs import DagRunFacts, TaskRunFacts

log = logging.getLogger(__name__)

__all__ = [
    "SENSOR_XCOM_KEY",
    "FlowLinks",
    "TaskLinks",
    "dag_run_links",
    "record_sensor_target",
    "waits_elsewhere",
]

SENSOR_XCOM_KEY: Final = "datahub_waited_for"


def _warn(kind: str, exc: BaseException) -> None:
    log_once(
        log,
        logging.WARNING,
        f"run-links:{kind}",
        f"could not read {kind} from the metadata database (those links are left out): "
        f"{one_line(exc)}",
    )


# -- DAG runs -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FlowLinks:
    """A DAG run's links; ``complete`` False when a link may still appear later (a triggering
    task's XCom not written yet, or a 2.x manual run nothing was found for)."""

    links: RunLinks = attrs.field(factory=RunLinks)
    complete: bool = True


def dag_run_links(dag_run: Any, facts: DagRunFacts, config: Any = None) -> FlowLinks:
    """The links of a DAG run (see the module docstring); no read for runs of other kinds."""
    if compat.is_asset_triggered(facts.run_type):
        return FlowLinks(links=RunLinks(consumed=_consumed(facts, config)))
    operator = compat.may_be_operator_triggered(dag_run, facts.run_type)
    if operator is False:
        return FlowLinks()
    found = _triggered_by(dag_run, facts)
    if found is None:
        return FlowLinks(complete=False)
    # nothing found yet: the XCom may come just after the run (the run's end looks again)
    return FlowLinks(links=RunLinks(triggered_by=found), complete=bool(found))


def _consumed(facts: DagRunFacts, config: Any) -> tuple[ConsumedEvent, ...]:
    try:
        rows = metadb.read_consumed_events(facts.dag_id, facts.run_id)
    except Exception as exc:
        _warn("the asset events a run consumed", exc)
        return ()
    capture = getattr(config, "capture_airflow_assets", True) is not False
    urns: dict[str, str | None] = {}
    events = []
    for row in rows:
        uri = row.uri or ""
        if uri not in urns:
            urns[uri] = _dataset_urn(uri, config) if capture and uri else None
        stamp = compat.to_ms(row.timestamp)
        producer = None
        if row.source_dag_id and row.source_task_id and row.source_run_id:
            producer = RunRef(
                dag_id=row.source_dag_id,
                run_id=row.source_run_id,
                task_id=row.source_task_id,
                map_index=-1 if row.source_map_index is None else int(row.source_map_index),
            )
        events.append(
            ConsumedEvent(
                dataset_urn=urns[uri] if stamp is not None else None,
                timestamp_ms=stamp or 0,
                properties=extra_properties(row.extra),
                producer=producer,
                event_id=row.event_id,
            )
        )
    return tuple(events)


class _Uris:
    """A stand-in task whose inlets are asset URIs: they are named exactly as a task's
    declared assets are (mapping, connections, naming switch, dataset filter)."""

    task_id = "consumed asset events"
    outlets: tuple[str, ...] = ()

    def __init__(self, uri: str) -> None:
        self.inlets = [uri]


def _dataset_urn(uri: str, config: Any) -> str | None:
    from datahub_airflow_listener.adapter import lineage

    found = lineage.task_lineage(_Uris(uri), config=config)
    lineage.log_warnings(found.warnings)
    return found.inlets[0] if found.inlets else None


def _triggered_by(dag_run: Any, facts: DagRunFacts) -> tuple[RunRef, ...] | None:
    """The tries that triggered this run; None when the read failed."""
    anchors = compat.trigger_anchors(dag_run)
    if not anchors:
        return ()
    try:
        rows = metadb.read_trigger_candidates(anchors)
    except Exception as exc:
        _warn("the triggering tasks' XComs", exc)
        return None
    mine = [r for r in rows if r.value is not None and str(r.value) == facts.run_id]
    named = [r for r in mine if r.trigger_dag_id == facts.dag_id]
    if not named and len(mine) == 1 and mine[0].trigger_dag_id is None:
        named = mine  # no rendered fields kept for it: the only candidate
    return tuple(
        RunRef(dag_id=r.dag_id, run_id=r.run_id, task_id=r.task_id, map_index=r.map_index)
        for r in named
    )


# -- task runs ------------------------------------------------------------------------------------


def _is_possibly_mapped(task: Any) -> bool:
    """A task that may have several instances in a run (mapped, or in a mapped group)."""
    if task is None:
        return False
    if getattr(task, "_is_mapped", False) is True or "Mapped" in type(task).__name__:
        return True
    return compat.mapped_group_id(task) is not None


def waits_elsewhere(task: Any) -> bool:
    """True for a task that waits for another DAG's runs (``ExternalTaskSensor`` and its
    subclasses; the serialized DAG keeps ``external_dag_id``, a templated field)."""
    return isinstance(getattr(task, "external_dag_id", None), str)


class TaskLinks:
    """The runs the task runs of one DAG run follow beyond their unmapped upstream tasks.

    ``dag``: the run's DAG (serialized or parsed) for task definitions; None: the serialized
    DAG, read when first needed (cached for a minute by :mod:`.metadb`). ``rows``: task
    instances of the run already in hand (the run's end reads them all): map indexes come
    from them, else from one query per DAG run, made only when a task has an upstream that
    can be mapped. Sensor targets: one XCom query for the sensors asked about, one query per
    sensor to find the runs it waited for.
    """

    def __init__(self, dag_id: str, run_id: str, dag: Any, rows: Iterable[Any] | None = None):
        self._dag_id = dag_id
        self._run_id = run_id
        self._dag = dag
        self._dag_read = False
        self._indexes: dict[str, list[int]] | None = None
        if rows is not None:
            indexes: dict[str, set[int]] = {}
            for row in rows:
                task_id = getattr(row, "task_id", None)
                map_index = getattr(row, "map_index", None)
                if isinstance(task_id, str):
                    indexes.setdefault(task_id, set()).add(
                        -1 if map_index is None else int(map_index)
                    )
            self._indexes = {k: sorted(v) for k, v in indexes.items()}
        self._targets: dict[tuple[str, int], Any] | None = None

    def task(self, task_id: str) -> Any:
        """The definition of ``task_id`` (from the serialized DAG when none was given)."""
        if self._dag is None and not self._dag_read:
            self._dag_read = True
            self._dag = metadb.serialized_dag(self._dag_id)
        try:
            task_dict = getattr(self._dag, "task_dict", None)
            return task_dict.get(task_id) if isinstance(task_dict, dict) else None
        except Exception:
            return None

    def upstream_runs(self, facts: TaskRunFacts) -> tuple[RunRef, ...]:
        """Every mapped upstream instance and, for a sensor, what it waited for."""
        task = self.task(facts.task_id)
        if task is None:
            return ()
        refs = list(self._mapped_upstream(facts, task))
        if waits_elsewhere(task):
            refs.extend(self._waited_for(facts))
        return tuple(refs)

    def _mapped_upstream(self, facts: TaskRunFacts, task: Any) -> list[RunRef]:
        ups = [self.task(t) for t in sorted(getattr(task, "upstream_task_ids", ()) or ())]
        mapped = [u for u in ups if _is_possibly_mapped(u)]
        if not mapped:
            return []
        indexes = self._map_indexes([u.task_id for u in mapped])
        group = compat.mapped_group_id(task)
        refs: list[RunRef] = []
        for up in mapped:
            follows = upstream_map_indexes(
                indexes.get(up.task_id, ()),
                map_index=facts.map_index,
                same_mapped_group=group is not None and compat.mapped_group_id(up) == group,
            )
            refs.extend(
                RunRef(dag_id=facts.dag_id, run_id=facts.run_id, task_id=up.task_id, map_index=i)
                for i in follows
            )
        return refs

    def _map_indexes(self, task_ids: Sequence[str]) -> Mapping[str, Sequence[int]]:
        if self._indexes is not None and all(t in self._indexes for t in task_ids):
            return self._indexes
        try:
            read = metadb.read_map_indexes(self._dag_id, self._run_id, task_ids)
        except Exception as exc:
            _warn("the map indexes of upstream tasks", exc)
            return self._indexes or {}
        self._indexes = {**(self._indexes or {}), **read}
        return self._indexes

    def _waited_for(self, facts: TaskRunFacts) -> list[RunRef]:
        if self._targets is None:
            self.task(facts.task_id)  # the DAG, if not read yet
            sensors = [
                t for t in getattr(self._dag, "task_dict", {}) if waits_elsewhere(self.task(t))
            ]
            try:
                self._targets = metadb.read_sensor_targets(
                    self._dag_id, self._run_id, sensors, SENSOR_XCOM_KEY
                )
            except Exception as exc:
                _warn("what sensors waited for", exc)
                self._targets = {}
        target = self._targets.get((facts.task_id, facts.map_index))
        return _resolve_target(target) if isinstance(target, Mapping) else []


def _resolve_target(target: Mapping[str, Any]) -> list[RunRef]:
    """The runs (or task runs) at the logical dates a sensor recorded."""
    dag_id = target.get("dag_id")
    dates = [_parse(d) for d in target.get("logical_dates") or ()]
    if not isinstance(dag_id, str) or not dates or any(d is None for d in dates):
        return []
    task_ids = target.get("task_ids")
    group = target.get("task_group_id")
    try:
        rows = metadb.read_external_runs(
            dag_id,
            [d for d in dates if d is not None],
            task_ids=[str(t) for t in task_ids] if isinstance(task_ids, list) else None,
            task_prefix=f"{group}." if isinstance(group, str) and not task_ids else None,
        )
    except Exception as exc:
        _warn("the runs a sensor waited for", exc)
        return []
    return [
        RunRef(dag_id=dag_id, run_id=r.run_id, task_id=r.task_id, map_index=r.map_index)
        for r in rows
    ]


def _parse(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


# -- the sensor's own process ---------------------------------------------------------------------


def record_sensor_target(task: Any, ti: Any) -> None:
    """In the process that runs a sensor's try: store what it waits for (see the module
    docstring). Nothing for other tasks; never raises."""
    if not waits_elsewhere(task):
        return
    try:
        target = compat.sensor_target(task, ti)
        if target is not None:
            compat.push_xcom(ti, SENSOR_XCOM_KEY, target)
    except Exception as exc:
        _warn_write(exc)


def _warn_write(exc: BaseException) -> None:
    log_once(
        log,
        logging.WARNING,
        "run-links:sensor-write",
        f"could not record what a sensor waits for (its link is left out): {one_line(exc)}",
    )
