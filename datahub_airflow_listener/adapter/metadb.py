"""Reads of Airflow's metadata database, without ever touching Airflow's own transaction.

Two ways in, and nothing else:

* **Inside a hook**, through the session of the object Airflow handed over (autoflush off,
  never a flush or a commit): in the scheduler that is the scheduler's own session, and a
  commit there ("UNEXPECTED COMMIT - THIS WILL BREAK HA LOCKS!") kills it.
* **From a background thread** (or for a detached object), through :func:`private_session`:
  a session of our own on Airflow's engine, read-only, rolled back and closed after use. Never
  ``settings.Session()``, which is the calling thread's scoped session.

Every query here is written against columns that Airflow 2.10 to 3.3 all have.
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
    "TryRow",
    "leads_schedulers",
    "private_session",
    "read_activity",
    "read_dag_run",
    "read_task_history",
    "read_task_instances",
    "restart_window_start",
    "serialized_dag",
]

_CHUNK: Final = 500  # DAG runs per IN list
_DAG_TTL_SEC: Final = 60.0


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
