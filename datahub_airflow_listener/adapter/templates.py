"""DataFlow/DataJob templates of a DAG, sent only when they change.

Entry points for the listener (each never raises; problems are logged once, as warnings):

* :func:`templates_for` ``(dag, config, *, version=None, base_url=None) -> list[MCP]`` -- the
  DAG's template MCPs if their fingerprint differs from the last one sent for that dag id
  (by this process, or by any process sharing ``config.outbox_path``, where fingerprints are
  kept under ``templates/``), else ``[]``; unchanged templates are resent once a day.
  ``dag`` is any DAG object: the task SDK's ``DAG``, the scheduler's ``SerializedDAG``
  (``dag_run.dag``) or an Airflow 2 ``DAG``. ``version`` is an optional cheap
  key that changes with the DAG (3.x ``dag_run.created_dag_version_id``, see
  :func:`dag_version_key`): when it equals the last one seen, nothing is even built.
* :func:`dag_facts` / :func:`task_facts` -- the plain values, for callers that build MCPs
  themselves (``domain.pipeline``).

Where to call :func:`templates_for`: where a DAG is seen once per run, i.e.
``on_dag_run_running`` in the scheduler (``dag_run.dag``), and, because ``airflow dags test``
fires no running hook, on the first task event of a run in a ``dags test`` process
(``ti.task.dag``). NOT in an ordinary task process: each try runs in a fresh process, so even
the fingerprint check (building the whole DAG's MCPs) would run on every task start. The
memory (:class:`TemplateTracker`) is bounded and thread-safe; a forked child inherits it,
which is right (the parent already sent those templates).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final

import attrs

from datahub_airflow_listener.adapter import compat
from datahub_airflow_listener.adapter.lineage import log_warnings, task_lineage
from datahub_airflow_listener.domain.lineage import TaskLineage
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.pipeline import (
    DagFacts,
    TaskFacts,
    TemplateOptions,
    dag_template_mcps,
    split_owners,
    template_fingerprint,
)

log = logging.getLogger(__name__)

__all__ = [
    "TemplateTracker",
    "dag_facts",
    "dag_version_key",
    "get_tracker",
    "reset_trackers",
    "task_facts",
    "templates_for",
]

_MAX_DAGS: Final = 5000
_REFRESH_SEC: Final = 24 * 3600.0
_STATE_SUBDIR: Final = "templates"


# -- facts ----------------------------------------------------------------------------------------


def _get(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = compat.enum_value(value)
    return text if isinstance(text, str) and text else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _iso(value: Any) -> str | None:
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        try:
            return str(iso())
        except Exception:
            return None
    return _text(value)


def _duration(value: Any) -> str | None:
    """``execution_timeout`` as Airflow shows it (``0:05:00``); a number is seconds."""
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(dt.timedelta(seconds=value))
    return _text(value)


def task_facts(
    task: Any,
    *,
    config: Any = None,
    base_url: str | None = None,
    dag_id: str | None = None,
    lineage: TaskLineage | None = None,
) -> tuple[TaskFacts, tuple[str, ...]]:
    """(facts, lineage warnings) of one task definition (SDK, serialized or 2.x operator)."""
    task_id = _text(_get(task, "task_id")) or "?"
    dag_id = dag_id or _text(_get(task, "dag_id")) or "?"
    if lineage is None:
        lineage = task_lineage(task, config=config)
    upstream = _get(task, "upstream_task_ids") or ()
    facts = TaskFacts(
        task_id=task_id,
        operator=_text(_get(task, "task_type")) or _text(_get(task, "operator_name")),
        doc_md=_text(_get(task, "doc_md")) or _text(_get(task, "doc")),
        retries=_int(_get(task, "retries")),
        pool=_text(_get(task, "pool")),
        queue=_text(_get(task, "queue")),
        trigger_rule=_text(_get(task, "trigger_rule")),
        execution_timeout=_duration(_get(task, "execution_timeout")),
        upstream_task_ids=sorted(str(t) for t in upstream),  # type: ignore[arg-type]  # attrs converter
        inlets=lineage.inlets,
        outlets=lineage.outlets,
        upstream_jobs=lineage.upstream_jobs,
        url=compat.task_url(base_url, dag_id, task_id, _get(config, "datajob_url_link"))
        if base_url
        else None,
        owner=_text(_get(task, "owner")),
    )
    return facts, lineage.warnings


def dag_facts(
    dag: Any, *, config: Any = None, base_url: str | None = None
) -> tuple[DagFacts, tuple[str, ...]]:
    """(facts, lineage warnings of its tasks) of a DAG object of any supported kind."""
    dag_id = _text(_get(dag, "dag_id"))
    if not dag_id:
        raise ValueError(f"not a DAG: {type(dag).__name__} has no dag_id")
    warnings: list[str] = []
    tasks: list[TaskFacts] = []
    for task in _tasks(dag):
        one, problems = task_facts(task, config=config, base_url=base_url, dag_id=dag_id)
        tasks.append(one)
        warnings.extend(problems)
    tags = _get(dag, "tags") or ()
    catchup = _get(dag, "catchup")
    facts = DagFacts(
        dag_id=dag_id,
        description=_text(_get(dag, "description")),
        doc_md=_text(_get(dag, "doc_md")),
        schedule=compat.schedule_text(dag),
        start_date=_iso(_get(dag, "start_date")),
        catchup=catchup if isinstance(catchup, bool) else None,
        max_active_runs=_int(_get(dag, "max_active_runs")),
        fileloc=compat.relative_fileloc(dag),
        url=compat.dag_url(base_url, dag_id) if base_url else None,
        owners=split_owners(_text(_get(dag, "owner"))),
        tags=sorted({str(t) for t in tags}),  # type: ignore[arg-type]  # attrs converter
        tasks=tasks,  # type: ignore[arg-type]  # attrs converter
    )
    return facts, tuple(warnings)


def _tasks(dag: Any) -> list[Any]:
    """The DAG's tasks; a DAG whose tasks cannot be read raises (no half templates)."""
    tasks = getattr(dag, "tasks", None)
    if tasks is None:
        tasks = list((getattr(dag, "task_dict", None) or {}).values())
    return sorted(tasks, key=lambda t: str(_get(t, "task_id")))


def dag_version_key(dag_run: Any) -> Hashable | None:
    """A cheap key that changes when the run's DAG changes: 3.x the DAG version the run was
    created with; None on 2.x (then the fingerprint decides, at the cost of building)."""
    key = _get(dag_run, "created_dag_version_id")
    if key is None:
        return None
    try:
        hash(key)
    except TypeError:
        return str(key)
    return key  # type: ignore[no-any-return]  # hashable, checked above


# -- the tracker ----------------------------------------------------------------------------------


@attrs.frozen
class _Seen:
    fingerprint: str
    version: Hashable | None
    at: float


class TemplateTracker:
    """The fingerprint of the templates last sent for each dag id, per process (and, with
    ``state_dir``, per machine).

    * Thread-safe; bounded to ``max_dags`` entries in memory (the least recently seen is
      forgotten and would merely be sent again). Of threads racing on one change, only one
      gets the MCPs back.
    * ``state_dir``: also keep each fingerprint in a small file there, so a new process (every
      ``airflow dags test``, a restarted scheduler) does not resend unchanged templates.
      Processes racing on one change may both send (identical UPSERTs: harmless).
    * ``refresh_sec``: templates are resent after this long even if unchanged, which bounds
      the damage of a process that recorded a fingerprint but died before its MCPs were
      delivered.
    """

    def __init__(
        self,
        max_dags: int = _MAX_DAGS,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        refresh_sec: float = _REFRESH_SEC,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._max = max_dags
        self._lock = threading.Lock()
        self._dir = os.path.join(os.fspath(state_dir), _STATE_SUBDIR) if state_dir else None
        self._refresh = refresh_sec
        self._clock = clock

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def forget(self, dag_id: str | None = None) -> None:
        """Forget one DAG (or all), in memory: its templates are sent again next time unless
        ``state_dir`` remembers them."""
        with self._lock:
            if dag_id is None:
                self._seen.clear()
            else:
                self._seen.pop(dag_id, None)

    def _fresh(self, seen: _Seen | None) -> bool:
        return seen is not None and self._clock() - seen.at < self._refresh

    def is_current(self, dag_id: str, version: Hashable | None) -> bool:
        """True if ``version`` is the one last sent for ``dag_id`` (nothing to build)."""
        if version is None:
            return False
        with self._lock:
            seen = self._seen.get(dag_id)
            if not self._fresh(seen) or seen is None or seen.version != version:
                return False
            self._seen.move_to_end(dag_id)
            return True

    def record(self, dag_id: str, fingerprint: str, version: Hashable | None = None) -> bool:
        """Remember ``fingerprint``; True if the templates should be sent (changed, never
        seen, or last sent more than ``refresh_sec`` ago)."""
        now = self._clock()
        with self._lock:
            seen = self._seen.get(dag_id)
            if seen is None and self._dir is not None:
                seen = self._read(dag_id)
            send = not self._fresh(seen) or seen is None or seen.fingerprint != fingerprint
            at = now if send or seen is None else seen.at
            self._seen[dag_id] = _Seen(fingerprint, version, at)
            self._seen.move_to_end(dag_id)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
        if send and self._dir is not None:
            self._write(dag_id, fingerprint)
        return send

    # -- the state directory ---------------------------------------------------------------------

    def _path(self, dag_id: str) -> str:
        name = hashlib.sha256(dag_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return os.path.join(self._dir or ".", name)

    def _read(self, dag_id: str) -> _Seen | None:
        path = self._path(dag_id)
        try:
            with open(path, encoding="ascii") as handle:
                stored_id, fingerprint = handle.read().split("\n")[:2]
            at = os.stat(path).st_mtime
        except (OSError, ValueError, UnicodeError):
            return None
        if stored_id != dag_id.encode("unicode_escape").decode("ascii"):
            return None
        return _Seen(fingerprint, None, at)

    def _write(self, dag_id: str, fingerprint: str) -> None:
        """Atomic replace; a read-only or full disk only costs resending later."""
        if self._dir is None:
            return
        path = self._path(dag_id)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            os.makedirs(self._dir, exist_ok=True)
            with open(tmp, "w", encoding="ascii") as handle:
                handle.write(f"{dag_id.encode('unicode_escape').decode('ascii')}\n{fingerprint}\n")
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("template state for %s not written: %s", dag_id, exc)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def templates_for(
        self,
        dag: Any,
        config: Any = None,
        *,
        version: Hashable | None = None,
        base_url: str | None = None,
    ) -> list[MetadataChangeProposal]:
        """The DAG's template MCPs if they changed since this process last sent them, else [].

        ``config``: the adapter's config (or anything with the same attribute names; None
        means defaults). ``base_url``: the Airflow UI (externalUrl); None leaves links out.
        Never raises: a DAG that cannot be read gets one warning and no templates.
        """
        dag_id = _text(_get(dag, "dag_id")) or "?"
        try:
            if self.is_current(dag_id, version):
                return []
            facts, warnings = dag_facts(dag, config=config, base_url=base_url)
            log_warnings(warnings)
            mcps = dag_template_mcps(facts, TemplateOptions.from_config(config))
            if not self.record(facts.dag_id, template_fingerprint(mcps), version):
                return []
            return mcps
        except Exception as exc:
            log_warnings([f"DAG {dag_id}: templates not built: {type(exc).__name__}: {exc}"])
            log.debug("templates of %s failed", dag_id, exc_info=True)
            return []


_trackers: dict[str | None, TemplateTracker] = {}
_trackers_lock = threading.Lock()


def get_tracker(config: Any = None) -> TemplateTracker:
    """The process's tracker for ``config``: its state lives under ``config.outbox_path``
    (``<outbox_path>/templates/``) when the config has one, else in memory only."""
    state_dir = _get(config, "outbox_path")
    key = str(state_dir) if state_dir else None
    with _trackers_lock:
        tracker = _trackers.get(key)
        if tracker is None:
            tracker = _trackers[key] = TemplateTracker(state_dir=key)
        return tracker


def reset_trackers() -> None:
    """Forget every tracker of this process (tests)."""
    with _trackers_lock:
        _trackers.clear()


def templates_for(
    dag: Any,
    config: Any = None,
    *,
    version: Hashable | None = None,
    base_url: str | None = None,
) -> list[MetadataChangeProposal]:
    """:meth:`TemplateTracker.templates_for` on the process's tracker for ``config``."""
    return get_tracker(config).templates_for(dag, config, version=version, base_url=base_url)
