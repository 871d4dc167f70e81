"""Statistics over run history: success rate and p50/p90/p99 durations per task and per DAG.

Pure (stdlib + attrs). Definitions:

* Success rate = SUCCESS / (SUCCESS + FAILURE) over finished runs; SKIPPED runs are counted
  apart (a skipped branch is not a failure), RUNNING and UP_FOR_RETRY ones are not finished.
* A task run's duration is its last attempt's (what the task took when it ran to its end);
  earlier failed tries are counted in ``retried``.
* Percentiles use the nearest-rank method over the SUCCESS and FAILURE runs with a known
  duration (a skipped task did not run).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from datahub_airflow_listener.domain.history import DagRun

__all__ = ["TaskStats", "dag_stats", "percentile", "task_stats"]


def percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@attrs.frozen(kw_only=True)
class TaskStats:
    """Aggregates over one task's runs (or the DAG runs themselves, ``task_id`` None)."""

    task_id: str | None
    runs: int
    succeeded: int
    failed: int
    skipped: int
    unfinished: int
    retried: int
    success_rate: float | None
    p50_ms: int | None
    p90_ms: int | None
    p99_ms: int | None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _stats(task_id: str | None, items: Sequence[tuple[str, int | None, int]]) -> TaskStats:
    """``items``: (result, duration_ms, attempt count) per run."""
    succeeded = sum(1 for r, _, _ in items if r == "SUCCESS")
    failed = sum(1 for r, _, _ in items if r == "FAILURE")
    skipped = sum(1 for r, _, _ in items if r == "SKIPPED")
    durations = [d for r, d, _ in items if r in ("SUCCESS", "FAILURE") and d is not None]
    decided = succeeded + failed
    return TaskStats(
        task_id=task_id,
        runs=len(items),
        succeeded=succeeded,
        failed=failed,
        skipped=skipped,
        unfinished=len(items) - succeeded - failed - skipped,
        retried=sum(1 for _, _, n in items if n > 1),
        success_rate=succeeded / decided if decided else None,
        p50_ms=percentile(durations, 50),
        p90_ms=percentile(durations, 90),
        p99_ms=percentile(durations, 99),
    )


def task_stats(runs: Iterable[DagRun]) -> list[TaskStats]:
    """Per task id (mapped indexes together), in order of first appearance."""
    items: dict[str, list[tuple[str, int | None, int]]] = {}
    for run in runs:
        for task in run.task_runs:
            items.setdefault(task.task_id, []).append(
                (task.result, task.duration_ms, len(task.attempts))
            )
    return [_stats(task_id, values) for task_id, values in items.items()]


def dag_stats(runs: Iterable[DagRun]) -> TaskStats:
    """The same aggregates over the recorded DAG runs themselves."""
    items = [(r.result, r.duration_ms, 1) for r in runs if r.recorded]
    return _stats(None, items)
