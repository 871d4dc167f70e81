"""Run history, its statistics and cleanup plans, as terminal text and as JSON."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from datahub_airflow_listener.cli.output import out
from datahub_airflow_listener.cli.times import format_duration, format_ms

if TYPE_CHECKING:
    from datahub_airflow_listener.domain.history import Attempt, DagRun, TaskRun
    from datahub_airflow_listener.domain.retention import CleanupItem
    from datahub_airflow_listener.domain.stats import TaskStats

__all__ = ["print_plan", "print_runs", "runs_json"]

log = logging.getLogger(__name__)


# -- runs as JSON --------------------------------------------------------------------------------


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.number,
        "status": attempt.status,
        "result": attempt.result,
        "native_result": attempt.native_result,
        "start_ms": attempt.start_ms,
        "end_ms": attempt.end_ms,
        "duration_ms": attempt.duration_ms,
    }


def _task_json(task: TaskRun) -> dict[str, Any]:
    return {
        "urn": task.urn,
        "task_id": task.task_id,
        "map_index": task.map_index,
        "result": task.result,
        "start_ms": task.start_ms,
        "end_ms": task.end_ms,
        "duration_ms": task.duration_ms,
        "tries": len(task.attempts),
        "inputs": list(task.inputs),
        "outputs": list(task.outputs),
        "attempts": [_attempt_json(a) for a in task.attempts],
    }


def runs_json(args: argparse.Namespace, where: str, runs: list[DagRun]) -> dict[str, Any]:
    """The ``runs --json`` document: the filters, the runs and their statistics."""
    from datahub_airflow_listener.domain.stats import dag_stats, task_stats

    return {
        "dag_id": args.dag,
        "source": where.removeprefix("the "),
        "filters": {
            "task": args.task,
            "result": args.result,
            "since": args.since,
            "until": args.until,
            "limit": args.limit,
        },
        "runs": [
            {
                "urn": run.urn,
                "run_id": run.run_id,
                "run_type": run.run_type,
                "recorded": run.recorded,
                "result": run.result,
                "start_ms": run.start_ms,
                "end_ms": run.end_ms,
                "duration_ms": run.duration_ms,
                "task_runs": [_task_json(t) for t in run.task_runs],
            }
            for run in runs
        ],
        "stats": {
            "dag_runs": dag_stats(runs).as_dict(),
            "tasks": [s.as_dict() for s in task_stats(runs)],
        },
    }


# -- runs as text --------------------------------------------------------------------------------


def print_runs(args: argparse.Namespace, where: str, runs: list[DagRun]) -> None:
    """DAG run -> task runs -> attempts, newest first, then the statistics table."""
    what = f"task {args.task!r} of DAG {args.dag!r}" if args.task else f"DAG {args.dag!r}"
    filters = [
        f"{name} {value}"
        for name, value in (("result", args.result), ("since", args.since), ("until", args.until))
        if value
    ]
    head = f"{what}: {len(runs)} run(s), newest first, from {where}"
    out(head + (f" (filtered: {', '.join(filters)})" if filters else ""))
    if not runs:
        out("no runs match")
        return
    width = (
        max(len(t.label) for r in runs for t in r.task_runs)
        if any(r.task_runs for r in runs)
        else 10
    )
    for run in runs:
        out()
        status = run.result if run.recorded else f"{run.result}?"
        line = (
            f"{run.run_id or '?'}  {status}  started {format_ms(run.start_ms)}"
            f"  took {format_duration(run.duration_ms)}"
        )
        if run.run_type:
            line += f"  ({run.run_type})"
        if not run.recorded:
            line += "  [no DAG-run record; result from its tasks]"
        out(line)
        for task in run.task_runs:
            tries = len(task.attempts)
            first = task.attempts[-1] if task.attempts else None
            out(
                f"  {task.label:<{width}}  {task.result:<12}  started {format_ms(task.start_ms)}"
                f"  {format_duration(task.duration_ms):>7}"
                + (f"  {tries} tries" if tries > 1 else f"  try {first.number}" if first else "")
            )
            if tries > 1:
                for attempt in task.attempts:
                    out(
                        f"  {'':<{width}}    try {attempt.number}: {attempt.outcome:<12}"
                        f"  started {format_ms(attempt.start_ms)}"
                        f"  {format_duration(attempt.duration_ms):>7}"
                    )
            for label, urns in (("in ", task.inputs), ("out", task.outputs)):
                for urn in urns:
                    out(f"  {'':<{width}}    {label}: {urn}")
    out()
    _print_stats(runs)


def _pct(stats: TaskStats) -> str:
    return "-" if stats.success_rate is None else f"{stats.success_rate * 100:.0f}%"


def _print_stats(runs: list[DagRun]) -> None:
    from datahub_airflow_listener.domain.stats import dag_stats, task_stats

    rows = [("(DAG run)", dag_stats(runs))] + [(s.task_id or "?", s) for s in task_stats(runs)]
    width = max(len(name) for name, _ in rows)
    out(f"Over these {len(runs)} run(s): success = SUCCESS / (SUCCESS + FAILURE)")
    out(
        f"  {'task':<{width}}  {'runs':>4}  {'success':>7}  {'failed':>6}  {'skipped':>7}"
        f"  {'retried':>7}  {'p50':>7}  {'p90':>7}  {'p99':>7}"
    )
    for name, s in rows:
        if not s.runs:
            continue
        out(
            f"  {name:<{width}}  {s.runs:>4}  {_pct(s):>7}  {s.failed:>6}  {s.skipped:>7}"
            f"  {s.retried:>7}  {format_duration(s.p50_ms):>7}  {format_duration(s.p90_ms):>7}"
            f"  {format_duration(s.p99_ms):>7}"
        )


# -- cleanup plans -------------------------------------------------------------------------------


def print_plan(plan: list[CleanupItem], where: str, hard: bool, *, dry_run: bool) -> None:
    """What a cleanup removes (or would remove), oldest first, one line per instance."""
    verb = "hard-delete" if hard else "soft-delete"
    if not plan:
        out(f"nothing to {verb} in {where}")
        return
    dag_runs = sum(1 for i in plan if i.kind == "dag_run")
    head = "would " + verb if dry_run else verb.replace("delete", "deleting")
    out(
        f"{head} {len(plan)} process instance(s) in {where} "
        f"({dag_runs} DAG run(s), {len(plan) - dag_runs} task run(s)):"
    )
    for item in plan:
        kind = "DAG run " if item.kind == "dag_run" else "task run"
        out(f"  {format_ms(item.start_ms)}  {kind}  {item.label}  ({item.reason})")
