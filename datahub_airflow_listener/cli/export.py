"""The ``export`` command: the local store to DataHub's file format (a JSON array of MCPs)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from datahub_airflow_listener.cli import CliError, sources
from datahub_airflow_listener.cli.output import out

__all__ = ["cmd_export"]

log = logging.getLogger(__name__)


def cmd_export(args: argparse.Namespace) -> int:
    target = Path(args.path).expanduser()
    if target.is_dir():
        raise CliError(f"{target} is a directory; give a file name, e.g. {target}/datahub.json")
    store, _ = sources.local_store(args)
    with store:
        count = store.export_file(target)
    out(
        f"exported {count} MCPs from {store.path} to {target} "
        "(DataHub's file format: `datahub ingest` with the file source reads it)"
    )
    return 0
