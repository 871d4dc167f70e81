"""Retention: which process instances a policy (age, newest K runs) removes, and why.

Pure (stdlib + attrs). Only DAG-run and task-run instances are ever candidates: a DataFlow,
a DataJob or any other entity is never planned for removal, and the task runs of a DAG run
that goes, go with it (no orphans).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import attrs

from datahub_airflow_listener.domain.history import DPI_PREFIX, FLOW_PREFIX, InstanceRecord

__all__ = ["CleanupItem", "plan_cleanup"]

_DAY_MS: Final = 86_400_000


@attrs.frozen(kw_only=True)
class CleanupItem:
    """A process instance a retention policy removes, and why."""

    urn: str
    kind: str  # dag_run | task_run
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int
    start_ms: int | None
    template_urn: str | None
    reason: str

    @property
    def label(self) -> str:
        if self.kind == "dag_run":
            return f"{self.dag_id} run {self.run_id}"
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{index} run {self.run_id}"


def plan_cleanup(
    records: Iterable[InstanceRecord],
    *,
    now_ms: int,
    older_than_days: float | None = None,
    keep_last: int | None = None,
    dag_id: str | None = None,
    include_removed: bool = False,
) -> list[CleanupItem]:
    """The process instances to remove, oldest first.

    * ``older_than_days``: instances that started before ``now - N days``;
    * ``keep_last``: per DataFlow, DAG runs beyond the newest K; per DataJob, instances of runs
      beyond its newest K runs (all mapped indexes of a run count as one run);
    * the task runs of a DAG run that goes, go with it (no orphans);
    * only DAG-run and task-run instances are candidates: a DataFlow, DataJob or any other
      entity is never returned. Instances without any known time are kept.
    * already soft-deleted instances are skipped unless ``include_removed`` (a hard delete).
    """
    if older_than_days is None and keep_last is None:
        raise ValueError("give older_than_days and/or keep_last")
    if keep_last is not None and keep_last < 0:
        raise ValueError("keep_last must be >= 0")
    candidates = [
        r
        for r in records
        if r.kind in ("dag_run", "task_run")
        and r.urn.startswith(DPI_PREFIX)
        and (include_removed or not r.removed)
        and (dag_id is None or r.dag_id == dag_id)
    ]
    reasons: dict[str, str] = {}
    if older_than_days is not None:
        cutoff = now_ms - int(older_than_days * _DAY_MS)
        for r in candidates:
            start = r.start_ms
            if start is not None and start < cutoff:
                reasons.setdefault(r.urn, f"older than {older_than_days:g} days")
    if keep_last is not None:
        for urn, reason in _beyond_newest(candidates, keep_last).items():
            reasons.setdefault(urn, reason)
    by_urn = {r.urn: r for r in candidates}
    doomed_runs = {u for u in reasons if by_urn[u].kind == "dag_run"}
    for r in candidates:
        if r.kind == "task_run" and r.parent_instance in doomed_runs:
            reasons.setdefault(r.urn, "its DAG run goes")
    items = [
        CleanupItem(
            urn=urn,
            kind=by_urn[urn].kind,
            dag_id=by_urn[urn].dag_id,
            task_id=by_urn[urn].task_id,
            run_id=by_urn[urn].run_id,
            map_index=by_urn[urn].map_index,
            start_ms=by_urn[urn].start_ms,
            template_urn=by_urn[urn].template_urn,
            reason=reason,
        )
        for urn, reason in reasons.items()
    ]
    items.sort(key=lambda i: (i.start_ms or 0, i.kind != "dag_run", i.urn))
    return items


def _beyond_newest(records: Sequence[InstanceRecord], keep: int) -> dict[str, str]:
    """Per template: instances of runs beyond the newest ``keep`` runs."""
    # template -> run key -> (newest start, urns)
    groups: dict[str, dict[str, tuple[int, list[str]]]] = {}
    for r in records:
        start = r.start_ms
        if start is None or r.template_urn is None:
            continue
        key = r.run_id or r.parent_instance or r.urn
        runs = groups.setdefault(r.template_urn, {})
        newest, urns = runs.get(key, (start, []))
        urns.append(r.urn)
        runs[key] = (max(newest, start), urns)
    out: dict[str, str] = {}
    for template, runs in groups.items():
        ordered = sorted(runs.items(), key=lambda kv: (-kv[1][0], kv[0]))
        what = "DAG" if template.startswith(FLOW_PREFIX) else "task"
        for _, (_, urns) in ordered[keep:]:
            for urn in urns:
                out[urn] = f"beyond the newest {keep} runs of its {what}"
    return out
