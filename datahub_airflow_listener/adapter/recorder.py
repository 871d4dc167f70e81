"""What the listener does with each hook: guard, extract, map, hand over.

Loaded on the first hook call, not when Airflow imports the plugin (it pulls in the domain
model and the config). :class:`RunRecorder` holds the only state the listener has: what this
process already sent (bounded), so a DAG run's STARTED is not re-sent by the process that sent
it and the DAG-run end knows which tries this process already closed.

Where events come from:

* DAG run STARTED: ``on_dag_run_running`` in the scheduler. ``airflow dags test`` fires no
  running hook, so there the first task event of the run emits it (once per process). The
  end hook re-sends it unless this process sent it: same timestamp, so identical and harmless,
  and it covers HA schedulers and restarts.
* Task try STARTED/COMPLETE: the task hooks, in the task process (or, for tries marked in the
  UI or killed outside Airflow, in the API server / scheduler).
* No run left open: when a DAG run ends, every task instance that did not (or may not) get
  its own end event is closed from its final state (:meth:`RunRecorder._close_task_instances`),
  read through the DagRun's own session without flushing or committing it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Final

import attrs

from datahub_airflow_listener.adapter import compat, extract
from datahub_airflow_listener.adapter.config import get_config, kill_switch_engaged
from datahub_airflow_listener.adapter.listener import one_line
from datahub_airflow_listener.adapter.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)

__all__ = ["RunRecorder"]

_MAX_REMEMBERED: Final = 10_000
_ENDED: Final = ("success", "failed")
_RESTART_LOOKBACK_SEC: Final = 7 * 24 * 3600.0  # runs marked while no scheduler ran, at most


class _Memory:
    """A bounded, thread-safe map (oldest forgotten first): what this process already sent."""

    def __init__(self, limit: int = _MAX_REMEMBERED) -> None:
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, key: Hashable, value: Any = None) -> bool:
        """Remember ``key`` (with ``value``); True if it was new, False if already known."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return False
            self._items[key] = value
            if len(self._items) > self._limit:
                self._items.popitem(last=False)
            return True

    def get(self, key: Hashable) -> Any:
        with self._lock:
            return self._items.get(key)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def snapshot(self) -> list[Any]:
        """The keys, oldest first (a copy)."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class RunRecorder:
    """Turns hook calls into MCPs for the dispatcher; remembers what this process sent."""

    def __init__(self) -> None:
        self._dag_runs_started = _Memory()
        self._tries_started = _Memory()
        self._tries_ended = _Memory()
        # Airflow 2, the scheduler: runs whose end it has not seen yet (those it saw start, and
        # at its start those of an earlier scheduler); the reconciler thread watches them.
        self._open_runs = _Memory()
        self._reconciler: threading.Thread | None = None
        self._reconciler_lock = threading.Lock()
        self._pid = os.getpid()

    # -- hooks ------------------------------------------------------------------------------------

    def starting(self, component: Any = None) -> None:
        runtime = self._runtime()
        if runtime is not None:
            runtime.prepare()
            runtime.preload()
            if _may_be_a_scheduler(component):
                self._start_reconciler(runtime.config.reconcile_interval_sec, job=component)

    def stopping(self) -> None:
        runtime = get_runtime(create=False)
        if runtime is not None:
            runtime.flush()

    def dag_run_running(self, dag_run: Any) -> None:
        runtime = self._runtime(extract_dag_id(dag_run), _run_id(dag_run))
        if runtime is None:
            return
        facts = extract.dag_run_facts(dag_run, base_url=runtime.base_url)
        if facts is None:
            return
        self._dag_runs_started.add(_dag_run_key(facts), facts.start_ms)
        mcps = _templates(runtime, getattr(dag_run, "dag", None), dag_run)
        mcps.extend(runtime.mapper.dag_run_started(facts))
        runtime.submit(mcps)
        if not compat.is_airflow_3():
            self._open_runs.add((facts.dag_id, facts.run_id))
            self._start_reconciler(runtime.config.reconcile_interval_sec)

    def task_running(self, ti: Any) -> None:
        found = self._try(ti)
        if found is None:
            return
        runtime, dag_run, facts = found
        if facts.start_ms is None:  # 2.x ``dags test`` runs tries without a start_date
            facts = _with(facts, start_ms=_now_ms())
        mcps = self._dag_run_start_for_test(runtime, dag_run, facts.start_ms, compat.get_task(ti))
        self._tries_started.add(_try_key(facts), facts.start_ms)
        mcps.extend(runtime.mapper.task_run_started(facts))
        runtime.submit(mcps)

    def task_failed(self, ti: Any) -> None:
        """In the failed hook the state already says whether a retry follows."""
        state = compat.enum_value(getattr(ti, "state", None))
        if state == "up_for_retry":
            self.task_finished(ti, "UP_FOR_RETRY", "up_for_retry")
        else:
            self.task_finished(ti, "FAILURE", state or "failed")

    # -- steps ------------------------------------------------------------------------------------

    def _runtime(self, dag_id: str | None = None, run_id: str | None = None) -> Runtime | None:
        """The guard: the runtime if this event should be recorded, else None.

        Sampling (``sample_dags``) is decided from (dag_id, run_id) alone, so the scheduler and
        every task process agree on a run without sharing state.
        """
        config = get_config()
        if not (config.enabled and config.capture_executions):
            return None
        if kill_switch_engaged(config):
            return None
        if dag_id is not None and not config.dag_allowed(dag_id):
            return None
        if dag_id is not None and run_id and not config.sample_dags.records(dag_id, run_id):
            return None
        if os.getpid() != self._pid:  # forked: the parent's memory of events is not ours
            self._forget()
        return get_runtime()

    def _try(self, ti: Any) -> tuple[Runtime, Any, Any] | None:
        """Guard, then the runtime, the try's DAG run and its facts (None: nothing to record)."""
        runtime = self._runtime(extract_dag_id(ti), _run_id(ti))
        if runtime is None:
            return None
        dag_run = compat.get_dag_run(ti)
        facts = self._task_facts(runtime, ti, dag_run)
        if facts is None:
            return None
        return runtime, dag_run, facts

    def _forget(self) -> None:
        self._pid = os.getpid()
        self._dag_runs_started.clear()
        self._tries_started.clear()
        self._tries_ended.clear()
        self._open_runs.clear()

    def _task_facts(
        self, runtime: Runtime, ti: Any, dag_run: Any, *, task: Any = None, iolets: bool = True
    ) -> Any:
        facts = extract.task_run_facts(
            ti,
            task=task if task is not None else compat.get_task(ti),
            dag_run=dag_run,
            base_url=runtime.base_url,
            include_iolets=iolets,
            config=runtime.config,
        )
        return facts

    def _dag_run_start_for_test(
        self, runtime: Runtime, dag_run: Any, first_task_start_ms: int | None, task: Any = None
    ) -> list[Any]:
        """The DAG run's STARTED under ``airflow dags test`` (no running hook there).

        That mode sets the run's start_date to its logical date, so the run starts when its
        first task does; the end hook reuses the remembered start for the duration.
        """
        if dag_run is None or not compat.in_dag_test_process(dag_run):
            return []
        facts = extract.dag_run_facts(dag_run, base_url=runtime.base_url)
        if facts is None:
            return []
        start = first_task_start_ms if first_task_start_ms is not None else _now_ms()
        if not self._dag_runs_started.add(_dag_run_key(facts), start):
            return []
        dag = getattr(dag_run, "dag", None) or getattr(task, "dag", None)
        mcps = _templates(runtime, dag, dag_run)
        mcps.extend(runtime.mapper.dag_run_started(_with(facts, start_ms=start)))
        return mcps

    def task_finished(self, ti: Any, result: str, native: str) -> None:
        found = self._try(ti)
        if found is None:
            return
        runtime, dag_run, facts = found
        key = _try_key(facts)
        mcps: list[Any] = []
        if compat.ran_in_this_process(ti):
            remembered = self._tries_started.get(key)
            if facts.start_ms is None:
                facts = _with(
                    facts, start_ms=remembered if remembered is not None else facts.end_ms
                )
            task = compat.get_task(ti)
            mcps.extend(self._dag_run_start_for_test(runtime, dag_run, facts.start_ms, task))
            # A try that failed before its running hook (e.g. while parsing) still gets its
            # STARTED, so the instance has its properties and links.
            if self._tries_started.add(key, facts.start_ms):
                mcps.extend(runtime.mapper.task_run_started(facts))
        elif not getattr(ti, "hostname", None):
            # No worker ever ran it (marked in the UI, which stamps start = end = now): open
            # it at its end time, with its properties and links.
            facts = _started_at_end(facts)
            self._tries_started.add(key, facts.start_ms)
            mcps.extend(runtime.mapper.task_run_started(facts))
        self._tries_ended.add(key)
        mcps.extend(runtime.mapper.task_run_completed(facts, result, native))
        if result == "SUCCESS" and compat.ran_in_this_process(ti):
            mcps.extend(_alias_lineage(runtime, ti, facts))
        runtime.submit(mcps)

    def dag_run_finished(self, dag_run: Any, msg: Any = None) -> None:
        runtime = self._runtime(extract_dag_id(dag_run), _run_id(dag_run))
        if runtime is None:
            return
        facts = extract.dag_run_facts(dag_run, base_url=runtime.base_url)
        if facts is None:
            return
        self._open_runs.discard((facts.dag_id, facts.run_id))
        key = _dag_run_key(facts)
        mcps: list[Any] = []
        if key in self._dag_runs_started:
            remembered = self._dag_runs_started.get(key)
            if remembered is not None:
                facts = _with(facts, start_ms=remembered)
        else:
            if compat.in_dag_test_process(dag_run):  # its start_date is the logical date
                facts = _with(facts, start_ms=facts.end_ms if facts.end_ms else _now_ms())
            # Re-send (identical if another process sent it): covers HA and restarts.
            self._dag_runs_started.add(key, facts.start_ms)
            mcps.extend(runtime.mapper.dag_run_started(facts))
        timed_out = msg == "timed_out"
        mcps.extend(self._close_task_instances(runtime, dag_run, facts.end_ms, timed_out))
        result, _native = extract.dag_run_result(facts.state)
        mcps.extend(runtime.mapper.dag_run_completed(facts, result))
        runtime.submit(mcps)

    # -- Airflow 2: runs that end without a hook ------------------------------------------------

    def _start_reconciler(self, interval_sec: float, job: Any = None) -> None:
        with self._reconciler_lock:  # a forked child finds the parent's thread not alive
            if self._reconciler is not None and self._reconciler.is_alive():
                return
            self._reconciler = threading.Thread(
                target=self._reconcile_forever,
                args=(interval_sec, job),
                name="datahub-listener-reconciler",
                daemon=True,
            )
            self._reconciler.start()

    def _reconcile_forever(self, interval_sec: float, job: Any = None) -> None:
        if job is not None:
            if _job_type(job) != "SchedulerJob":
                return  # a triggerer, a task's LocalTaskJob...: nothing to reconcile here
            self._watch_runs_from_before(job, interval_sec)
        failures = 0
        while True:
            time.sleep(interval_sec)
            try:
                self.reconcile()
                failures = 0
            except Exception as exc:  # keep the thread alive; one line per streak of failures
                failures += 1
                if failures == 1:
                    log.warning(
                        "datahub-airflow-listener: could not look for runs marked in the UI: %s",
                        one_line(exc),
                    )

    def _watch_runs_from_before(self, job: Any, interval_sec: float) -> None:
        """A scheduler starting: also watch the runs an earlier scheduler saw start (still
        running) and those marked while no scheduler ran (see
        :func:`compat.runs_to_watch_after_restart`)."""
        try:
            runs = compat.runs_to_watch_after_restart(
                job,
                margin_sec=max(60.0, 2 * interval_sec),
                max_age_sec=_RESTART_LOOKBACK_SEC,
                limit=_MAX_REMEMBERED,
            )
        except Exception as exc:
            log.warning(
                "datahub-airflow-listener: could not read the runs open before this scheduler "
                "started; runs marked in the UI before they end may stay open: %s",
                one_line(exc),
            )
            return
        for run in runs:
            self._open_runs.add(run)
        if runs:
            log.info(
                "datahub-airflow-listener: watching %d run(s) open or ended since the last "
                "scheduler stopped",
                len(runs),
            )

    def reconcile(self) -> int:
        """Close the watched runs whose end fired no hook; return how many.

        Airflow 2 fires no hook when a DAG run is marked success or failed in the UI or the
        REST API, so its instance would stay STARTED. The scheduler's reconciler thread
        watches the runs it saw start (and, from its start, those of an earlier scheduler):
        it reads their states (a private read-only session, one query per 500 runs), and
        for each that has ended records its end exactly as the end hook would have, closing
        its task tries too.
        """
        closed = 0

        def finish(dag_run: Any) -> None:
            nonlocal closed
            if compat.enum_value(getattr(dag_run, "state", None)) in _ENDED:
                self.dag_run_finished(dag_run)
                closed += 1

        watched = self._open_runs.snapshot()
        states = compat.dag_run_states(watched)  # one query per 500 runs, then only the ended
        for dag_id, run_id in watched:
            state = states.get((dag_id, run_id))
            if state is None or (
                state in _ENDED and not compat.read_dag_run(dag_id, run_id, finish)
            ):
                self._open_runs.discard((dag_id, run_id))  # deleted meanwhile
        return closed

    def _close_task_instances(
        self, runtime: Runtime, dag_run: Any, run_end_ms: int | None, timed_out: bool
    ) -> list[Any]:
        """Close every task try of the run that may have had no end event, from its state.

        * Never ran (no hostname): upstream_failed, skipped by a branch, EmptyOperator under
          the scheduler, never scheduled, marked in the UI -> STARTED at its end time (with its
          properties and links) + COMPLETE.
        * Ran on a worker, whose own hook reported the end -> nothing: success; skipped by
          itself where ``on_task_instance_skipped`` exists (3.2+).
        * Ran on a worker, maybe without an end hook -> COMPLETE only (its STARTED came from
          the worker): failed (a kill -9 on the last attempt fires no hook and looks the same
          in the database as a reported failure), still running/queued when the run ended,
          skipped by a DAG-run timeout (``msg == "timed_out"``) or by itself before 3.2.

        The COMPLETE of a failure the worker did report is then sent twice: same attempt and
        result, but at the metadata DB's end time, which on Airflow 3 the supervisor stamps a
        little after the task's own (identical on 2.x). Its STARTED is never re-sent: the DB's
        start time differs from the worker's, and a second STARTED would read as a restart.
        """
        try:
            tis = compat.read_task_instances(dag_run)
        except Exception as exc:
            log.warning(
                "datahub-airflow-listener: could not read the task instances of %s/%s: %s",
                extract_dag_id(dag_run),
                getattr(dag_run, "run_id", "?"),
                one_line(exc),
            )
            return []
        mcps: list[Any] = []
        self_skip_reported = compat.skipped_hook_fires() and not timed_out
        for ti in tis:
            state = compat.enum_value(getattr(ti, "state", None))
            ran = bool(getattr(ti, "hostname", None))
            if ran and (state == "success" or (state == "skipped" and self_skip_reported)):
                continue
            task_id = compat.enum_value(getattr(ti, "task_id", None)) or ""
            facts = self._task_facts(
                runtime,
                ti,
                dag_run,
                task=compat.get_dag_task(dag_run, task_id),
                iolets=not ran,  # the worker may have set iolets at run time; keep its aspects
            )
            if facts is None:
                continue
            key = _try_key(facts)
            if key in self._tries_ended:
                continue
            if facts.end_ms is None:
                facts = _with(facts, end_ms=run_end_ms)
            result, native = extract.result_for_state(state, ran=ran)
            self._tries_ended.add(key)
            if not ran:
                facts = _started_at_end(facts)
                self._tries_started.add(key, facts.start_ms)
                mcps.extend(runtime.mapper.task_run_started(facts))
            mcps.extend(runtime.mapper.task_run_completed(facts, result, native))
        return mcps


# -- helpers --------------------------------------------------------------------------------------


def _may_be_a_scheduler(component: Any) -> bool:
    """Airflow 2 fires ``on_starting`` with a bare Job for every job (scheduler, triggerer,
    a task's LocalTaskJob); its runner sets ``job_type`` just after."""
    return (
        component is not None
        and type(component).__name__ == "Job"
        and hasattr(component, "job_type")
        and not compat.is_airflow_3()
    )


def _job_type(job: Any, wait_sec: float = 10.0) -> str | None:
    """The job's type once its runner has set it (read without touching the ORM instance)."""
    deadline = time.monotonic() + wait_sec
    while (job_type := vars(job).get("job_type")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return job_type


def _run_id(obj: Any) -> str | None:
    try:
        value = getattr(obj, "run_id", None)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def extract_dag_id(obj: Any) -> str | None:
    try:
        value = getattr(obj, "dag_id", None)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _dag_run_key(facts: Any) -> tuple[str, str, int]:
    # clear_number: a cleared run is a new start of the same instance (new STARTED event).
    return (facts.dag_id, facts.run_id, facts.clear_number or 0)


def _try_key(facts: Any) -> tuple[str, str, str, int, int]:
    return (facts.dag_id, facts.task_id, facts.run_id, facts.map_index, facts.try_number)


def _with(facts: Any, **changes: Any) -> Any:
    return attrs.evolve(facts, **changes)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _started_at_end(facts: Any) -> Any:
    """Facts of a try that never ran: it starts when it ends."""
    end = facts.end_ms if facts.end_ms is not None else _now_ms()
    return _with(facts, start_ms=end, end_ms=end)


def _templates(runtime: Runtime, dag: Any, dag_run: Any) -> list[Any]:
    """DataFlow/DataJob templates when this process has not sent the DAG's current version."""
    if dag is None:
        return []
    from datahub_airflow_listener.adapter import templates

    return list(
        templates.templates_for(
            dag,
            runtime.config,
            version=templates.dag_version_key(dag_run),
            base_url=runtime.base_url,
        )
    )


def _alias_lineage(runtime: Runtime, ti: Any, facts: Any) -> list[Any]:
    """Outputs that asset aliases resolved to during the try (known only at its end)."""
    task = compat.get_task(ti)
    if task is None:
        return []
    from datahub_airflow_listener.adapter import templates

    return list(
        templates.task_end_lineage(
            task,
            ti,
            config=runtime.config,
            run_urn=runtime.mapper.task_run_urn(
                facts.dag_id, facts.task_id, facts.run_id, facts.map_index
            ),
            when_ms=facts.start_ms if facts.start_ms is not None else _now_ms(),
            base_url=runtime.base_url,
        )
    )
