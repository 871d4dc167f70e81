"""What the listener does with each hook: guard, extract facts once, decide, hand over.

Loaded on the first hook call, not when Airflow imports the plugin. :class:`RunRecorder` holds
the only state the listener has: what this process already sent (bounded).

Who sends what (one rule for every process, see :mod:`..domain.tries`):

* **A try's record** (its instance: properties, parent, template, upstreams; its STARTED and
  COMPLETE run events) is transcribed from what Airflow records in its metadata database, at
  Airflow's own times, by the processes that read that database: the scheduler (its end hook
  for a DAG run, and its watch of running runs, :mod:`.watcher`), the API server (marks) and
  the process of ``airflow dags test``. What one of them sends, any other would send
  identically, so a re-send (a restart, HA schedulers, a mark) overwrites itself.
* **A try's lineage** (its inputs and outputs: declared, set at run time, resolved from asset
  aliases, reported by the operator) comes only from the process that ran it
  (:mod:`.try_lineage`), so no other process's copy can overwrite it. A task process sends
  nothing else, and nothing at all when its task has no lineage.
* **A DAG run** is STARTED by the scheduler's running hook (under ``dags test``, by the first
  task) and COMPLETE by its end hook, which first closes every try of the run, earlier tries
  (``task_instance_history``) included.
* **Links between runs** (:mod:`.run_links`) are part of the record, read from the database
  by the same processes: a DAG run's (the task that triggered it, the producers of the asset
  events it consumed, and those events as its inputs) when it starts, and again at its end if
  a link could still appear; a task run's (every instance of a mapped upstream task, what a
  sensor waited for) with its STARTED, and a sensor's again with its COMPLETE. Only what a
  sensor waits for is stored by the sensor's own process, as an XCom, when its try starts.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any, Final, Generic, TypeVar

import attrs

from datahub_airflow_listener.adapter import compat, extract, metadb, run_links, try_lineage
from datahub_airflow_listener.adapter.config import get_config, kill_switch_engaged
from datahub_airflow_listener.adapter.logs import one_line
from datahub_airflow_listener.adapter.runtime import Runtime, get_runtime
from datahub_airflow_listener.domain.clock import now_ms
from datahub_airflow_listener.domain.links import RunRef
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.runs import DagRunFacts, TaskRunFacts
from datahub_airflow_listener.domain.tries import FINAL_STATES, Sent, TryPlan, plan_try

log = logging.getLogger(__name__)

__all__ = ["RunRecorder"]

_MAX_REMEMBERED: Final = 10_000

_V = TypeVar("_V")
TryKey = tuple[str, str, str, int, int]
RunKey = tuple[str, str, int]
InstanceKey = tuple[str, str, str, int]


class _Memory(Generic[_V]):
    """A bounded, thread-safe map (oldest forgotten first): what this process already sent."""

    def __init__(self, limit: int = _MAX_REMEMBERED) -> None:
        self._items: OrderedDict[Hashable, _V] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def put(self, key: Hashable, value: _V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self._limit:
                self._items.popitem(last=False)

    def add(self, key: Hashable, value: _V) -> bool:
        """Remember ``key`` (with ``value``); True if it was new, False if already known."""
        with self._lock:
            if key in self._items:
                return False
        self.put(key, value)
        return True

    def get(self, key: Hashable) -> _V | None:
        with self._lock:
            return self._items.get(key)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class RunRecorder:
    """Turns hook calls into MCPs for the dispatcher; remembers what this process sent."""

    def __init__(self) -> None:
        self._runs_started: _Memory[int] = _Memory()  # RunKey -> the STARTED time
        self._tries: _Memory[Sent] = _Memory()  # TryKey -> what was sent
        self._closed: _Memory[int | None] = _Memory()  # (dag_id, run_id) -> the end time sent
        # TryKey -> the lineage this task process sent for the try (at its start, then end)
        self._lineage_seen: _Memory[try_lineage.TryLineage] = _Memory()
        # (dag_id, run_id) -> the links sent with the DAG run; InstanceKey -> a task run's
        self._flow_links: _Memory[run_links.FlowLinks] = _Memory()
        self._task_links: _Memory[tuple[RunRef, ...]] = _Memory()
        self._decide = threading.Lock()  # hooks and the watch thread decide one at a time
        self._watcher: Any = None
        self._watch_process: Any = None  # the scheduler's watch process, when it has one
        self._job: Any = None
        self._watcher_lock = threading.Lock()
        self._pid = os.getpid()

    # -- lifecycle --------------------------------------------------------------------------------

    def starting(self, component: Any = None) -> None:
        """A process starts. A task process (Airflow 3's task runner) prepares nothing: it
        usually sends nothing, and resolves its connections on the hook thread when it does.
        Other processes preload the sender, which forked task processes then inherit."""
        if compat.in_task_sdk_process():
            return
        runtime = self._runtime()
        if runtime is None:
            return
        runtime.prepare()
        runtime.preload()
        if _may_be_a_scheduler(component):
            self._start_watch(runtime, component)

    def _start_watch(self, runtime: Runtime, job: Any) -> None:
        """A scheduler records from the metadata database: in a process of its own
        (:mod:`.watch_process`), or with ``watch_process = false`` (or when that process
        cannot run) in a thread of this process, next to its hooks."""
        with self._watcher_lock:
            self._job = job
            if runtime.config.watch_process:
                if self._watch_process is None:
                    from datahub_airflow_listener.adapter.watch_process import WatchProcess

                    self._watch_process = WatchProcess()
                    self._watch_process.start(job)
                return
        self._watch_here(runtime)

    def _watch_here(self, runtime: Runtime) -> None:
        """Watch in a thread of this process (once; again if that thread died)."""
        with self._watcher_lock:
            if self._watcher is None or not self._watcher.alive:
                from datahub_airflow_listener.adapter.watcher import Watcher

                self._watcher = Watcher(self, runtime.config.reconcile_interval_sec)
                self._watcher.start(self._job)

    def _delegated(self) -> bool:
        """A watch process records for this scheduler: its hooks leave the work to it. When
        that process is gone (or was never needed), this process watches itself again."""
        watch = self._watch_process
        if watch is None or os.getpid() != self._pid:  # a forked child is no scheduler
            return False
        if watch.alive:
            return True
        self._watch_process = None
        runtime = get_runtime(create=False)
        if runtime is not None and self._job is not None:
            self._watch_here(runtime)
        return False

    def stopping(self) -> None:
        runtime = get_runtime(create=False)
        if runtime is not None:
            runtime.flush()

    # -- DAG runs ---------------------------------------------------------------------------------

    def dag_run_running(self, dag_run: Any) -> None:
        if self._delegated():
            # The run's record is the watch process's; the DAG's templates go out now, before
            # its tasks run: sent later, they would overwrite the lineage a task's end puts on
            # its DataJob. Unchanged templates cost a lookup (see :mod:`.templates`).
            runtime = self._runtime(_str_attr(dag_run, "dag_id"), _str_attr(dag_run, "run_id"))
            if runtime is not None:
                runtime.submit(_templates(runtime, getattr(dag_run, "dag", None), dag_run))
            return
        self.dag_run_seen(dag_run)

    def dag_run_seen(self, dag_run: Any) -> None:
        """A DAG run is running (its hook) or was seen running or ended by the watch: its
        templates and its STARTED, once."""
        runtime = self._runtime(_str_attr(dag_run, "dag_id"), _str_attr(dag_run, "run_id"))
        if runtime is None:
            return
        facts = extract.dag_run_facts(dag_run, base_url=runtime.base_url)
        if facts is None or facts.start_ms is None or _run_key(facts) in self._runs_started:
            return
        dag = getattr(dag_run, "dag", None)
        if dag is None and not compat.in_dag_test_process(dag_run):
            dag = metadb.serialized_dag(facts.dag_id)
        mcps = _templates(runtime, dag, dag_run)
        if self._runs_started.add(_run_key(facts), facts.start_ms):
            mcps.extend(self._run_started(runtime, dag_run, facts))
        runtime.submit(mcps)

    def dag_run_finished(self, dag_run: Any, msg: Any = None) -> None:
        """The run's end hook (see :meth:`dag_run_ended`)."""
        if self._delegated():
            return
        self.dag_run_ended(dag_run)

    def dag_run_ended(self, dag_run: Any) -> None:
        """The run's end: close every try of the run, then the run itself."""
        if not compat.in_dag_test_process(dag_run):
            self.dag_run_seen(dag_run)  # its templates, if nothing sent them yet
        runtime = self._runtime(_str_attr(dag_run, "dag_id"), _str_attr(dag_run, "run_id"))
        if runtime is None:
            return
        facts = extract.dag_run_facts(dag_run, base_url=runtime.base_url)
        if facts is None:
            return
        key = _run_key(facts)
        if compat.in_dag_test_process(dag_run):
            # ``dags test`` sets the run's start_date to its logical date: the run starts when
            # its first task does (remembered), or when it ends if no task ran.
            first = self._runs_started.get(key)
            end = facts.end_ms if facts.end_ms is not None else now_ms()
            facts = attrs.evolve(facts, start_ms=first if first is not None else end, end_ms=end)
        if self.run_closed(facts.dag_id, facts.run_id, facts.end_ms):
            return  # this process sent this very end already
        mcps: list[MetadataChangeProposal] = []
        if facts.start_ms is not None and self._runs_started.add(key, facts.start_ms):
            # Re-sent (identical) if another process sent it: covers HA and restarts.
            mcps.extend(self._run_started(runtime, dag_run, facts))
        else:
            mcps.extend(self._run_links_again(runtime, dag_run, facts))
        mcps.extend(self._close_tries(runtime, dag_run, facts.end_ms))
        result, _native = extract.dag_run_result(facts.state)
        mcps.extend(runtime.mapper.dag_run_completed(facts, result))
        self._closed.put((facts.dag_id, facts.run_id), facts.end_ms)
        runtime.submit(mcps)

    def run_closed(self, dag_id: str, run_id: str, end: Any) -> bool:
        """True if this process recorded this end (a datetime or epoch ms) of this run."""
        key = (dag_id, run_id)
        end_ms = end if isinstance(end, int) or end is None else compat.to_ms(end)
        return key in self._closed and self._closed.get(key) == end_ms

    # -- task tries -------------------------------------------------------------------------------

    def task_running(self, ti: Any) -> None:
        self._task_hook(ti, at_end=False)

    def task_finished(self, ti: Any) -> None:
        self._task_hook(ti, at_end=True)

    def _task_hook(self, ti: Any, *, at_end: bool) -> None:
        """A try started or ended. In its task process: what only that process knows (its
        lineage, see :meth:`_try_io`). In any other process (the scheduler after a heartbeat
        timeout, the API server after a mark): the try, transcribed from the database."""
        ran_here = compat.ran_in_this_process(ti)
        if not ran_here and self._delegated():
            return
        found = self._task(ti)
        if found is None:
            return
        runtime, dag_run, task, facts = found
        mcps = self._dag_run_start_for_test(runtime, dag_run, facts.start_ms, task)
        if ran_here:
            in_test = compat.in_dag_test_process(dag_run)
            if not in_test:
                runtime.short_lived()
            if not at_end:
                run_links.record_sensor_target(task, ti)
            mcps.extend(self._try_io(runtime, facts, task, at_end=at_end, ti=ti))
            if at_end and in_test and compat.is_orm_instance(ti):
                # Airflow 2's ``dags test`` keeps no record of a try it retries (no
                # task_instance_history row): its instance at the end hook is the record.
                mcps.extend(self._transcript(runtime, [facts], links=_links_of(facts, task)))
        else:
            mcps.extend(self._transcript(runtime, [facts], links=_links_of(facts, task)))
        if mcps:
            runtime.submit(mcps)

    def transcribe_running(self, dag_run: Any, rows: Iterable[Any]) -> None:
        """The watch: tries of a running DAG run that changed in the database. A try this
        process already recorded as far as its state goes costs a dictionary lookup."""
        runtime = self._runtime(_str_attr(dag_run, "dag_id"), _str_attr(dag_run, "run_id"))
        if runtime is None:
            return
        rows = [row for row in rows if not self._recorded_as_far_as(row)]
        if not rows:
            return
        dag = getattr(dag_run, "dag", None) or metadb.serialized_dag(dag_run.dag_id)
        links = run_links.TaskLinks(dag_run.dag_id, dag_run.run_id, dag)
        tries = self._rows_facts(runtime, rows, dag_run, dag)
        mcps = self._transcript(runtime, tries, links=links)
        if mcps:
            runtime.submit(mcps)

    def _recorded_as_far_as(self, row: Any, *, completed: bool = False) -> bool:
        """This process sent everything the row's state calls for (read from its columns);
        with ``completed``, only a try this process completed counts."""
        try:
            key = (
                row.dag_id,
                row.task_id,
                row.run_id,
                -1 if row.map_index is None else row.map_index,
                max(int(row.try_number or 0), 1),
            )
        except Exception:
            return False
        sent = self._tries.get(key)
        if sent is None:
            return False
        if completed:
            return sent.completed
        return sent.completed or (
            sent.started_ms is not None
            and compat.enum_value(getattr(row, "state", None)) not in FINAL_STATES
        )

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

    def _forget(self) -> None:
        self._pid = os.getpid()
        self._runs_started.clear()
        self._tries.clear()
        self._closed.clear()
        self._lineage_seen.clear()
        self._flow_links.clear()
        self._task_links.clear()
        self._watcher = None
        self._watch_process = None
        self._job = None

    def _task(self, ti: Any) -> tuple[Runtime, Any, Any, TaskRunFacts] | None:
        """Guard, then the runtime, the try's DAG run, its task and its facts (built once)."""
        runtime = self._runtime(_str_attr(ti, "dag_id"), _str_attr(ti, "run_id"))
        if runtime is None:
            return None
        dag_run = compat.get_dag_run(ti)
        task = compat.get_task(ti)
        dag_id = _str_attr(ti, "dag_id")
        if task is None and dag_id and not compat.ran_in_this_process(ti):
            # the API server's instances carry no task: its definition (upstream tasks) is
            # read from the serialized DAG, so a mark records the links any process would
            task = _task_of(metadb.serialized_dag(dag_id), _str_attr(ti, "task_id") or "")
        facts = extract.task_run_facts(
            ti, task=task, dag_run=dag_run, base_url=runtime.base_url, include_iolets=False
        )
        if facts is None:
            return None
        return runtime, dag_run, task, facts

    def _rows_facts(
        self, runtime: Runtime, rows: Iterable[Any], dag_run: Any, dag: Any
    ) -> list[TaskRunFacts]:
        """Facts of tries read from the database, in a stable order (task, map index, try)."""
        found = (self._row_facts(runtime, row, dag_run, dag) for row in rows)
        return sorted((f for f in found if f is not None), key=_try_order)

    def _row_facts(self, runtime: Runtime, row: Any, dag_run: Any, dag: Any) -> TaskRunFacts | None:
        """Facts of a try read from the database (a task instance or an earlier try)."""
        task_id = compat.enum_value(getattr(row, "task_id", None)) or ""
        task = _task_of(dag, task_id)
        facts = extract.task_run_facts(
            row, task=task, dag_run=dag_run, base_url=runtime.base_url, include_iolets=False
        )
        if facts is None:
            return None
        if getattr(row, "archived", False) or type(row).__name__ == "TaskInstanceHistory":
            facts = attrs.evolve(facts, state=compat.earlier_try_state(row))
        return facts

    def _transcript(
        self,
        runtime: Runtime,
        tries: Iterable[TaskRunFacts],
        run_end_ms: int | None = None,
        *,
        links: run_links.TaskLinks | None = None,
    ) -> list[MetadataChangeProposal]:
        """The run events each try still needs; with a STARTED, the instance and its links
        (its lineage comes from the process that ran it); with a sensor's COMPLETE, its links
        again if they changed. Decided under the lock; the links are read after it."""
        now = now_ms()
        planned: list[tuple[TaskRunFacts, TryPlan]] = []
        with self._decide:
            for f in tries:
                key = _try_key(f)
                sent = self._tries.get(key)
                plan = plan_try(f, sent, run_end_ms=run_end_ms, now_ms=now)
                if plan.empty:
                    continue
                self._tries.put(key, plan.remembered(sent))
                planned.append((f, plan))
        mcps: list[MetadataChangeProposal] = []
        for f, plan in planned:
            at = attrs.evolve(f, start_ms=plan.started_ms)
            if plan.send_started:
                at = self._linked(at, links)
                mcps.extend(runtime.mapper.task_run_started(at))
            elif plan.completion is not None:
                mcps.extend(self._sensor_links_again(runtime, at, links))
            if plan.completion is not None:
                done = attrs.evolve(at, end_ms=plan.completion.end_ms)
                mcps.extend(
                    runtime.mapper.task_run_completed(
                        done, plan.completion.result, plan.completion.native
                    )
                )
        return mcps

    def _linked(self, facts: TaskRunFacts, links: run_links.TaskLinks | None) -> TaskRunFacts:
        """``facts`` with the runs its task run follows beyond its unmapped upstream tasks."""
        if links is None:
            return facts
        refs = links.upstream_runs(facts)
        self._task_links.put(_instance_key(facts), refs)
        return attrs.evolve(facts, upstream_runs=refs)

    def _sensor_links_again(
        self, runtime: Runtime, facts: TaskRunFacts, links: run_links.TaskLinks | None
    ) -> list[MetadataChangeProposal]:
        """A sensor's try ended: its relationships again if what it waited for is known now
        and was not when this process sent its STARTED."""
        if links is None or not run_links.waits_elsewhere(links.task(facts.task_id)):
            return []
        before = self._task_links.get(_instance_key(facts))
        linked = self._linked(facts, links)
        if before is not None and before == linked.upstream_runs:
            return []
        return runtime.mapper.task_run_relationships(linked)

    def _close_tries(
        self, runtime: Runtime, dag_run: Any, run_end_ms: int | None
    ) -> list[MetadataChangeProposal]:
        """Every try of an ended DAG run, current and earlier, from the database."""
        rows: list[Any] = []
        for read in (metadb.read_task_history, metadb.read_task_instances):
            try:
                rows.extend(read(dag_run))
            except Exception as exc:
                log.warning(
                    "datahub-airflow-listener: could not read the %s of %s/%s: %s",
                    "earlier tries" if read is metadb.read_task_history else "task instances",
                    _str_attr(dag_run, "dag_id"),
                    _str_attr(dag_run, "run_id"),
                    one_line(exc),
                )
        every_try = rows
        rows = [row for row in rows if not self._recorded_as_far_as(row, completed=True)]
        dag = getattr(dag_run, "dag", None)
        if dag is None and rows:
            dag = metadb.serialized_dag(dag_run.dag_id)
        links = run_links.TaskLinks(dag_run.dag_id, dag_run.run_id, dag, rows=every_try)
        tries = self._rows_facts(runtime, rows, dag_run, dag)
        return self._transcript(runtime, tries, run_end_ms, links=links)

    def _try_io(
        self, runtime: Runtime, facts: TaskRunFacts, task: Any, *, at_end: bool, ti: Any
    ) -> list[MetadataChangeProposal]:
        """The try's lineage, which only the process that runs it sends (see
        :mod:`.try_lineage`): what the task declares when it starts; at its end, the inputs
        and outputs again only if they changed (``execute()``, asset aliases, the operator's
        own report), and the DataJob's lineage when the end knew more."""
        key = _try_key(facts)
        if not at_end:
            start = try_lineage.declared(task, runtime.config)
            self._lineage_seen.add(key, start)
            try_lineage.prepare(task, runtime.config)
            return runtime.mapper.task_run_io(
                attrs.evolve(facts, inlets=start.inlets, outlets=start.outlets)
            )
        end = try_lineage.at_end(
            task, ti, config=runtime.config, succeeded=facts.state == "success"
        )
        mcps = try_lineage.end_mcps(
            runtime, task, facts, start=self._lineage_seen.get(key), end=end
        )
        self._lineage_seen.put(key, end)
        return mcps

    def _dag_run_start_for_test(
        self, runtime: Runtime, dag_run: Any, first_task_start_ms: int | None, task: Any
    ) -> list[MetadataChangeProposal]:
        """The DAG run's STARTED under ``airflow dags test`` (no running hook there).

        That mode sets the run's start_date to its logical date, so the run starts when its
        first task does; the end hook reuses the remembered start for the duration.
        """
        if dag_run is None or not compat.in_dag_test_process(dag_run):
            return []
        facts = extract.dag_run_facts(dag_run, base_url=runtime.base_url)
        if facts is None:
            return []
        start = first_task_start_ms if first_task_start_ms is not None else now_ms()
        if not self._runs_started.add(_run_key(facts), start):
            return []
        dag = getattr(dag_run, "dag", None) or getattr(task, "dag", None)
        mcps = _templates(runtime, dag, dag_run)
        mcps.extend(self._run_started(runtime, dag_run, attrs.evolve(facts, start_ms=start)))
        return mcps

    def _run_started(
        self, runtime: Runtime, dag_run: Any, facts: DagRunFacts
    ) -> list[MetadataChangeProposal]:
        """The DAG run's STARTED, with its links read from the database."""
        found = run_links.dag_run_links(dag_run, facts, runtime.config)
        self._flow_links.put((facts.dag_id, facts.run_id), found)
        return runtime.mapper.dag_run_started(attrs.evolve(facts, links=found.links))

    def _run_links_again(
        self, runtime: Runtime, dag_run: Any, facts: DagRunFacts
    ) -> list[MetadataChangeProposal]:
        """At the run's end: its links again when a link could still have appeared since it
        started (the triggering task's XCom written after the start)."""
        before = self._flow_links.get((facts.dag_id, facts.run_id))
        if before is None or before.complete:
            return []
        found = run_links.dag_run_links(dag_run, facts, runtime.config)
        self._flow_links.put((facts.dag_id, facts.run_id), found)
        if found.links == before.links:
            return []
        return runtime.mapper.dag_run_links(attrs.evolve(facts, links=found.links))


# -- helpers --------------------------------------------------------------------------------------


def _may_be_a_scheduler(component: Any) -> bool:
    """``on_starting`` receives a bare Job for every job (scheduler, triggerer, 2.x task
    jobs); its runner sets ``job_type`` just after."""
    return component is not None and type(component).__name__ == "Job"


def _links_of(facts: TaskRunFacts, task: Any) -> run_links.TaskLinks:
    """The reader of a try's links, with the DAG its task belongs to (if it has one)."""
    dag = getattr(task, "dag", None) if task is not None else None
    return run_links.TaskLinks(facts.dag_id, facts.run_id, dag)


def _str_attr(obj: Any, name: str) -> str | None:
    try:
        value = getattr(obj, name, None)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _task_of(dag: Any, task_id: str) -> Any:
    try:
        task_dict = getattr(dag, "task_dict", None) if dag is not None else None
        return task_dict.get(task_id) if isinstance(task_dict, dict) else None
    except Exception:
        return None


def _run_key(facts: DagRunFacts) -> RunKey:
    # clear_number: a cleared run is a new start of the same instance (new STARTED event).
    return (facts.dag_id, facts.run_id, facts.clear_number or 0)


def _try_key(facts: TaskRunFacts) -> TryKey:
    return (facts.dag_id, facts.task_id, facts.run_id, facts.map_index, facts.try_number)


def _instance_key(facts: TaskRunFacts) -> InstanceKey:
    return (facts.dag_id, facts.task_id, facts.run_id, facts.map_index)


def _try_order(facts: TaskRunFacts) -> tuple[str, int, int]:
    return (facts.task_id, facts.map_index, facts.try_number)


def _templates(runtime: Runtime, dag: Any, dag_run: Any) -> list[MetadataChangeProposal]:
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
