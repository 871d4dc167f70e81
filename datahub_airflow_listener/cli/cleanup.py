"""The ``cleanup`` command: plan retention, then soft- or hard-delete locally or in a GMS."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from datahub_airflow_listener.cli import CliError, sources
from datahub_airflow_listener.cli.output import out
from datahub_airflow_listener.cli.render import print_plan

if TYPE_CHECKING:
    from datahub_airflow_listener.domain.history import InstanceRecord
    from datahub_airflow_listener.domain.retention import CleanupItem

__all__ = ["cmd_cleanup"]

log = logging.getLogger(__name__)

_SOFT_DELETE_BATCH = 200  # instances per GMS request


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
    store, platform_instance = sources.local_store(args)
    with store:
        records = history.collect_instances(
            (m.wire() for m in store.iter_mcps(entity_type="dataProcessInstance")),
            platform_instance=platform_instance,
        )
        plan = _plan(args, records.values(), hard)
        where = f"the local store {store.path}"
        if args.dry_run or not plan:
            print_plan(plan, where, hard, dry_run=True)
            return 0
        urns = [item.urn for item in plan]
        if hard:
            rows = store.delete_urns(urns)
            detail = f"{rows} stored MCPs deleted"
        else:
            store.mark_removed(urns)
            detail = "status removed appended; `export` carries it to DataHub"
    print_plan(plan, where, hard, dry_run=False)
    out(f"{'hard' if hard else 'soft'}-deleted {len(plan)} process instance(s): {detail}")
    return 0


def _plan(
    args: argparse.Namespace, records: Iterable[InstanceRecord], hard: bool
) -> list[CleanupItem]:
    from datahub_airflow_listener.domain.clock import now_ms
    from datahub_airflow_listener.domain.retention import plan_cleanup

    return plan_cleanup(
        records,
        now_ms=now_ms(),
        older_than_days=args.older_than_days,
        keep_last=args.keep_last,
        dag_id=args.dag,
        include_removed=hard,
    )


def _cleanup_gms(args: argparse.Namespace, hard: bool) -> int:
    from datahub_airflow_listener.domain import history

    reader, cluster, platform_instance = sources.gms(args)
    where = f"DataHub at {reader.server}"
    mapper = sources.mapper(cluster, platform_instance)
    with reader:
        if args.dag:
            flows = [sources.urn_of(mapper.flow_urn, args.dag)]
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
            print_plan(plan, where, hard, dry_run=True)
            return 0
        print_plan(plan, where, hard, dry_run=False)
        doomed = [item.urn for item in plan]
        if hard:
            rows = sum(reader.hard_delete(urn) for urn in doomed)
            detail = f"{rows} rows removed by the server"
        else:
            for start in range(0, len(doomed), _SOFT_DELETE_BATCH):
                reader.soft_delete(doomed[start : start + _SOFT_DELETE_BATCH])
            detail = "status removed"
    out(f"{'hard' if hard else 'soft'}-deleted {len(plan)} process instance(s): {detail}")
    return 0
