"""Every difference between the supported Airflow releases (2.10, 2.11, 3.0 to 3.3) lives here.

The rest of the adapter asks this module and never tests a version itself. Nothing here is
imported at module level beyond the standard library: Airflow sub-modules are imported inside
the functions that need them, so importing the plugin stays cheap.

What differs, and where it is handled:

* **Which object a hook receives.** Task hooks get a task-SDK ``RuntimeTaskInstance`` in the
  task process on 3.x (no ``dag_run`` attribute: :func:`get_dag_run` reads
  ``get_template_context()["dag_run"]``) and an ORM ``TaskInstance`` in the scheduler, the API
  server and everywhere on 2.x. An ORM instance's ``dag_run`` relationship is used only when it
  is already loaded: a lazy load would run SQL on Airflow's session (and could autoflush it).
* **Connections.** In a task-SDK process (3.x task runner, also ``airflow dags test``)
  connections come through the supervisor (``airflow.sdk.Connection.get``); everywhere else
  through ``airflow.models.Connection.get_connection_from_secrets`` (environment, secrets
  backends, metadata DB). See :func:`get_connection` for which thread may call which path.
* **UI links.** Airflow 3's UI routes (``/dags/<dag>/runs/<run>/tasks/<task>``, base URL in
  ``[api] base_url``) against Airflow 2's grid view (``[webserver] base_url``).
* **Run types.** 2.x says ``dataset_triggered``; 3.x says ``asset_triggered``,
  ``operator_triggered`` and ``asset_materialization``. Values are passed through as strings.
* **Assets.** ``airflow.sdk.Asset`` (3.x) against ``airflow.datasets.Dataset`` (2.x):
  :func:`asset_types`.
* **Task instances of a DAG run** (:func:`read_task_instances`): read through the DagRun's own
  session with autoflush off, never a new session (a new scoped session in the scheduler is the
  same session, and committing it breaks the scheduler's HA locks).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import attrs

log = logging.getLogger(__name__)

__all__ = [
    "KNOWN_RUN_TYPES",
    "ConnectionFields",
    "ConnectionNotFound",
    "airflow_version",
    "asset_types",
    "base_hook_class",
    "dag_run_url",
    "enum_value",
    "get_connection",
    "get_dag_run",
    "get_dag_task",
    "get_task",
    "in_dag_test_process",
    "in_task_sdk_process",
    "is_airflow_3",
    "ran_in_this_process",
    "read_task_instances",
    "run_type_of",
    "skipped_hook_fires",
    "task_log_url",
    "to_ms",
    "to_iso",
    "web_base_url",
]

KNOWN_RUN_TYPES: Final = frozenset(
    {
        "scheduled",
        "manual",
        "backfill",
        "dataset_triggered",
        "asset_triggered",
        "operator_triggered",
        "asset_materialization",
    }
)


class ConnectionNotFound(LookupError):  # noqa: N818 -- reads as what it is, like KeyError
    """No connection with this id in the environment, secrets backends or metadata DB."""


@attrs.frozen(kw_only=True)
class ConnectionFields:
    """The plain values of an Airflow connection, the same whichever API produced them.

    ``password`` is excluded from ``repr`` so the token can't reach a log line by accident.
    """

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)
    schema: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)


# -- version ------------------------------------------------------------------------------------


@functools.cache
def airflow_version() -> str:
    """The installed Airflow version string ("" if it can't be read)."""
    try:
        import airflow

        return str(getattr(airflow, "__version__", "") or "")
    except Exception:
        return ""


def _version_tuple() -> tuple[int, int]:
    parts = airflow_version().split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return 0, 0


@functools.cache
def is_airflow_3() -> bool:
    """True on Airflow 3.x (task SDK, new UI routes, Assets)."""
    return _version_tuple() >= (3, 0)


@functools.cache
def skipped_hook_fires() -> bool:
    """True where a task that skips itself fires ``on_task_instance_skipped`` (3.2+).

    2.x has no such hook; 3.0 and 3.1 have none in their task runner either. There a try
    that raised a skip gets no end hook at all and must be closed at the DAG run's end.
    """
    return _version_tuple() >= (3, 2)


# -- which process are we in -------------------------------------------------------------------


def _supervisor_comms() -> Any:
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) if runner is not None else None


def in_task_sdk_process() -> bool:
    """True inside a 3.x task runner (or ``dags test`` while it runs a task).

    There, connections and the DAG run come from the supervisor through ``SUPERVISOR_COMMS``;
    the same check is what Airflow itself uses to pick its secrets chain.
    """
    return _supervisor_comms() is not None


def ran_in_this_process(ti: Any) -> bool:
    """True if the task try behind ``ti`` runs (or ran) in this very process.

    3.x: the task runner's own RuntimeTaskInstance (not an ORM row). 2.x: the raw task process
    records its pid on the instance.
    """
    if getattr(ti, "_sa_instance_state", None) is None:
        return in_task_sdk_process()
    return getattr(ti, "pid", None) == os.getpid()


def in_dag_test_process(dag_run: Any = None) -> bool:
    """True when the DAG run is being executed by ``airflow dags test`` / ``dag.test()``.

    That mode fires no ``on_dag_run_running`` and sets the run's start_date to its logical
    date. 3.1+ runs its tasks through an in-process supervisor and marks the run
    ``triggered_by == "test"``.
    """
    comms = _supervisor_comms()
    if comms is not None and type(comms).__name__ == "InProcessSupervisorComms":
        return True
    if enum_value(getattr(dag_run, "triggered_by", None)) == "test":
        return True
    # 2.x (triggered_by is None there): dag.test() creates the run with start_date equal to
    # its logical date and never queues it -- a combination the scheduler never produces.
    start = getattr(dag_run, "start_date", None)
    logical = getattr(dag_run, "logical_date", None) or getattr(dag_run, "execution_date", None)
    return start is not None and start == logical and getattr(dag_run, "queued_at", 0) is None


# -- values -------------------------------------------------------------------------------------


def enum_value(value: Any) -> str | None:
    """The plain string of an Airflow enum (state, run type) or of a string; None stays None."""
    if value is None:
        return None
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, str) else str(raw)


def to_ms(value: Any) -> int | None:
    """Epoch milliseconds of a datetime (aware or naive UTC), or None."""
    if not isinstance(value, datetime):
        return None
    try:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    except (OverflowError, OSError, ValueError):
        return None


def to_iso(value: Any) -> str | None:
    """ISO-8601 text of a datetime, or None."""
    if isinstance(value, datetime):
        return value.isoformat()
    return None


def run_type_of(dag_run: Any, run_id: str | None) -> str | None:
    """Airflow's run type as a string, from the DagRun or, failing that, the run_id prefix."""
    value = enum_value(getattr(dag_run, "run_type", None)) if dag_run is not None else None
    if value:
        return value
    if run_id and "__" in run_id:
        prefix = run_id.split("__", 1)[0]
        if prefix in KNOWN_RUN_TYPES:
            return prefix
    return None


# -- objects behind a task instance -------------------------------------------------------------


def get_task(ti: Any) -> Any | None:
    """The operator attached to a task instance, or None (API server instances have none)."""
    try:
        return getattr(ti, "task", None)
    except Exception:
        return None


def get_dag_run(ti: Any) -> Any | None:
    """The DagRun of a task instance without any database access.

    * 3.x task process: the task SDK's DagRun from ``get_template_context()`` (cached by the
      runner; falls back to the run context the API server sent).
    * ORM instance (scheduler, API server, 2.x): the ``dag_run`` relationship only if it is
      already loaded; otherwise None.
    """
    try:
        state = getattr(ti, "_sa_instance_state", None)
        if state is not None:
            return ti.__dict__.get("dag_run")
        get_context = getattr(ti, "get_template_context", None)
        if callable(get_context):
            try:
                dag_run = get_context().get("dag_run")
                if dag_run is not None:
                    return dag_run
            except Exception:
                log.debug("get_template_context() failed", exc_info=True)
            run_context = getattr(ti, "_ti_context_from_server", None)
            return getattr(run_context, "dag_run", None)
        return getattr(ti, "dag_run", None)
    except Exception:
        return None


def get_dag_task(dag_run: Any, task_id: str) -> Any | None:
    """The task definition for ``task_id`` from the DAG the scheduler attached to a DagRun."""
    try:
        dag = getattr(dag_run, "dag", None)
        task_dict = getattr(dag, "task_dict", None) if dag is not None else None
        if isinstance(task_dict, Mapping):
            return task_dict.get(task_id)
    except Exception:
        log.debug("no task %s on the DagRun's dag", task_id, exc_info=True)
    return None


def read_task_instances(dag_run: Any) -> list[Any]:
    """All task instances of an ORM DagRun, without touching Airflow's transaction.

    * Attached DagRun (scheduler, API server): read through the DagRun's own session with
      autoflush off. Never a new scoped session: in the scheduler that is the scheduler's own
      session, and any commit in a listener ("UNEXPECTED COMMIT - THIS WILL BREAK HA LOCKS!")
      kills it; a flush would write Airflow's pending changes at a moment it didn't choose.
      Objects already in the session keep their in-memory (possibly unflushed) state.
    * Detached DagRun (``airflow dags test`` hands its end hook a DagRun without a session):
      a private, non-scoped session on Airflow's engine, read-only, rolled back and closed.
    * Anything else (a task-SDK DagRun, a DagRun never saved): [].
    """
    if getattr(dag_run, "_sa_instance_state", None) is None:
        return []
    from sqlalchemy import inspect

    state = inspect(dag_run)
    session = state.session
    if session is not None:
        with session.no_autoflush:
            return list(dag_run.get_task_instances(session=session))
    if state.detached:  # loaded from the database once; a transient DagRun has no rows
        return _read_detached(dag_run)
    return []


@contextlib.contextmanager
def _private_session() -> Iterator[Any]:
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


def _read_detached(dag_run: Any) -> list[Any]:
    with _private_session() as private:
        if private is None:
            return []
        tis = list(dag_run.get_task_instances(session=private))
        for ti in tis:  # detach with every column loaded, so nothing lazy-loads later
            private.expunge(ti)
        return tis


def read_dag_run(dag_id: str, run_id: str, use: Callable[[Any], None]) -> bool:
    """Load a DagRun in a private, read-only session on Airflow's engine and call ``use`` with
    it while the session is open (its task instances load through it). False if no such run.

    For a background thread (never a hook's thread): the session is not the thread's scoped
    session, is rolled back and closed, so nothing of Airflow's transaction is touched.
    """
    from airflow.models.dagrun import DagRun

    with _private_session() as private:
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


def dag_run_states(runs: Iterable[tuple[str, str]], chunk: int = 500) -> dict[tuple[str, str], str]:
    """The state of each (dag_id, run_id) that still exists, a query per ``chunk`` runs.

    For a background thread: reads through :func:`_private_session`.
    """
    from airflow.models.dagrun import DagRun

    wanted = list(runs)
    states: dict[tuple[str, str], str] = {}
    with _private_session() as private:
        if private is None:
            return states
        for start in range(0, len(wanted), chunk):
            part = wanted[start : start + chunk]
            keys = set(part)
            rows = private.query(DagRun.dag_id, DagRun.run_id, DagRun.state).filter(
                DagRun.run_id.in_(sorted({run_id for _, run_id in part}))
            )
            for dag_id, run_id, state in rows:
                if (dag_id, run_id) in keys:
                    states[(dag_id, run_id)] = str(enum_value(state))
    return states


def runs_to_watch_after_restart(
    job: Any, *, margin_sec: float, max_age_sec: float, limit: int
) -> list[tuple[str, str]]:
    """Airflow 2, a scheduler starting (``job`` is its Job): (dag_id, run_id) of the runs
    whose end may still fire no hook, oldest first, at most ``limit``.

    * runs still running: one may be marked in the UI later;
    * runs that ended after the previous scheduler's last heartbeat (less ``margin_sec``, at
      most ``max_age_sec`` ago): with no scheduler running, only a mark in the UI or the REST
      API ends a run. With HA, another scheduler is alive, its heartbeat is recent and the
      window is the margin: a run it ended there gets its (identical) end once more.

    For a background thread: reads through :func:`_private_session`.
    """
    from airflow.jobs.job import Job
    from airflow.models.dagrun import DagRun
    from airflow.utils import timezone
    from sqlalchemy import and_, func, or_

    with _private_session() as private:
        if private is None:
            return []
        previous = private.query(func.max(Job.latest_heartbeat)).filter(
            Job.job_type == "SchedulerJob"
        )
        started = vars(job).get("start_date")  # read without touching the ORM instance
        if started is not None:
            previous = previous.filter(Job.start_date < started)
        last_beat = previous.scalar()
        wanted = [DagRun.state == "running"]
        if last_beat is not None:
            since = max(
                _aware(last_beat) - timedelta(seconds=margin_sec),
                timezone.utcnow() - timedelta(seconds=max_age_sec),
            )
            wanted.append(and_(DagRun.state.in_(("success", "failed")), DagRun.end_date >= since))
        rows = (
            private.query(DagRun.id, DagRun.dag_id, DagRun.run_id)
            .filter(or_(*wanted))
            .order_by(DagRun.id.desc())
            .limit(limit)
            .all()
        )
        return [(dag_id, run_id) for _, dag_id, run_id in reversed(rows)]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- connections ----------------------------------------------------------------------------------


def get_connection(conn_id: str) -> ConnectionFields:
    """Resolve a connection in whatever process this is; raise ConnectionNotFound if absent.

    Which thread may call this (read from the task SDK's sources of each release):

    * task-SDK process: call it on the thread that runs the hooks. ``CommsDecoder.send``
      (request, then blocking read of the answer on one socket) has no lock in task SDK
      1.0/1.1 (Airflow 3.0, 3.1; 1.0.0 locked only some callers), so a second thread can
      interleave frames or read another request's answer; 1.2+ (Airflow 3.2, 3.3) guards it
      with a ``threading.Lock``. The in-process channel of ``airflow dags test``
      (``InProcessSupervisorComms``) pops answers from a shared deque and swaps the module
      global ``SUPERVISOR_COMMS`` around each request, on every 3.x: never thread-safe.
    * everywhere else: call it OFF the hook's thread. The metadata-DB backend opens
      ``create_session()``, which is the thread's scoped session -- inside a scheduler hook that
      is the scheduler's own session, and the backend commits and closes it. A background
      thread has its own scoped session, so it is safe there.
    """
    if in_task_sdk_process():
        return _sdk_connection(conn_id)
    return _orm_connection(conn_id)


def _sdk_connection(conn_id: str) -> ConnectionFields:
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception as exc:
        if _is_not_found(exc):
            raise ConnectionNotFound(conn_id) from None
        raise
    return _fields(conn_id, conn)


def _orm_connection(conn_id: str) -> ConnectionFields:
    from airflow.exceptions import AirflowNotFoundException  # type: ignore[attr-defined]
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise ConnectionNotFound(conn_id) from None
    return _fields(conn_id, conn)


def _is_not_found(exc: BaseException) -> bool:
    if type(exc).__name__ == "AirflowNotFoundException":
        return True
    error = getattr(exc, "error", None)  # AirflowRuntimeError(ErrorResponse)
    return enum_value(getattr(error, "error", None)) in {
        "CONNECTION_NOT_FOUND",
        "connection_not_found",
    }


def _fields(conn_id: str, conn: Any) -> ConnectionFields:
    extra: Any = None
    try:
        extra = conn.extra_dejson
    except Exception:
        raw = getattr(conn, "extra", None)
        if isinstance(raw, str) and raw.strip():
            try:
                extra = json.loads(raw)
            except ValueError:
                extra = None
    port = getattr(conn, "port", None)
    return ConnectionFields(
        conn_id=conn_id,
        conn_type=getattr(conn, "conn_type", None) or None,
        host=getattr(conn, "host", None) or None,
        port=int(port)
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit())
        else None,
        login=getattr(conn, "login", None) or None,
        password=getattr(conn, "password", None) or None,
        schema=getattr(conn, "schema", None) or None,
        extra=dict(extra) if isinstance(extra, Mapping) else {},
    )


def base_hook_class() -> type:
    """Airflow's BaseHook for this release (task SDK on 3.x, ``airflow.hooks.base`` on 2.x)."""
    try:
        from airflow.sdk import BaseHook

        return BaseHook  # type: ignore[no-any-return]
    except ImportError:
        from airflow.hooks.base import BaseHook as LegacyBaseHook  # type: ignore[attr-defined]

        return LegacyBaseHook  # type: ignore[no-any-return]


# -- UI links -----------------------------------------------------------------------------------


def web_base_url() -> str:
    """The Airflow UI's base URL as configured ([api] on 3.x, [webserver] on 2.x)."""
    try:
        from airflow.configuration import conf

        if is_airflow_3():
            value = conf.get("api", "base_url", fallback=None)
        else:
            value = conf.get("webserver", "base_url", fallback=None)
    except Exception:
        value = None
    return (value or "http://localhost:8080").rstrip("/")


def dag_run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """Link to a DAG run in the Airflow UI."""
    base = base_url.rstrip("/")
    if is_airflow_3():
        return f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
    return f"{base}/dags/{quote(dag_id)}/grid?dag_run_id={quote(run_id, safe='')}"


def task_log_url(
    base_url: str, *, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> str:
    """Link to one task try's log in the Airflow UI (same routes as ``TaskInstance.log_url``)."""
    base = base_url.rstrip("/")
    if is_airflow_3():
        mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
        tries = f"?try_number={try_number}" if try_number > 0 else ""
        return (
            f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
            f"/tasks/{quote(task_id)}{mapped}{tries}"
        )
    mapped = f"&map_index={map_index}" if map_index >= 0 else ""
    return (
        f"{base}/dags/{quote(dag_id)}/grid?dag_run_id={quote(run_id, safe='')}"
        f"&task_id={quote(task_id)}{mapped}&tab=logs"
    )


# -- assets / datasets --------------------------------------------------------------------------


@functools.cache
def asset_types() -> tuple[type, ...]:
    """Airflow's data-aware scheduling classes: Asset (3.x) or Dataset (2.x); () if neither."""
    found: list[type] = []
    try:
        from airflow.sdk import Asset

        found.append(Asset)
    except ImportError:
        try:
            from airflow.datasets import Dataset

            found.append(Dataset)
        except ImportError:
            pass
    return tuple(found)
