"""The ``datahub-airflow-listener`` command line (also ``python -m datahub_airflow_listener``).

Commands:

* ``runs``     -- a DAG's recorded run history as a tree, with per-task statistics;
* ``export``   -- the local store to DataHub's file format;
* ``compare``  -- two MCP files side by side (the official plugin's and this one's);
* ``flush``    -- deliver what the shared outbox holds now;
* ``check``    -- the configuration and each connection, as the listener sees them;
* ``cleanup``  -- retention: soft- or hard-delete old process instances (local store or GMS);
* ``enable`` / ``disable`` -- the kill switch, without a restart.

Every command prints one clear line and exits non-zero on a user error (a wrong DAG id, an
unreachable server, a refused token); tracebacks are only shown with ``--debug``.

Importing this package costs nothing beyond the standard library: :func:`main` loads the parser
and the commands when it runs, each command imports what it needs, and only commands that read
the Airflow configuration import Airflow (``runs``/``export``/``cleanup`` do not when given
``--store`` or ``--server``).

Modules, one job each:

* ``parser``   -- the argument parser: every command, its options and their help
* ``output``   -- where command output goes (stdout, kept clean of Airflow's log lines)
* ``sources``  -- what a command reads: the Airflow settings, the local store, a GMS reader
* ``render``   -- run history, statistics and cleanup plans as text and JSON
* ``times``    -- times as the command line reads them (``--since``) and shows them
* ``runs``     -- the ``runs`` command: select history from the local store or a GMS
* ``cleanup``  -- the ``cleanup`` command: plan retention, then delete locally or in a GMS
* ``export``   -- the ``export`` command: the local store to DataHub's file format
* ``compare``  -- the ``compare`` command: two MCP files, entity by entity, aspect by aspect
* ``operate``  -- ``flush``, ``check``, ``enable``, ``disable``: acting on the deployment
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

__all__ = ["CliError", "main"]

log = logging.getLogger(__name__)

_USER_ERRORS = frozenset(
    {"TransportError", "OperateError", "OSError", "DomainError", "DatabaseError"}
)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _describe(exc: BaseException) -> tuple[str, bool]:
    """(one line, is it the user's to fix) for an exception that reached ``main``."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if names & _USER_ERRORS:
        return text, True
    return f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)", False


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code: 0 done, 1 it found problems, 2 a user error, 3 an
    unexpected error, 130 interrupted."""
    # Here, not at the top: importing the package stays free for whoever only needs ``main``.
    from datahub_airflow_listener.cli.output import command_output
    from datahub_airflow_listener.cli.parser import Command, build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        with command_output():
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
