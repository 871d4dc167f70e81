"""Plain values out of Airflow objects: DagRun -> DagRunFacts, TaskInstance -> TaskRunFacts.

Every function here is defensive: any attribute of any Airflow object may be missing, of a
different type on another release, or raise when touched; the result then lacks that value
rather than the hook failing. Nothing here writes anywhere or opens a database session
(reading the task instances of a finished DAG run goes through :mod:`.compat`).

Inlets/outlets become dataset urns in :mod:`.lineage` (one place for every annotation form).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from datahub_airflow_listener.adapter import compat
from datahub_airflow_listener.domain.runs import DagRunFacts, TaskRunFacts

log = logging.getLogger(__name__)

__all__ = [
    "dag_run_facts",
    "task_iolets",
    "dag_run_result",
    "task_run_facts",
]


def dag_run_result(state: Any) -> tuple[str, str]:
    """(DataHub result, native result) of a finished DAG run."""
    native = compat.enum_value(state) or "none"
    return ("SUCCESS" if native == "success" else "FAILURE"), native


# -- small readers ---------------------------------------------------------------------------------


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    value = compat.enum_value(value)
    return value or None


def _int(value: Any, default: int | None = None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# -- DAG runs -------------------------------------------------------------------------------------


def dag_run_facts(dag_run: Any, *, base_url: str | None = None) -> DagRunFacts | None:
    """Facts of a DagRun (ORM or task-SDK model); None without a dag_id and run_id."""
    dag_id = _str(_get(dag_run, "dag_id"))
    run_id = _str(_get(dag_run, "run_id"))
    if not dag_id or not run_id:
        return None
    conf = _get(dag_run, "conf")
    conf_keys: tuple[str, ...] = ()
    if isinstance(conf, dict):
        conf_keys = tuple(sorted(str(k) for k in conf))
    logical = _get(dag_run, "logical_date")
    if logical is None:
        logical = _get(dag_run, "execution_date")  # 2.x name
    return DagRunFacts(
        dag_id=dag_id,
        run_id=run_id,
        run_type=compat.run_type_of(dag_run, run_id),
        logical_date=compat.to_iso(logical),
        data_interval_start=compat.to_iso(_get(dag_run, "data_interval_start")),
        data_interval_end=compat.to_iso(_get(dag_run, "data_interval_end")),
        conf_keys=conf_keys,  # type: ignore[arg-type]  # attrs converter=tuple confuses mypy
        clear_number=_int(_get(dag_run, "clear_number")),
        airflow_version=compat.airflow_version(),
        start_ms=compat.to_ms(_get(dag_run, "start_date")),
        end_ms=compat.to_ms(_get(dag_run, "end_date")),
        state=_str(_get(dag_run, "state")),
        url=compat.dag_run_url(base_url, dag_id, run_id) if base_url else None,
    )


# -- task instances -------------------------------------------------------------------------------


def _is_mapped(op: Any) -> bool:
    """A task with an instance per map index: mapped, or inside a mapped task group."""
    for name in ("_is_mapped", "is_mapped"):
        if _get(op, name) is True:
            return True
    return "Mapped" in type(op).__name__ or compat.mapped_group_id(op) is not None


def _unmapped_upstream_ids(task: Any) -> tuple[str, ...]:
    """Upstream task ids whose run instance has the unmapped id.

    A mapped upstream task has one instance per map index, and which exist is known only
    from the database: :mod:`.run_links` adds them; they are left out here rather than
    linked to an instance that does not exist.
    """
    ids = _get(task, "upstream_task_ids")
    if not isinstance(ids, Iterable) or isinstance(ids, str | bytes):
        return ()
    dag = _get(task, "dag")
    task_dict = _get(dag, "task_dict") if dag is not None else None
    keep = []
    for task_id in ids:
        op = task_dict.get(task_id) if isinstance(task_dict, dict) else None
        if op is not None and _is_mapped(op):
            continue
        keep.append(str(task_id))
    return tuple(sorted(keep))


def task_iolets(task: Any, config: Any = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inlets, outlets) urns a task declares, filtered by the configured dataset pattern."""
    if task is None:
        return (), ()
    from datahub_airflow_listener.adapter import lineage

    found = lineage.task_lineage(task, config=config)
    lineage.log_warnings(found.warnings)
    return tuple(found.inlets), tuple(found.outlets)


def task_run_facts(
    ti: Any,
    *,
    task: Any = None,
    dag_run: Any = None,
    base_url: str | None = None,
    include_iolets: bool = True,
    config: Any = None,
) -> TaskRunFacts | None:
    """Facts of one task try; None without dag_id, task_id and run_id.

    ``task`` is the operator (from the instance, or the DAG the scheduler attached to the run);
    without it there are no upstream ids or iolets. ``try_number`` is taken as Airflow reports
    it: on 2.10+ and 3.x every hook of one try sees the same value.
    """
    dag_id = _str(_get(ti, "dag_id"))
    task_id = _str(_get(ti, "task_id"))
    run_id = _str(_get(ti, "run_id"))
    if not dag_id or not task_id or not run_id:
        return None
    map_index = _int(_get(ti, "map_index"), -1)
    if map_index is None:
        map_index = -1
    try_number = _int(_get(ti, "try_number"), 1) or 1
    max_tries = _int(_get(ti, "max_tries"))
    upstream: tuple[str, ...] = ()
    inlets: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()
    if task is not None:
        upstream = _unmapped_upstream_ids(task)
        if include_iolets:
            inlets, outlets = task_iolets(task, config)
    operator = _str(_get(task, "task_type")) or _str(_get(ti, "operator"))
    return TaskRunFacts(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=map_index,
        try_number=try_number,
        max_tries=max_tries,
        state=_str(_get(ti, "state")),
        operator=operator,
        pool=_str(_get(ti, "pool")) or _str(_get(task, "pool")),
        queue=_str(_get(ti, "queue")) or _str(_get(task, "queue")),
        executor=_str(_get(ti, "executor")) or _str(_get(task, "executor")),
        hostname=_str(_get(ti, "hostname")),
        start_ms=compat.to_ms(_get(ti, "start_date")),
        end_ms=compat.to_ms(_get(ti, "end_date")),
        upstream_task_ids=upstream,  # type: ignore[arg-type]  # as conf_keys above
        inlets=inlets,  # type: ignore[arg-type]
        outlets=outlets,  # type: ignore[arg-type]
        url=(
            compat.task_log_url(
                base_url,
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=map_index,
                try_number=try_number,
            )
            if base_url
            else None
        ),
        run_type=compat.run_type_of(dag_run, run_id),
    )
