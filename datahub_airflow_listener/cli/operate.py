"""``flush``, ``check``, ``enable`` and ``disable``: acting on the deployment Airflow configures.

Each reads the ``[datahub]`` settings (so imports Airflow) and hands the work to
:mod:`datahub_airflow_listener.adapter.operate`; this module only words the outcome.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

from datahub_airflow_listener.cli import CliError, sources
from datahub_airflow_listener.cli.output import out

__all__ = ["cmd_check", "cmd_disable", "cmd_enable", "cmd_flush"]

log = logging.getLogger(__name__)


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
    config, _ = sources.settings()
    bar = _Bar(sys.stderr)
    try:
        summary = flush_outbox(config, timeout=args.timeout, progress=bar)
    finally:
        bar.finish()
    out(
        f"delivered {summary.delivered}, failed permanently {summary.failed}, "
        f"still waiting {summary.waiting} (outbox {summary.outbox}, {summary.elapsed_sec:.1f} s)"
    )
    for problem in summary.problems:
        out(f"  problem: {problem}")
    if summary.waiting and summary.timed_out:
        out(f"  the {args.timeout:g} s timeout ran out; run flush again or raise --timeout")
    if summary.waiting_unconfigured:
        out(
            f"  {summary.waiting_unconfigured} MCP(s) wait for connections no longer in "
            "[datahub] conn_id; nothing will send them"
        )
    return 0 if summary.waiting == 0 and summary.failed == 0 else 1


def cmd_check(args: argparse.Namespace) -> int:
    from datahub_airflow_listener.adapter.operate import run_check

    config, warnings = sources.settings()
    lines = run_check(config, warnings)
    marks = {"ok": "ok   ", "info": "     ", "warn": "WARN ", "error": "FAIL "}
    width = max(len(line.subject) for line in lines)
    for line in lines:
        out(f"{marks.get(line.level, '     ')}{line.subject:<{width}}  {line.message}")
    errors = sum(1 for line in lines if line.level == "error")
    warns = sum(1 for line in lines if line.level == "warn")
    if errors:
        out(f"{errors} problem(s) to fix, {warns} warning(s)")
        return 1
    out(f"all good ({warns} warning(s))" if warns else "all good")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    return _kill_switch(disabled=False)


def cmd_disable(args: argparse.Namespace) -> int:
    return _kill_switch(disabled=True)


def _kill_switch(*, disabled: bool) -> int:
    from datahub_airflow_listener.adapter.operate import set_kill_switch

    config, _ = sources.settings()
    out(set_kill_switch(config, disabled=disabled))
    return 0
