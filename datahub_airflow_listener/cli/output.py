"""Where command output goes: the real stdout, while anything else printed goes to stderr.

Airflow logs to stdout; a command that imports it would otherwise mix log lines into its
output, and ``--json`` would no longer parse.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["command_output", "out", "print_json"]

log = logging.getLogger(__name__)

# The stdout of the running command; None outside ``command_output`` (then sys.stdout).
_stdout: TextIO | None = None


def out(text: str = "") -> None:
    """One line of command output."""
    (_stdout or sys.stdout).write(text + "\n")


def print_json(value: Any) -> None:
    out(json.dumps(value, indent=2, sort_keys=False))


@contextlib.contextmanager
def command_output() -> Iterator[None]:
    """While a command runs: :func:`out` writes to the real stdout, ``sys.stdout`` is stderr."""
    global _stdout  # noqa: PLW0603 -- one command per process; restored below
    previous, _stdout = _stdout, sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _stdout = previous
