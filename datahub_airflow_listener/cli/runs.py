"""The ``runs`` command: a DAG's run history from the local store or a GMS, filtered."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from datahub_airflow_listener.cli import CliError, sources
from datahub_airflow_listener.cli.output import print_json
from datahub_airflow_listener.cli.render import print_runs, runs_json
from datahub_airflow_listener.cli.times import parse_time

if TYPE_CHECKING:
    from datahub_airflow_listener.domain.history import DagRun

__all__ = ["cmd_runs"]

log = logging.getLogger(__name__)


def _time_bound(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    from datahub_airflow_listener.domain.clock import now_ms

    try:
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
        store, platform_instance = sources.local_store(args)
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
        print_json(runs_json(args, where, selected))
    else:
        print_runs(args, where, selected)
    return 0


def _gms_runs(
    args: argparse.Namespace, since: int | None, until: int | None
) -> tuple[list[DagRun], str]:
    """Fetch just enough from a GMS: the DAG runs, then task runs of the newest matching ones."""
    from datahub_airflow_listener.domain import history

    reader, cluster, platform_instance = sources.gms(args)
    where = f"DataHub at {reader.server}"
    mapper = sources.mapper(cluster, platform_instance)
    flow = sources.urn_of(mapper.flow_urn, args.dag)
    with reader:
        dag_urns = reader.flow_instances(flow)
        job = sources.urn_of(mapper.job_urn, args.dag, args.task) if args.task else None
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
