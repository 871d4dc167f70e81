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
  :func:`asset_types`; the events a DAG run consumed are ``dagrun_asset_event`` /
  ``asset_event`` / ``asset`` on 3.x and ``dagrun_dataset_event`` / ``dataset_event`` /
  ``dataset`` on 2.x (:func:`asset_event_schema`).
* **Links between runs.** A run that ``TriggerDagRunOperator`` created says so on 3.x
  (``triggered_by`` ``operator``, run type ``operator_triggered`` from 3.2); on 2.x it is a
  ``manual`` run like any other (:func:`may_be_operator_triggered`). The column of a run's
  logical date (:func:`logical_date_column`), the XCom model and how a stored value reads
  (:func:`xcom_model`, :func:`decode_xcom_value`), and how a task process stores an XCom
  (:func:`push_xcom`) differ too.

Reads of the metadata database (which session, which thread) live in :mod:`.metadb`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
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
    "asset_event_schema",
    "asset_types",
    "base_hook_class",
    "base_operator_class",
    "decode_xcom_value",
    "earlier_try_state",
    "dag_run_url",
    "dag_url",
    "enum_value",
    "get_connection",
    "get_dag_run",
    "get_task",
    "in_dag_test_process",
    "alias_uris_from_db",
    "is_orm_instance",
    "is_orm_try_of_this_process",
    "relative_fileloc",
    "runtime_outlet_events",
    "schedule_text",
    "in_task_sdk_process",
    "is_airflow_3",
    "is_asset_triggered",
    "logical_date_column",
    "mapped_group_id",
    "may_be_operator_triggered",
    "push_xcom",
    "ran_in_this_process",
    "rendered_fields_model",
    "run_type_of",
    "sensor_target",
    "skipped_hook_fires",
    "task_log_url",
    "task_url",
    "to_ms",
    "to_iso",
    "trigger_anchors",
    "web_base_url",
    "xcom_model",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

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


def is_orm_instance(obj: Any) -> bool:
    """A SQLAlchemy-mapped object (an ORM TaskInstance / DagRun), not a task-SDK model."""
    try:
        return getattr(obj, "_sa_instance_state", None) is not None
    except Exception:
        return False


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


def earlier_try_state(row: Any) -> str | None:
    """The state of an earlier try (a ``task_instance_history`` row), as it ended.

    Airflow archives a try that did not finish as ``failed`` (3.x: up_for_retry is not a
    finished state), or, on 2.x, while it still says ``running`` (its end_date set). Either
    way, a try that was eligible for a retry (``try_number <= max_tries`` when it was
    archived) was retried: up_for_retry. A final failure cleared later stays failed.
    """
    state = enum_value(getattr(row, "state", None))
    if state not in ("failed", "running"):
        return state
    if state == "running" and (is_airflow_3() or getattr(row, "end_date", None) is None):
        return state
    try_number, max_tries = getattr(row, "try_number", None), getattr(row, "max_tries", None)
    if isinstance(try_number, int) and isinstance(max_tries, int) and try_number <= max_tries:
        return "up_for_retry"
    return "failed" if state == "running" else state


def enum_value(value: Any) -> str | None:
    """The plain string of an Airflow enum (state, run type) or of a string; None stays None."""
    if value is None:
        return None
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, str) else str(raw)


def to_ms(value: Any) -> int | None:
    """Epoch milliseconds of a datetime (aware or naive UTC), or None.

    Exact integer arithmetic (floored to the millisecond, no float): every process that reads
    the same recorded time gets the same timestamp, so a re-sent run event is identical.
    """
    if not isinstance(value, datetime):
        return None
    try:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        delta = value - _EPOCH  # pendulum returns its own interval type: use plain fields
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    except (OverflowError, OSError, ValueError, TypeError):
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
    """The operator attached to a task instance, or None (API server instances have none).

    Airflow 2 renders a task's inlets and outlets only inside ``execute()`` (its lineage
    preparation), after the running hook, while 3.x has nothing to render there. So on 2.x,
    in the process that runs the try and while it runs, with ``[datahub] render_templates``
    (default true), a task whose inlets or outlets hold Jinja comes back as a copy with them
    rendered by the try's context, the way Airflow will render them: the try's lineage is
    read with the names it will have. The task Airflow runs is left untouched.
    """
    try:
        task = getattr(ti, "task", None)
    except Exception:
        return None
    if task is None or is_airflow_3() or not _lineage_to_render(ti, task):
        return task
    try:
        return _with_rendered_lineage(ti, task)
    except Exception as exc:
        log.debug("inlets/outlets of %s not rendered: %s", getattr(ti, "task_id", "?"), exc)
        return task


_JINJA: Final = ("{{", "{%")


def _templated(item: Any) -> bool:
    if isinstance(item, str):
        return any(marker in item for marker in _JINJA)
    return bool(getattr(item, "template_fields", None))


def _lineage_to_render(ti: Any, task: Any) -> bool:
    """An Airflow 2 try running in this process, render_templates on, Jinja in its lineage."""
    if (
        enum_value(getattr(ti, "state", None)) != "running"
        or getattr(ti, "pid", None) != os.getpid()
    ):
        return False
    items = [*(getattr(task, "inlets", None) or ()), *(getattr(task, "outlets", None) or ())]
    if not any(_templated(i) for i in items):
        return False
    from datahub_airflow_listener.adapter.config import get_config

    return get_config().render_templates


def _with_rendered_lineage(ti: Any, task: Any) -> Any:
    import copy

    from sqlalchemy.orm import object_session

    # The try's own session: a new one would be the thread's scoped session, which is the
    # task runner's, and would be committed and closed under it.
    context = ti.get_template_context(session=object_session(ti))
    jinja_env = task.get_template_env()

    def rendered(items: Any) -> list[Any]:
        out = []
        for item in items or ():
            if _templated(item):
                out.append(task.render_template(copy.deepcopy(item), context, jinja_env))
            else:
                out.append(item)
        return out

    clone = copy.copy(task)
    object.__setattr__(clone, "inlets", rendered(getattr(task, "inlets", None)))
    object.__setattr__(clone, "outlets", rendered(getattr(task, "outlets", None)))
    return clone


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


def base_operator_class() -> type:
    """Airflow's BaseOperator for this release (task SDK on 3.x, ``airflow.models`` on 2.x)."""
    try:
        from airflow.sdk import BaseOperator

        return BaseOperator  # type: ignore[no-any-return]
    except ImportError:
        from airflow.models.baseoperator import (  # type: ignore[attr-defined]
            BaseOperator as LegacyBaseOperator,
        )

        return LegacyBaseOperator  # type: ignore[no-any-return]


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


def dag_url(base_url: str | None, dag_id: str) -> str | None:
    """Link to the DAG in the Airflow UI (3.x: ``/dags/<id>``; 2.x: its grid view)."""
    if not base_url:
        return None
    base = base_url.rstrip("/")
    if is_airflow_3():
        return f"{base}/dags/{quote(dag_id)}"
    return f"{base}/dags/{quote(dag_id)}/grid"


def task_url(
    base_url: str | None, dag_id: str, task_id: str, link: str | None = None
) -> str | None:
    """Link to the task in the Airflow UI, the page ``[datahub] datajob_url_link`` names.

    ``tasks`` (default): 3.x ``/dags/<id>/tasks/<task>``; 2.x has no such page: its grid.
    ``grid``: ``/dags/<id>/grid?task_id=<task>``. ``taskinstance``: 2.x's task instance list
    (3.x has none: the task page). The same URLs the official plugin links.
    """
    if not base_url:
        return None
    base = base_url.rstrip("/")
    dag, task = quote(dag_id), quote(task_id)
    grid = f"{base}/dags/{dag}/grid?task_id={task}"
    if link == "grid":
        return grid
    if is_airflow_3():
        return f"{base}/dags/{dag}/tasks/{task}"
    if link == "taskinstance":
        return f"{base}/taskinstance/list/?flt1_dag_id_equals={dag}&_flt_3_task_id={task}"
    return grid


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


@attrs.frozen(kw_only=True)
class AssetEventSchema:
    """The ORM pieces of "which asset events did a DAG run consume": the association table
    (``dag_run_id``, ``event_id``), the event model, the asset model, the event's column that
    names its asset, and whether assets have a name (3.x) besides their URI."""

    association: Any
    event: Any
    asset: Any
    asset_id: Any
    has_name: bool


@functools.cache
def asset_event_schema() -> AssetEventSchema | None:
    """Assets on 3.x, datasets on 2.x; None where neither exists."""
    try:
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.models.asset import association_table as run_events

        return AssetEventSchema(
            association=run_events,
            event=AssetEvent,
            asset=AssetModel,
            asset_id=AssetEvent.asset_id,
            has_name=True,
        )
    except ImportError:
        pass
    try:
        from airflow.models.dataset import DatasetEvent, DatasetModel
        from airflow.models.dataset import association_table as run_dataset_events
    except ImportError:
        return None
    return AssetEventSchema(
        association=run_dataset_events,
        event=DatasetEvent,
        asset=DatasetModel,
        asset_id=DatasetEvent.dataset_id,
        has_name=False,
    )


def is_asset_triggered(run_type: str | None) -> bool:
    """A run the scheduler created because assets (2.x: datasets) were updated."""
    return run_type in ("asset_triggered", "dataset_triggered")


def may_be_operator_triggered(dag_run: Any, run_type: str | None) -> bool | None:
    """True if ``TriggerDagRunOperator`` created the run, False if it did not, None when the
    release cannot tell (2.x records such a run as ``manual``, like a run from the UI)."""
    if run_type == "operator_triggered":
        return True
    if is_airflow_3():
        return enum_value(getattr(dag_run, "triggered_by", None)) == "operator"
    return None if run_type == "manual" else False


def trigger_anchors(dag_run: Any) -> tuple[datetime, ...]:
    """When the run was created, as well as the release records it: the triggering task
    stores the new run's id in XCom right after creating it.

    3.x keeps ``created_at``. 2.x has only ``queued_at`` (moved by a clear) and the logical
    date (``TriggerDagRunOperator`` sets it to the trigger time unless given one): both.
    """
    names = ("created_at",) if is_airflow_3() else ("queued_at", "execution_date")
    if getattr(dag_run, "_sa_instance_state", None) is not None:
        loaded = vars(dag_run)  # an ORM row: what is loaded, never a lazy load in a hook
        found = [loaded.get(name) for name in names]
    else:
        found = [getattr(dag_run, name, None) for name in names]
    return tuple(sorted({v for v in found if isinstance(v, datetime)}))


def logical_date_column(dag_run_model: Any) -> Any:
    """The DagRun column of its logical date (``execution_date`` on 2.x)."""
    return dag_run_model.logical_date if is_airflow_3() else dag_run_model.execution_date


def xcom_model() -> Any:
    """The ORM model of the ``xcom`` table (not a custom XCom backend's class)."""
    if is_airflow_3():
        from airflow.models.xcom import XComModel

        return XComModel
    from airflow.models.xcom import BaseXCom

    return BaseXCom


def decode_xcom_value(raw: Any) -> Any:
    """A stored XCom value as Airflow reads it back (None if it cannot be read)."""
    import types

    row = types.SimpleNamespace(value=raw)
    try:
        return xcom_model().deserialize_value(row)
    except Exception:
        return None


def rendered_fields_model() -> Any:
    """The ORM model of ``rendered_task_instance_fields`` (a try's rendered templates)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    return RenderedTaskInstanceFields


def mapped_group_id(task: Any) -> str | None:
    """The group id of the innermost mapped task group holding ``task`` (None if none)."""
    try:
        group = task.get_closest_mapped_task_group()
    except Exception:
        return None
    group_id = getattr(group, "group_id", None) if group is not None else None
    return group_id if isinstance(group_id, str) else None


def sensor_target(task: Any, ti: Any) -> dict[str, Any] | None:
    """What an ``ExternalTaskSensor`` (or a subclass) waits for, computed as the sensor itself
    computes it (its ``_get_dttm_filter``: ``execution_delta`` or ``execution_date_fn``), in
    the process that runs it: ``{"dag_id", "task_ids", "task_group_id", "logical_dates"}``.
    None for any other task, or when the sensor's own rule fails.

    Only that process can: the serialized DAG the scheduler and the API server hold keeps
    neither ``execution_delta`` nor ``execution_date_fn``.
    """
    dttm_filter = getattr(task, "_get_dttm_filter", None)
    dag_id = getattr(task, "external_dag_id", None)
    if not callable(dttm_filter) or not isinstance(dag_id, str) or not dag_id:
        return None
    try:
        context = ti.get_template_context()
        dates = [to_iso(d) for d in dttm_filter(context)]
    except Exception as exc:
        log.debug("the sensor's logical dates could not be computed: %s", exc)
        return None
    if not dates or any(d is None for d in dates):
        return None
    task_ids = getattr(task, "external_task_ids", None)
    group_id = getattr(task, "external_task_group_id", None)
    return {
        "dag_id": dag_id,
        "task_ids": sorted(str(t) for t in task_ids) if task_ids else None,
        "task_group_id": group_id if isinstance(group_id, str) and group_id else None,
        "logical_dates": sorted(str(d) for d in dates),
    }


def push_xcom(ti: Any, key: str, value: Any) -> None:
    """Store an XCom of the try behind ``ti``, in the process that runs it, straight in the
    metadata database (as Airflow stores its own operator links, past any custom XCom
    backend). Raises on failure; call it on the hook's thread.

    3.x: through the supervisor (``BaseXCom._set_xcom_in_db``). 2.x: ``BaseXCom.set``, which
    commits the task process's own session, as Airflow does a moment earlier when it clears
    the try's XComs and stores its rendered fields.
    """
    ids = {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "map_index": ti.map_index if ti.map_index is not None else -1,
    }
    if is_airflow_3():
        from airflow.sdk.bases.xcom import BaseXCom as SdkXCom

        SdkXCom._set_xcom_in_db(key, value, **ids)
        return
    from airflow.models.xcom import BaseXCom

    BaseXCom.set(key=key, value=value, **ids)


# -- DAG definitions ------------------------------------------------------------------------------


def _attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def schedule_text(dag: Any) -> str | None:
    """The schedule as the scheduler's timetable summarises it (``0 0 * * *``, ``1:00:00``,
    ``@once``, ``Asset``, ``None``), the same from an SDK DAG as from its serialized form.

    Core timetables (2.x, the scheduler's SerializedDAG) have ``summary``; the 3.x task SDK's
    do not, so they are converted to core ones first (``coerce_to_core_timetable``, 3.3+).
    """
    timetable = _attr(dag, "timetable")
    summary = _attr(timetable, "summary")
    if isinstance(summary, str):
        return summary
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable

        summary = _attr(coerce_to_core_timetable(timetable), "summary")
        if isinstance(summary, str):
            return summary
    except Exception:
        log.debug("no core timetable for %r", timetable, exc_info=True)
    expression = _attr(timetable, "expression")
    if isinstance(expression, str):
        return expression
    schedule = _attr(dag, "schedule")
    if isinstance(schedule, str | timedelta):
        return str(schedule)
    return type(timetable).__name__ if timetable is not None else None


@functools.cache
def _dags_folder() -> str | None:
    try:
        from airflow.configuration import conf

        folder = conf.get("core", "dags_folder", fallback=None)
    except Exception:
        return None
    return os.path.realpath(os.path.expanduser(folder)) if folder else None


def relative_fileloc(dag: Any) -> str | None:
    """The DAG file relative to the dags folder (3.x bundles: to the bundle root).

    Airflow's own ``relative_fileloc`` when it is relative; else ``fileloc`` made relative to
    ``[core] dags_folder`` when it lies inside it; else ``fileloc`` as is.
    """
    relative = _attr(dag, "relative_fileloc")
    if relative is not None and not os.path.isabs(str(relative)):
        return str(relative)
    fileloc = _attr(dag, "fileloc")
    if not fileloc:
        return None
    fileloc = str(fileloc)
    folder = _dags_folder()
    if folder:
        real = os.path.realpath(fileloc)
        if real == folder or real.startswith(folder + os.sep):
            return os.path.relpath(real, folder)
    return fileloc


# -- outlet events of a try (asset aliases) -------------------------------------------------------


def runtime_outlet_events(ti: Any) -> Any:
    """Airflow 3 task process: the outlet events the task wrote into, else None.

    The runner caches the template context on the RuntimeTaskInstance (a pydantic private
    attribute); the task's ``outlet_events`` is that context's object. Never builds a new
    context (a new one would be empty, and building it may talk to the supervisor).
    """
    if getattr(ti, "_sa_instance_state", None) is not None:
        return None  # an ORM instance: scheduler / API server / Airflow 2
    try:
        context = ti._cached_template_context
    except AttributeError:
        private = getattr(ti, "__pydantic_private__", None) or {}
        context = private.get("_cached_template_context")
    if not context:
        return None
    return context.get("outlet_events")


def is_orm_try_of_this_process(ti: Any) -> bool:
    """Airflow 2: the raw task process records its pid on the instance."""
    return (
        getattr(ti, "_sa_instance_state", None) is not None
        and getattr(ti, "pid", None) == os.getpid()
    )


def alias_uris_from_db(ti: Any) -> list[str]:
    """Airflow 2: URIs of this try's DatasetEvents that came through an alias.

    The events were committed by ``_run_raw_task`` before the hook fired. Read through the
    instance's own session when it has one (autoflush off, no commit), else through a
    private session (:func:`.metadb.private_session`), never the scoped session the task
    runner is still using.
    """
    try:
        from airflow.models.dataset import DatasetEvent
    except ImportError:
        return []
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    query = select(DatasetEvent).where(
        DatasetEvent.source_dag_id == ti.dag_id,
        DatasetEvent.source_task_id == ti.task_id,
        DatasetEvent.source_run_id == ti.run_id,
        DatasetEvent.source_map_index == ti.map_index,
        DatasetEvent.source_aliases.any(),
    )
    start = getattr(ti, "start_date", None)
    if start is not None:  # a cleared and re-run try must not report the earlier try's events
        query = query.where(DatasetEvent.timestamp >= start)
    query = query.order_by(DatasetEvent.id)
    session = object_session(ti)
    if session is not None:
        with session.no_autoflush:
            return _event_uris(session.scalars(query).all())
    from datahub_airflow_listener.adapter.metadb import private_session

    with private_session() as own:
        return [] if own is None else _event_uris(own.scalars(query).all())


def _event_uris(events: Iterable[Any]) -> list[str]:
    uris = (getattr(getattr(e, "dataset", None), "uri", None) for e in events)
    return list(dict.fromkeys(u for u in uris if isinstance(u, str)))
