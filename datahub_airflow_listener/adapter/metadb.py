"""Reads of Airflow's metadata database, without ever touching Airflow's own transaction.

Two ways in, and nothing else:

* **Inside a hook**, through the session of the object Airflow handed over (autoflush off,
  never a flush or a commit): in the scheduler that is the scheduler's own session, and a
  commit there ("UNEXPECTED COMMIT - THIS WILL BREAK HA LOCKS!") kills it.
* **From a background thread** (or for a detached object), through :func:`private_session`:
  a session of our own on Airflow's engine, read-only, rolled back and closed after use. Never
  ``settings.Session()``, which is the calling thread's scoped session.

Every query here is written against columns that Airflow 2.10 to 3.3 all have (or, where a
table differs, against the pieces :mod:`.compat` names).

The reads behind the links between runs (:mod:`.run_links`) are one bounded query each,
through a private session, whatever thread calls them: the scheduler's hooks call them only
for the runs that can have such links (asset-triggered runs, runs a task may have triggered).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

log = logging.getLogger(__name__)

__all__ = [
    "Activity",
    "ConsumedRow",
    "ExternalRow",
    "TriggerRow",
    "TryRow",
    "leads_schedulers",
    "private_session",
    "read_activity",
    "read_consumed_events",
    "read_dag_run",
    "read_external_runs",
    "read_map_indexes",
    "read_sensor_targets",
    "read_task_history",
    "read_trigger_candidates",
    "read_task_instances",
    "restart_window_start",
    "serialized_dag",
]

_CHUNK: Final = 500  # DAG runs per IN list
_DAG_TTL_SEC: Final = 60.0
# Bounds of the link reads: a run links to at most this many events, candidates, instances.
MAX_LINK_ROWS: Final = 1000
# The triggering task stores the new run's id in XCom right after creating the run.
TRIGGER_XCOM_KEY: Final = "trigger_run_id"
_TRIGGER_BEFORE: Final = timedelta(seconds=60)
_TRIGGER_AFTER: Final = timedelta(minutes=10)


@contextlib.contextmanager
def private_session() -> Iterator[Any]:
    """A read-only session on Airflow's engine that is not a thread's scoped session (None
    when there is no engine); rolled back and closed after use."""
    from airflow import settings
    from sqlalchemy.orm import Session

    engine = getattr(settings, "engine", None)
    if engine is None:
        yield None
        return
    private = Session(bind=engine, autoflush=False, expire_on_commit=False)
    try:
        yield private
    finally:
        private.rollback()
        private.close()


def _own_session(obj: Any) -> Any:
    """The session an ORM object is attached to (None if detached or not an ORM object)."""
    if getattr(obj, "_sa_instance_state", None) is None:
        return None
    from sqlalchemy import inspect

    return inspect(obj).session


def _detached(obj: Any) -> bool:
    if getattr(obj, "_sa_instance_state", None) is None:
        return False
    from sqlalchemy import inspect

    return bool(inspect(obj).detached)


def read_task_instances(dag_run: Any) -> list[Any]:
    """All task instances of an ORM DagRun, through its own session (no autoflush) or, for a
    detached DagRun (``airflow dags test`` hands its end hook one), a private session.
    Objects already in the session keep their in-memory (possibly unflushed) state.
    Anything else (a task-SDK DagRun, a DagRun never saved): [].
    """
    session = _own_session(dag_run)
    if session is not None:
        with session.no_autoflush:
            return list(dag_run.get_task_instances(session=session))
    if not _detached(dag_run):
        return []
    with private_session() as private:
        if private is None:
            return []
        tis = list(dag_run.get_task_instances(session=private))
        for ti in tis:  # detach with every column loaded, so nothing lazy-loads later
            private.expunge(ti)
        return tis


def read_task_history(dag_run: Any) -> list[Any]:
    """The earlier tries of a DagRun's task instances (``task_instance_history`` rows), read
    the way :func:`read_task_instances` reads the current ones."""
    model = _history_model()
    if model is None:
        return []
    from sqlalchemy import select

    query = select(model).where(model.dag_id == dag_run.dag_id, model.run_id == dag_run.run_id)
    session = _own_session(dag_run)
    if session is not None:
        with session.no_autoflush:
            return list(session.scalars(query).all())
    if not _detached(dag_run):
        return []
    with private_session() as private:
        if private is None:
            return []
        rows = list(private.scalars(query).all())
        for row in rows:
            private.expunge(row)
        return rows


def _history_model() -> Any:
    try:
        from airflow.models.taskinstancehistory import TaskInstanceHistory
    except ImportError:  # before 2.10
        return None
    return TaskInstanceHistory


def read_dag_run(dag_id: str, run_id: str, use: Callable[[Any], None]) -> bool:
    """Load a DagRun in a private session and call ``use`` with it while the session is open
    (its task instances load through it). False if there is no such run. For a background
    thread, never a hook's thread."""
    from airflow.models.dagrun import DagRun

    with private_session() as private:
        if private is None:
            return False
        dag_run = (
            private.query(DagRun)
            .filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            .one_or_none()
        )
        if dag_run is None:
            return False
        use(dag_run)
        return True


# -- the scheduler's watch --------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Activity:
    """What changed in the metadata database since a point in time.

    ``running``: each running DAG run (detached) with its task instances and earlier tries
    (``task_instance_history``) changed since then; ``ended``: (dag_id, run_id, end_date) of
    the runs that ended (success or failed) since then.
    """

    running: tuple[tuple[Any, tuple[Any, ...]], ...] = ()
    ended: tuple[tuple[str, str, datetime | None], ...] = ()

    @property
    def tries(self) -> int:
        return sum(len(tis) for _, tis in self.running)


@attrs.frozen(kw_only=True)
class TryRow:
    """The columns of a try the record needs (a row of ``task_instance`` or, ``archived``, of
    ``task_instance_history``), read without building ORM objects."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    max_tries: int | None
    state: str | None
    start_date: datetime | None
    end_date: datetime | None
    hostname: str | None
    operator: str | None
    pool: str | None
    queue: str | None
    executor: str | None
    archived: bool = False


_TRY_COLUMNS: Final = tuple(f.name for f in attrs.fields(TryRow) if f.name != "archived")


def read_activity(since: datetime | None, *, ended_since: datetime) -> Activity:
    """Running DAG runs with the tries changed since ``since`` (every try when None), and the
    runs that ended since ``ended_since``. One query for the runs, two per 500 running runs
    (current and earlier tries, by their ``updated_at``; plain columns, no ORM objects), one
    for the ended runs; the runs are detached before the session closes."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance

    history = _history_model()
    with private_session() as private:
        if private is None:
            return Activity()
        runs = private.query(DagRun).filter(DagRun.state == "running").all()
        by_key: dict[tuple[str, str], list[Any]] = {(r.dag_id, r.run_id): [] for r in runs}
        for part in _chunks(list(by_key), _CHUNK):
            for model in (TaskInstance, history):
                if model is None:
                    continue
                columns = [getattr(model, name) for name in _TRY_COLUMNS]
                query = private.query(*columns).filter(
                    model.run_id.in_(sorted({run_id for _, run_id in part}))
                )
                if since is not None:
                    query = query.filter(model.updated_at >= since)
                archived = model is history
                for values in query:
                    row = _try_row(values, archived=archived)
                    tries = by_key.get((row.dag_id, row.run_id))
                    if tries is not None:
                        tries.append(row)
        ended = (
            private.query(DagRun.dag_id, DagRun.run_id, DagRun.end_date)
            .filter(DagRun.state.in_(("success", "failed")), DagRun.updated_at >= ended_since)
            .order_by(DagRun.id)
            .all()
        )
        private.expunge_all()
    running = tuple((r, tuple(by_key[(r.dag_id, r.run_id)])) for r in runs)
    return Activity(
        running=tuple(item for item in running if item[1]),
        ended=tuple((dag_id, run_id, end) for dag_id, run_id, end in ended),
    )


def _try_row(values: Sequence[Any], *, archived: bool) -> TryRow:
    named = dict(zip(_TRY_COLUMNS, values, strict=True))
    state = named["state"]
    named["state"] = getattr(state, "value", state)
    return TryRow(**named, archived=archived)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def restart_window_start(job: Any, *, margin_sec: float, max_age_sec: float) -> datetime:
    """Where a starting scheduler's watch begins: the previous scheduler's last heartbeat
    (less ``margin_sec``), at most ``max_age_sec`` ago. With no scheduler running, only a mark
    in the UI or the REST API can end a run; with HA, another scheduler's heartbeat is recent
    and the window is the margin."""
    from airflow.jobs.job import Job
    from sqlalchemy import func

    now = datetime.now(UTC)
    oldest = now - timedelta(seconds=max_age_sec)
    with private_session() as private:
        if private is None:
            return now - timedelta(seconds=margin_sec)
        previous = private.query(func.max(Job.latest_heartbeat)).filter(
            Job.job_type == "SchedulerJob"
        )
        started = vars(job).get("start_date")  # read without touching the ORM instance
        if started is not None:
            previous = previous.filter(Job.start_date < started)
        last_beat = previous.scalar()
    if last_beat is None:
        return oldest
    return max(_aware(last_beat) - timedelta(seconds=margin_sec), oldest)


def leads_schedulers(job: Any, *, stale_sec: float) -> bool:
    """True if this scheduler is the live one with the lowest job id (HA: one scheduler
    watches, the others only act on their own hooks). True when it cannot tell."""
    from airflow.jobs.job import Job
    from sqlalchemy import func

    own = vars(job).get("id")
    if own is None:
        return True
    since = datetime.now(UTC) - timedelta(seconds=stale_sec)
    with private_session() as private:
        if private is None:
            return True
        lowest = (
            private.query(func.min(Job.id))
            .filter(
                Job.job_type == "SchedulerJob",
                Job.state == "running",
                Job.latest_heartbeat >= since,
            )
            .scalar()
        )
    return lowest is None or lowest >= own


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- links between runs -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ConsumedRow:
    """One asset event a DAG run consumed, with its asset's URI (and name on 3.x)."""

    event_id: int
    uri: str | None
    name: str | None
    timestamp: datetime | None
    extra: Any
    source_dag_id: str | None
    source_task_id: str | None
    source_run_id: str | None
    source_map_index: int | None


def read_consumed_events(dag_id: str, run_id: str) -> list[ConsumedRow]:
    """The asset (2.x: dataset) events the DAG run consumed, newest first (one query, at
    most :data:`MAX_LINK_ROWS`)."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    from datahub_airflow_listener.adapter import compat

    schema = compat.asset_event_schema()
    if schema is None:
        return []
    event, asset, link = schema.event, schema.asset, schema.association
    query = (
        select(
            event.id,
            asset.uri,
            asset.name if schema.has_name else asset.uri,
            event.timestamp,
            event.extra,
            event.source_dag_id,
            event.source_task_id,
            event.source_run_id,
            event.source_map_index,
        )
        .select_from(DagRun)
        .join(link, link.c.dag_run_id == DagRun.id)
        .join(event, event.id == link.c.event_id)
        .outerjoin(asset, asset.id == schema.asset_id)
        .where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        .order_by(event.id.desc())
        .limit(MAX_LINK_ROWS)
    )
    with private_session() as private:
        if private is None:
            return []
        rows = private.execute(query).all()
    return [
        ConsumedRow(
            event_id=int(r[0]),
            uri=r[1],
            name=r[2] if schema.has_name else None,
            timestamp=r[3],
            extra=r[4],
            source_dag_id=r[5],
            source_task_id=r[6],
            source_run_id=r[7],
            source_map_index=r[8],
        )
        for r in rows
    ]


@attrs.frozen(kw_only=True)
class TriggerRow:
    """A try that stored a triggered run's id (``trigger_run_id``), with what it triggered
    as its rendered ``trigger_dag_id`` (None without rendered fields)."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    value: Any
    trigger_dag_id: str | None


def read_trigger_candidates(anchors: Sequence[datetime]) -> list[TriggerRow]:
    """The ``trigger_run_id`` XComs stored around the given times (from a minute before to
    ten minutes after each), with the rendered fields of their tries: one query on the XCom
    key's index, at most :data:`MAX_LINK_ROWS` rows. The values are decoded; matching them
    to a run is the caller's."""
    from sqlalchemy import and_, or_, select

    from datahub_airflow_listener.adapter import compat

    if not anchors:
        return []
    xcom, rtif = compat.xcom_model(), compat.rendered_fields_model()
    windows = [
        xcom.timestamp.between(_aware(a) - _TRIGGER_BEFORE, _aware(a) + _TRIGGER_AFTER)
        for a in anchors
    ]
    query = (
        select(
            xcom.dag_id,
            xcom.task_id,
            xcom.run_id,
            xcom.map_index,
            xcom.value,
            rtif.rendered_fields,
        )
        .select_from(xcom)
        .outerjoin(
            rtif,
            and_(
                rtif.dag_id == xcom.dag_id,
                rtif.task_id == xcom.task_id,
                rtif.run_id == xcom.run_id,
                rtif.map_index == xcom.map_index,
            ),
        )
        .where(xcom.key == TRIGGER_XCOM_KEY, or_(*windows))
        .limit(MAX_LINK_ROWS)
    )
    with private_session() as private:
        if private is None:
            return []
        rows = private.execute(query).all()
    out = []
    for dag_id, task_id, run_id, map_index, raw, rendered in rows:
        target = rendered.get("trigger_dag_id") if isinstance(rendered, dict) else None
        out.append(
            TriggerRow(
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                map_index=-1 if map_index is None else int(map_index),
                value=compat.decode_xcom_value(raw),
                trigger_dag_id=target if isinstance(target, str) else None,
            )
        )
    return out


def read_map_indexes(dag_id: str, run_id: str, task_ids: Iterable[str]) -> dict[str, list[int]]:
    """task_id -> the map indexes of its instances in the run (one query)."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    wanted = sorted(set(task_ids))
    if not wanted:
        return {}
    query = (
        select(TaskInstance.task_id, TaskInstance.map_index)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id.in_(wanted),
        )
        .limit(MAX_LINK_ROWS * 10)
    )
    out: dict[str, list[int]] = {}
    with private_session() as private:
        if private is None:
            return {}
        for task_id, map_index in private.execute(query):
            out.setdefault(task_id, []).append(-1 if map_index is None else int(map_index))
    return out


def read_sensor_targets(
    dag_id: str, run_id: str, task_ids: Iterable[str], key: str
) -> dict[tuple[str, int], Any]:
    """(task_id, map_index) -> the decoded XCom ``key`` of those tasks in the run (one query)."""
    from sqlalchemy import select

    from datahub_airflow_listener.adapter import compat

    wanted = sorted(set(task_ids))
    if not wanted:
        return {}
    xcom = compat.xcom_model()
    query = select(xcom.task_id, xcom.map_index, xcom.value).where(
        xcom.dag_id == dag_id,
        xcom.run_id == run_id,
        xcom.task_id.in_(wanted),
        xcom.key == key,
    )
    with private_session() as private:
        if private is None:
            return {}
        rows = private.execute(query.limit(MAX_LINK_ROWS)).all()
    return {
        (task_id, -1 if map_index is None else int(map_index)): compat.decode_xcom_value(raw)
        for task_id, map_index, raw in rows
    }


@attrs.frozen(kw_only=True)
class ExternalRow:
    """A run of another DAG at one of the logical dates asked for, and one of its task
    instances (``task_id`` None when only the run was asked for)."""

    run_id: str
    task_id: str | None = None
    map_index: int = -1


def read_external_runs(
    dag_id: str,
    logical_dates: Sequence[datetime],
    *,
    task_ids: Sequence[str] | None = None,
    task_prefix: str | None = None,
) -> list[ExternalRow]:
    """The runs of ``dag_id`` at ``logical_dates`` and, with ``task_ids`` or ``task_prefix``
    (a task group's ``group_id.``), their instances of those tasks (one query)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import and_, select

    from datahub_airflow_listener.adapter import compat

    if not logical_dates:
        return []
    runs = and_(DagRun.dag_id == dag_id, compat.logical_date_column(DagRun).in_(logical_dates))
    query: Any
    if task_ids is None and task_prefix is None:
        query = select(DagRun.run_id).where(runs)
    else:
        which = (
            TaskInstance.task_id.in_(task_ids)
            if task_ids is not None
            else TaskInstance.task_id.startswith(task_prefix or "", autoescape=True)
        )
        query = (
            select(DagRun.run_id, TaskInstance.task_id, TaskInstance.map_index)
            .select_from(DagRun)
            .join(
                TaskInstance,
                and_(
                    TaskInstance.dag_id == DagRun.dag_id,
                    TaskInstance.run_id == DagRun.run_id,
                    which,
                ),
            )
            .where(runs)
        )
    with private_session() as private:
        if private is None:
            return []
        rows = private.execute(query.limit(MAX_LINK_ROWS)).all()
    if task_ids is None and task_prefix is None:
        return [ExternalRow(run_id=r[0]) for r in rows]
    return [
        ExternalRow(run_id=r[0], task_id=r[1], map_index=-1 if r[2] is None else int(r[2]))
        for r in rows
    ]


# -- serialized DAGs --------------------------------------------------------------------------

_dags: dict[str, tuple[float, Any]] = {}
_dags_lock = threading.Lock()


def serialized_dag(dag_id: str) -> Any | None:
    """The latest serialized DAG of ``dag_id`` (for task definitions: upstream ids, operator),
    cached for a minute. For background threads and processes that have the metadata DB."""
    now = time.monotonic()
    with _dags_lock:
        cached = _dags.get(dag_id)
    if cached is not None and now - cached[0] < _DAG_TTL_SEC:
        return cached[1]
    from airflow.models.serialized_dag import SerializedDagModel

    dag = None
    try:
        with private_session() as private:
            if private is not None:
                dag = SerializedDagModel.get_dag(dag_id, session=private)
    except Exception as exc:
        log.debug("no serialized DAG for %s: %s", dag_id, exc)
    with _dags_lock:
        _dags[dag_id] = (now, dag)
        if len(_dags) > 1000:
            _dags.pop(next(iter(_dags)))
    return dag
