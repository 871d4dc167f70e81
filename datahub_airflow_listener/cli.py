"""The ``datahub-airflow-listener`` command line (also ``python -m datahub_airflow_listener``).

Commands:

* ``runs``     -- a DAG's recorded run history as a tree, with per-task statistics;
* ``export``   -- the local store to DataHub's file format;
* ``flush``    -- deliver what the shared outbox holds now;
* ``check``    -- the configuration and each connection, as the listener sees them;
* ``cleanup``  -- retention: soft- or hard-delete old process instances (local store or GMS);
* ``enable`` / ``disable`` -- the kill switch, without a restart.

Every command prints one clear line and exits non-zero on a user error (a wrong DAG id, an
unreachable server, a refused token); tracebacks are only shown with ``--debug``.

Importing this module costs nothing beyond argparse: each command imports what it needs, and
only commands that read the Airflow configuration import Airflow (``runs``/``export``/
``cleanup`` do not when given ``--store`` or ``--server``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from datahub_airflow_listener import __version__

if TYPE_CHECKING:
    from datahub_airflow_listener.adapter.config import DatahubConfig
    from datahub_airflow_listener.domain.history import (
        CleanupItem,
        DagRun,
        TaskRun,
        TaskStats,
    )
    from datahub_airflow_listener.transport.gms_read import GmsReader
    from datahub_airflow_listener.transport.local import LocalStore

log = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace], int]

TOKEN_ENV = "DATAHUB_GMS_TOKEN"  # noqa: S105 -- the NAME of the variable holding the token
RESULT_CHOICES = ("SUCCESS", "FAILURE", "SKIPPED", "UP_FOR_RETRY", "RUNNING")
_USER_ERRORS = frozenset(
    {"TransportError", "OperateError", "OSError", "DomainError", "DatabaseError"}
)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


# -- shared plumbing -----------------------------------------------------------------------------


# Where command output goes. ``main`` points it at the real stdout and sends everything else
# written to sys.stdout meanwhile (Airflow logs to stdout) to stderr, so ``--json`` stays clean.
_stdout: TextIO | None = None


def _out(text: str = "") -> None:
    (_stdout or sys.stdout).write(text + "\n")


def _settings() -> tuple[DatahubConfig, list[str]]:
    """The ``[datahub]`` config as the listener reads it (imports Airflow's configuration)."""
    try:
        from datahub_airflow_listener.adapter.operate import load_settings
    except ImportError as exc:
        raise CliError(
            f"this command reads the Airflow configuration, but Airflow cannot be imported ({exc})"
        ) from None
    return load_settings()


def _local_store(args: argparse.Namespace) -> tuple[LocalStore, str | None]:
    """The local store (``--store DIR`` or the config's ``outbox_path``); must already exist."""
    from datahub_airflow_listener.transport.local import LocalConfig, LocalStore

    platform_instance = None
    if args.store:
        directory = Path(args.store).expanduser()
    else:
        from datahub_airflow_listener.adapter.operate import local_store_dir

        config, _ = _settings()
        directory = local_store_dir(config)
        platform_instance = config.platform_instance
    store = LocalStore(LocalConfig(directory=str(directory)))
    if not store.path.exists():
        raise CliError(
            f"no local store at {store.path}: the plugin writes there only while no DataHub "
            "connection is configured (or give --store DIR)"
        )
    return store, platform_instance


def _gms(args: argparse.Namespace) -> tuple[GmsReader, str, str | None]:
    """A GMS reader, and the cluster/platform instance of this deployment's urns."""
    from datahub_airflow_listener.transport.gms_read import GmsReader
    from datahub_airflow_listener.transport.rest import RestConfig

    if args.server:
        try:
            config = RestConfig.from_dict(
                {"server": args.server, "token": os.environ.get(TOKEN_ENV) or None}
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return GmsReader(config), args.cluster or "prod", args.platform_instance
    from datahub_airflow_listener.adapter.operate import rest_config_for

    settings, _ = _settings()
    rest = rest_config_for(settings, args.conn)
    return (
        GmsReader(rest),
        args.cluster or settings.cluster,
        args.platform_instance or settings.platform_instance,
    )


def _mapper(cluster: str, platform_instance: str | None) -> Any:
    from datahub_airflow_listener.domain.runs import RunMapper

    return RunMapper(cluster=cluster, platform_instance=platform_instance)


def _urn_of(mapper: Any, build: Callable[..., str], *parts: str) -> str:
    try:
        return build(*parts)
    except ValueError as exc:  # InvalidUrnError: a dag or task id DataHub cannot hold
        raise CliError(str(exc)) from None


# -- runs ----------------------------------------------------------------------------------------


def _time_bound(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    from datahub_airflow_listener.domain.history import parse_time

    try:
        from datahub_airflow_listener.domain.clock import now_ms

        return parse_time(text, now_ms=now_ms())
    except ValueError as exc:
        raise CliError(f"{what}: {exc}") from None


def cmd_runs(args: argparse.Namespace) -> int:
    from datahub_airflow_listener.domain import history

    since = _time_bound(args.since, "--since")
    until = _time_bound(args.until, "--until")
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    if args.source == "gms":
        runs, where = _gms_runs(args, since, until)
    else:
        store, platform_instance = _local_store(args)
        where = f"the local store {store.path}"
        with store:
            mcps = (m.wire() for m in store.iter_mcps(entity_type="dataProcessInstance"))
            runs = history.build_history(mcps, platform_instance=platform_instance)
        known = history.dag_ids(runs)
        if args.dag not in known:
            listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
            raise CliError(
                f"no runs of DAG {args.dag!r} in {where}"
                + (f"; DAGs with runs there: {listed}" if known else " (it holds no runs yet)")
            )
    if args.task:
        tasks = {t.task_id for r in runs if r.dag_id == args.dag for t in r.task_runs}
        if args.task not in tasks:
            raise CliError(
                f"DAG {args.dag!r} has no runs of task {args.task!r} in {where}; "
                f"tasks seen: {', '.join(sorted(tasks)) or 'none'}"
            )
    selected = history.select_runs(
        runs,
        dag_id=args.dag,
        task_id=args.task,
        result=args.result,
        since_ms=since,
        until_ms=until,
        limit=args.limit,
    )
    if args.json:
        _print_json(_runs_json(args, where, selected))
    else:
        _print_runs(args, where, selected)
    return 0


def _gms_runs(
    args: argparse.Namespace, since: int | None, until: int | None
) -> tuple[list[DagRun], str]:
    """Fetch just enough from a GMS: the DAG runs, then task runs of the newest matching ones."""
    from datahub_airflow_listener.domain import history

    reader, cluster, platform_instance = _gms(args)
    where = f"DataHub at {reader.server}"
    mapper = _mapper(cluster, platform_instance)
    flow = _urn_of(mapper, mapper.flow_urn, args.dag)
    with reader:
        dag_urns = reader.flow_instances(flow)
        job = _urn_of(mapper, mapper.job_urn, args.dag, args.task) if args.task else None
        if not dag_urns:
            # No DAG-run instances (e.g. history of the official plugin): the jobs' instances.
            jobs = [job] if job else reader.flow_jobs(flow)
            task_urns = [u for j in jobs for u in reader.job_instances(j)]
            if not task_urns:
                known = reader.entity_exists(flow)
                raise CliError(
                    f"no runs of DAG {args.dag!r} in {where}"
                    + ("" if known else f" (no DataFlow {flow} there: check the DAG id)")
                )
            mcps = [m for u in task_urns for m in reader.instance_mcps(u)]
            return history.build_history(mcps, platform_instance=platform_instance), where
        dag_mcps = [m for u in dag_urns for m in reader.instance_mcps(u)]
        shells = history.select_runs(
            history.build_history(dag_mcps, platform_instance=platform_instance),
            dag_id=args.dag,
            result=None if args.task else args.result,
            since_ms=since,
            until_ms=until,
            limit=None if args.task else args.limit,
        )
        wanted_jobs = set(reader.job_instances(job)) if job else None
        task_mcps = []
        for shell in shells:
            if shell.urn is None:
                continue
            for urn in reader.child_instances(shell.urn):
                if wanted_jobs is None or urn in wanted_jobs:
                    task_mcps.extend(reader.instance_mcps(urn))
        chosen = {s.urn for s in shells}
        kept = [m for m in dag_mcps if m["entityUrn"] in chosen]
        runs = history.build_history(kept + task_mcps, platform_instance=platform_instance)
    return runs, where


def _print_json(value: Any) -> None:
    import json

    _out(json.dumps(value, indent=2, sort_keys=False))


def _attempt_json(attempt: Any) -> dict[str, Any]:
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


def _runs_json(args: argparse.Namespace, where: str, runs: list[DagRun]) -> dict[str, Any]:
    from datahub_airflow_listener.domain import history

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
            "dag_runs": history.dag_stats(runs).as_dict(),
            "tasks": [s.as_dict() for s in history.task_stats(runs)],
        },
    }


def _print_runs(args: argparse.Namespace, where: str, runs: list[DagRun]) -> None:
    from datahub_airflow_listener.domain.history import format_duration, format_ms

    what = f"task {args.task!r} of DAG {args.dag!r}" if args.task else f"DAG {args.dag!r}"
    filters = [
        f"{name} {value}"
        for name, value in (("result", args.result), ("since", args.since), ("until", args.until))
        if value
    ]
    head = f"{what}: {len(runs)} run(s), newest first, from {where}"
    _out(head + (f" (filtered: {', '.join(filters)})" if filters else ""))
    if not runs:
        _out("no runs match")
        return
    width = (
        max(len(t.label) for r in runs for t in r.task_runs)
        if any(r.task_runs for r in runs)
        else 10
    )
    for run in runs:
        _out()
        status = run.result if run.recorded else f"{run.result}?"
        line = (
            f"{run.run_id or '?'}  {status}  started {format_ms(run.start_ms)}"
            f"  took {format_duration(run.duration_ms)}"
        )
        if run.run_type:
            line += f"  ({run.run_type})"
        if not run.recorded:
            line += "  [no DAG-run record; result from its tasks]"
        _out(line)
        for task in run.task_runs:
            tries = len(task.attempts)
            first = task.attempts[-1] if task.attempts else None
            _out(
                f"  {task.label:<{width}}  {task.result:<12}  started {format_ms(task.start_ms)}"
                f"  {format_duration(task.duration_ms):>7}"
                + (f"  {tries} tries" if tries > 1 else f"  try {first.number}" if first else "")
            )
            if tries > 1:
                for attempt in task.attempts:
                    _out(
                        f"  {'':<{width}}    try {attempt.number}: {attempt.outcome:<12}"
                        f"  started {format_ms(attempt.start_ms)}"
                        f"  {format_duration(attempt.duration_ms):>7}"
                    )
            for label, urns in (("in ", task.inputs), ("out", task.outputs)):
                for urn in urns:
                    _out(f"  {'':<{width}}    {label}: {urn}")
    _out()
    _print_stats(runs)


def _pct(stats: TaskStats) -> str:
    return "-" if stats.success_rate is None else f"{stats.success_rate * 100:.0f}%"


def _print_stats(runs: list[DagRun]) -> None:
    from datahub_airflow_listener.domain.history import dag_stats, format_duration, task_stats

    rows = [("(DAG run)", dag_stats(runs))] + [(s.task_id or "?", s) for s in task_stats(runs)]
    width = max(len(name) for name, _ in rows)
    _out(f"Over these {len(runs)} run(s): success = SUCCESS / (SUCCESS + FAILURE)")
    _out(
        f"  {'task':<{width}}  {'runs':>4}  {'success':>7}  {'failed':>6}  {'skipped':>7}"
        f"  {'retried':>7}  {'p50':>7}  {'p90':>7}  {'p99':>7}"
    )
    for name, s in rows:
        if not s.runs:
            continue
        _out(
            f"  {name:<{width}}  {s.runs:>4}  {_pct(s):>7}  {s.failed:>6}  {s.skipped:>7}"
            f"  {s.retried:>7}  {format_duration(s.p50_ms):>7}  {format_duration(s.p90_ms):>7}"
            f"  {format_duration(s.p99_ms):>7}"
        )


# -- export --------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    target = Path(args.path).expanduser()
    if target.is_dir():
        raise CliError(f"{target} is a directory; give a file name, e.g. {target}/datahub.json")
    store, _ = _local_store(args)
    with store:
        count = store.export_file(target)
    _out(
        f"exported {count} MCPs from {store.path} to {target} "
        "(DataHub's file format: `datahub ingest` with the file source reads it)"
    )
    return 0


# -- flush ---------------------------------------------------------------------------------------


class _Bar:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = int(width * min(done, total) / total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} MCPs")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def cmd_flush(args: argparse.Namespace) -> int:
    from datahub_airflow_listener.adapter.operate import flush_outbox

    if args.timeout <= 0:
        raise CliError("--timeout must be positive")
    config, _ = _settings()
    bar = _Bar(sys.stderr)
    try:
        summary = flush_outbox(config, timeout=args.timeout, progress=bar)
    finally:
        bar.finish()
    _out(
        f"delivered {summary.delivered}, failed permanently {summary.failed}, "
        f"still waiting {summary.waiting} (outbox {summary.outbox}, {summary.elapsed_sec:.1f} s)"
    )
    for problem in summary.problems:
        _out(f"  problem: {problem}")
    if summary.waiting and summary.timed_out:
        _out(f"  the {args.timeout:g} s timeout ran out; run flush again or raise --timeout")
    if summary.waiting_unconfigured:
        _out(
            f"  {summary.waiting_unconfigured} MCP(s) wait for connections no longer in "
            "[datahub] conn_id; nothing will send them"
        )
    return 0 if summary.waiting == 0 and summary.failed == 0 else 1


# -- check ---------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from datahub_airflow_listener.adapter.operate import run_check

    config, warnings = _settings()
    lines = run_check(config, warnings)
    marks = {"ok": "ok   ", "info": "     ", "warn": "WARN ", "error": "FAIL "}
    width = max(len(line.subject) for line in lines)
    for line in lines:
        _out(f"{marks.get(line.level, '     ')}{line.subject:<{width}}  {line.message}")
    errors = sum(1 for line in lines if line.level == "error")
    warns = sum(1 for line in lines if line.level == "warn")
    if errors:
        _out(f"{errors} problem(s) to fix, {warns} warning(s)")
        return 1
    _out(f"all good ({warns} warning(s))" if warns else "all good")
    return 0


# -- cleanup -------------------------------------------------------------------------------------


def cmd_cleanup(args: argparse.Namespace) -> int:
    from datahub_airflow_listener.domain import history

    if args.older_than_days is None and args.keep_last is None:
        raise CliError("give --older-than-days N and/or --keep-last K")
    if args.older_than_days is not None and args.older_than_days < 0:
        raise CliError("--older-than-days must be >= 0")
    if args.keep_last is not None and args.keep_last < 0:
        raise CliError("--keep-last must be >= 0")
    hard = args.mode == "hard"
    if args.source == "gms":
        return _cleanup_gms(args, hard)
    store, platform_instance = _local_store(args)
    with store:
        records = history.collect_instances(
            (m.wire() for m in store.iter_mcps(entity_type="dataProcessInstance")),
            platform_instance=platform_instance,
        )
        plan = _plan(args, records.values(), hard)
        where = f"the local store {store.path}"
        if args.dry_run or not plan:
            _print_plan(plan, where, hard, dry_run=True)
            return 0
        urns = [item.urn for item in plan]
        if hard:
            rows = store.delete_urns(urns)
            detail = f"{rows} stored MCPs deleted"
        else:
            store.mark_removed(urns)
            detail = "status removed appended; `export` carries it to DataHub"
    _print_plan(plan, where, hard, dry_run=False)
    _out(f"{'hard' if hard else 'soft'}-deleted {len(plan)} process instance(s): {detail}")
    return 0


def _plan(args: argparse.Namespace, records: Any, hard: bool) -> list[CleanupItem]:
    from datahub_airflow_listener.domain.clock import now_ms
    from datahub_airflow_listener.domain.history import plan_cleanup

    return plan_cleanup(
        records,
        now_ms=now_ms(),
        older_than_days=args.older_than_days,
        keep_last=args.keep_last,
        dag_id=args.dag,
        include_removed=hard,
    )


def _print_plan(plan: list[CleanupItem], where: str, hard: bool, *, dry_run: bool) -> None:
    from datahub_airflow_listener.domain.history import format_ms

    verb = "hard-delete" if hard else "soft-delete"
    if not plan:
        _out(f"nothing to {verb} in {where}")
        return
    dag_runs = sum(1 for i in plan if i.kind == "dag_run")
    head = "would " + verb if dry_run else verb.replace("delete", "deleting")
    _out(
        f"{head} {len(plan)} process instance(s) in {where} "
        f"({dag_runs} DAG run(s), {len(plan) - dag_runs} task run(s)):"
    )
    for item in plan:
        kind = "DAG run " if item.kind == "dag_run" else "task run"
        _out(f"  {format_ms(item.start_ms)}  {kind}  {item.label}  ({item.reason})")


def _cleanup_gms(args: argparse.Namespace, hard: bool) -> int:
    from datahub_airflow_listener.domain import history

    reader, cluster, platform_instance = _gms(args)
    where = f"DataHub at {reader.server}"
    mapper = _mapper(cluster, platform_instance)
    with reader:
        if args.dag:
            flows = [_urn_of(mapper, mapper.flow_urn, args.dag)]
        else:
            flows = [
                u
                for u in reader.list_urns("dataFlow")
                if u.startswith(f"urn:li:dataFlow:({mapper.orchestrator},")
                and u.endswith(f",{cluster})")
            ]
        urns: list[str] = []
        for flow in flows:
            dag_runs, task_runs = reader.flow_instance_urns(flow)
            urns.extend(dag_runs + task_runs)
        mcps = [m for u in dict.fromkeys(urns) for m in reader.instance_mcps(u, events=False)]
        records = history.collect_instances(mcps, platform_instance=platform_instance)
        plan = _plan(args, records.values(), hard)
        if args.dry_run or not plan:
            _print_plan(plan, where, hard, dry_run=True)
            return 0
        _print_plan(plan, where, hard, dry_run=False)
        doomed = [item.urn for item in plan]
        if hard:
            rows = sum(reader.hard_delete(urn) for urn in doomed)
            detail = f"{rows} rows removed by the server"
        else:
            for start in range(0, len(doomed), 200):
                reader.soft_delete(doomed[start : start + 200])
            detail = "status removed"
    _out(f"{'hard' if hard else 'soft'}-deleted {len(plan)} process instance(s): {detail}")
    return 0


# -- enable / disable ----------------------------------------------------------------------------


def cmd_enable(args: argparse.Namespace) -> int:
    from datahub_airflow_listener.adapter.operate import set_kill_switch

    config, _ = _settings()
    _out(set_kill_switch(config, disabled=False))
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    from datahub_airflow_listener.adapter.operate import set_kill_switch

    config, _ = _settings()
    _out(set_kill_switch(config, disabled=True))
    return 0


# -- parser --------------------------------------------------------------------------------------


def _result(text: str) -> str:
    value = text.strip().upper()
    if value not in RESULT_CHOICES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(RESULT_CHOICES)}")
    return value


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        choices=("local", "gms"),
        default="local",
        help="the embedded local store (default) or a DataHub GMS",
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="local store directory (default: [datahub] outbox_path, $AIRFLOW_HOME/datahub)",
    )
    parser.add_argument(
        "--conn",
        metavar="CONN_ID",
        help="datahub-rest connection for --source gms (default: the first in [datahub] conn_id)",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help=f"GMS address for --source gms without Airflow (token from ${TOKEN_ENV})",
    )
    parser.add_argument("--cluster", help="cluster of the urns (default: [datahub] cluster)")
    parser.add_argument("--platform-instance", help="platform instance of the flow urns")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datahub-airflow-listener",
        description="Record Airflow DAG runs and task runs as DataHub process instances.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    runs = sub.add_parser(
        "runs",
        help="a DAG's recorded runs, newest first: DAG run -> task runs -> attempts",
        description="Run history of a DAG (or one task) with per-task success rate and p50/p90/p99"
        " durations over the runs listed.",
    )
    runs.add_argument("--dag", required=True, metavar="DAG_ID")
    runs.add_argument("--task", metavar="TASK_ID", help="only this task's runs")
    runs.add_argument(
        "--result", type=_result, metavar="R", help=f"one of {', '.join(RESULT_CHOICES)}"
    )
    runs.add_argument(
        "--since", metavar="WHEN", help="runs started at/after: ISO time or an age (7d, 12h)"
    )
    runs.add_argument("--until", metavar="WHEN", help="runs started before: ISO time or an age")
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="at most N DAG runs (20)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    _source_options(runs)
    runs.set_defaults(handler=cmd_runs)

    export = sub.add_parser(
        "export", help="the local store to DataHub's file format (a JSON array of MCPs)"
    )
    export.add_argument("path", metavar="PATH")
    export.add_argument("--store", metavar="DIR", help="local store directory")
    export.set_defaults(handler=cmd_export)

    flush = sub.add_parser("flush", help="deliver what the outbox holds now")
    flush.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="give up after S seconds (60)"
    )
    flush.set_defaults(handler=cmd_flush)

    check = sub.add_parser(
        "check", help="check the configuration and each connection as the listener sees them"
    )
    check.set_defaults(handler=cmd_check)

    cleanup = sub.add_parser(
        "cleanup",
        help="retention: delete old process instances (never DataFlow/DataJob templates)",
    )
    cleanup.add_argument("--older-than-days", type=float, metavar="N")
    cleanup.add_argument(
        "--keep-last", type=int, metavar="K", help="keep the newest K runs per DAG and per task"
    )
    mode = cleanup.add_mutually_exclusive_group()
    mode.add_argument(
        "--soft", dest="mode", action="store_const", const="soft", help="status removed (default)"
    )
    mode.add_argument(
        "--hard", dest="mode", action="store_const", const="hard", help="delete for good"
    )
    cleanup.set_defaults(mode="soft")
    cleanup.add_argument("--dry-run", action="store_true", help="list what would go")
    cleanup.add_argument("--dag", metavar="DAG_ID", help="only this DAG's runs")
    _source_options(cleanup)
    cleanup.set_defaults(handler=cmd_cleanup)

    enable = sub.add_parser("enable", help="remove the kill-switch file: resume emitting")
    enable.set_defaults(handler=cmd_enable)
    disable = sub.add_parser(
        "disable", help="create the kill-switch file: stop emitting, no restart needed"
    )
    disable.set_defaults(handler=cmd_disable)
    return parser


def _describe(exc: BaseException) -> tuple[str, bool]:
    """(one line, is it the user's to fix) for an exception that reached ``main``."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if names & _USER_ERRORS:
        return text, True
    return f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)", False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    global _stdout  # noqa: PLW0603 -- one command per process; restored below
    previous, _stdout = _stdout, sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        text, users = _describe(exc)
        print(f"error: {text}", file=sys.stderr)
        return 2 if users else 3
    finally:
        _stdout = previous
