"""Helpers of the CLI tests: a real local store filled with MCPs, and running ``main``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from datahub_airflow_listener.cli import main
from datahub_airflow_listener.domain.mcp import file_form_to_wire
from datahub_airflow_listener.transport.local import LocalConfig, LocalStore


@attrs.frozen
class Result:
    code: int
    out: str
    err: str


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    code = main(list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def fill_store(directory: Path, mcps: Sequence[dict[str, Any]]) -> LocalStore:
    """A real local store under ``directory`` holding ``mcps`` (either form)."""
    store = LocalStore(LocalConfig(directory=str(directory)))
    report = store.emit([file_form_to_wire(m) for m in mcps])
    assert report.ok
    return store


def assert_one_error_line(result: Result, *needles: str) -> None:
    """A user error: exit 2, exactly one line on stderr, no traceback."""
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err + result.out
    for needle in needles:
        assert needle in lines[0], lines[0]
