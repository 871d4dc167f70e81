"""The argument parser: every command, its options and their help."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from datahub_airflow_listener import __version__
from datahub_airflow_listener.cli.cleanup import cmd_cleanup
from datahub_airflow_listener.cli.compare import cmd_compare
from datahub_airflow_listener.cli.export import cmd_export
from datahub_airflow_listener.cli.operate import cmd_check, cmd_disable, cmd_enable, cmd_flush
from datahub_airflow_listener.cli.runs import cmd_runs
from datahub_airflow_listener.cli.sources import TOKEN_ENV

__all__ = ["RESULT_CHOICES", "Command", "build_parser"]

log = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace], int]

RESULT_CHOICES = ("SUCCESS", "FAILURE", "SKIPPED", "UP_FOR_RETRY", "RUNNING")


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

    compare = sub.add_parser(
        "compare",
        help="two MCP files side by side (e.g. the official plugin's and this one's); "
        "exits 1 if something of OLD is missing from NEW",
    )
    compare.add_argument("old", metavar="OLD", help="DataHub's file format, e.g. official.json")
    compare.add_argument("new", metavar="NEW", help="DataHub's file format, e.g. ours.json")
    compare.add_argument(
        "--fields", action="store_true", help="also list the fields that differ, per aspect"
    )
    compare.set_defaults(handler=cmd_compare)

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
