"""The listener: the hook implementations Airflow calls.

Every hook does the same four steps and nothing else -- guard (enabled, ``capture_executions``,
kill switch, DAG filter), extract plain facts, map them to MCPs, hand them to the dispatcher
(microseconds: no network, no disk on this thread) -- in :class:`.recorder.RunRecorder`, which
is imported on the first hook call so that importing the plugin stays cheap.

This module owns the two promises to Airflow:

* **Never raise.** Each hook catches everything and logs ONE line (the traceback only at
  DEBUG); after 20 such lines per process the rest go to DEBUG.
* **Register everywhere.** Each hook declares only the arguments it uses, which pluggy passes
  by name, so one signature registers on 2.10, 2.11 and 3.x (no ``session``).
  ``on_task_instance_skipped`` has no spec on 2.x: pluggy keeps an implementation without a
  spec unverified and never calls it, which does not affect registration (tested in
  tests/airflow).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import pluggy

from datahub_airflow_listener.adapter.logs import one_line

if TYPE_CHECKING:
    from datahub_airflow_listener.adapter.recorder import RunRecorder

log = logging.getLogger(__name__)

__all__ = ["DatahubListener", "get_listener", "hookimpl"]

_F = TypeVar("_F", bound=Callable[..., Any])
_airflow_hookimpl = pluggy.HookimplMarker("airflow")

_MAX_ERROR_LINES: Final = 20


def hookimpl(func: _F) -> _F:
    """Mark ``func`` as an implementation of the Airflow hook of the same name."""
    marked: Any = _airflow_hookimpl(func)
    return cast(_F, marked)


class DatahubListener:
    """The object registered with Airflow's listener manager (one per process)."""

    def __init__(self) -> None:
        self._recorder: RunRecorder | None = None
        self._lock = threading.Lock()
        self._errors = 0

    # -- lifecycle --------------------------------------------------------------------------------

    @hookimpl
    def on_starting(self, component: Any) -> None:
        with self._guard("on_starting"):
            self._get_recorder().starting(component)

    @hookimpl
    def before_stopping(self) -> None:
        with self._guard("before_stopping"):
            if self._recorder is not None:
                self._recorder.stopping()

    # -- DAG runs ---------------------------------------------------------------------------------

    @hookimpl
    def on_dag_run_running(self, dag_run: Any) -> None:
        with self._guard("on_dag_run_running"):
            self._get_recorder().dag_run_running(dag_run)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: Any) -> None:
        with self._guard("on_dag_run_success"):
            self._get_recorder().dag_run_finished(dag_run, msg)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: Any) -> None:
        with self._guard("on_dag_run_failed"):
            self._get_recorder().dag_run_finished(dag_run, msg)

    # -- task instances ---------------------------------------------------------------------------

    @hookimpl
    def on_task_instance_running(self, task_instance: Any) -> None:
        with self._guard("on_task_instance_running"):
            self._get_recorder().task_running(task_instance)

    @hookimpl
    def on_task_instance_success(self, task_instance: Any) -> None:
        with self._guard("on_task_instance_success"):
            self._get_recorder().task_finished(task_instance)

    @hookimpl
    def on_task_instance_failed(self, task_instance: Any) -> None:
        with self._guard("on_task_instance_failed"):
            self._get_recorder().task_finished(task_instance)

    @hookimpl
    def on_task_instance_skipped(self, task_instance: Any) -> None:
        with self._guard("on_task_instance_skipped"):
            self._get_recorder().task_finished(task_instance)

    # -- plumbing ---------------------------------------------------------------------------------

    def _get_recorder(self) -> RunRecorder:
        recorder = self._recorder
        if recorder is None:
            with self._lock:
                if self._recorder is None:
                    from datahub_airflow_listener.adapter.recorder import RunRecorder

                    self._recorder = RunRecorder()
                recorder = self._recorder
        return recorder

    @contextmanager
    def _guard(self, hook: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self._report(hook, exc)

    def _report(self, hook: str, exc: Exception) -> None:
        with self._lock:
            self._errors += 1
            count = self._errors
        if count <= _MAX_ERROR_LINES:
            suffix = " (further errors are logged at DEBUG)" if count == _MAX_ERROR_LINES else ""
            log.warning("datahub-airflow-listener: %s skipped: %s%s", hook, one_line(exc), suffix)
        log.debug("datahub-airflow-listener: %s failed", hook, exc_info=True)


_listener: DatahubListener | None = None
_listener_lock = threading.Lock()


def get_listener() -> DatahubListener:
    """The process's listener (the same object for Airflow's core and task-SDK managers)."""
    global _listener  # noqa: PLW0603 -- one listener per process, by design
    with _listener_lock:
        if _listener is None:
            _listener = DatahubListener()
        return _listener
