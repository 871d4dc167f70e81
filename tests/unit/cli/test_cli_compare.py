"""``compare OLD NEW``: two MCP files side by side (the official plugin's, this package's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli.cli_helpers import assert_one_error_line, run_cli

FLOW = "urn:li:dataFlow:(airflow,etl,prod)"
JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),load)"
RUN = "urn:li:dataProcessInstance:4c378e9cb955769d457950caf4c41dfa"


def _mcp(urn: str, aspect: str, body: dict[str, Any], *, inline: bool = True) -> dict[str, Any]:
    value = {"json": body} if inline else {"value": json.dumps(body), "contentType": "x"}
    return {"entityUrn": urn, "aspectName": aspect, "aspect": value}


def _write(path: Path, mcps: list[dict[str, Any]]) -> str:
    path.write_text(json.dumps(mcps))
    return str(path)


def test_what_only_one_side_has_and_what_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    official = _write(
        tmp_path / "official.json",
        [
            _mcp(FLOW, "dataFlowInfo", {"name": "etl", "externalUrl": "http://a/tree"}),
            _mcp(JOB, "dataJobInfo", {"name": "load"}),
            _mcp(RUN, "dataProcessInstanceRunEvent", {"status": "STARTED"}),
        ],
    )
    ours = _write(
        tmp_path / "ours.json",
        [
            _mcp(FLOW, "dataFlowInfo", {"name": "etl", "externalUrl": "http://a/dags/etl"}),
            _mcp(JOB, "dataJobInfo", {"name": "x"}, inline=False),
            _mcp(JOB, "dataJobInfo", {"name": "load"}),  # the later version counts
            _mcp(RUN, "dataProcessInstanceRunEvent", {"status": "STARTED"}),
            _mcp(RUN, "dataProcessInstanceRunEvent", {"status": "COMPLETE"}),
            _mcp(JOB, "browsePathsV2", {"path": []}),
        ],
    )
    result = run_cli(capsys, "compare", official, ours, "--fields")
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert f"only in ours.json: browsePathsV2 of {JOB}" in lines
    assert f"different: dataFlowInfo of {FLOW}: externalUrl" in lines
    assert lines[-1] == (
        "1 aspect(s) the same, 1 different, 0 only in official.json, 1 only in ours.json"
    )


def test_something_missing_from_new_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _write(tmp_path / "a.json", [_mcp(FLOW, "ownership", {"owners": []})])
    new = _write(tmp_path / "b.json", [])
    result = run_cli(capsys, "compare", old, new)
    assert result.code == 1
    assert f"only in a.json: ownership of {FLOW}" in result.out


def test_a_file_that_is_not_mcps_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    good = _write(tmp_path / "good.json", [])
    assert_one_error_line(run_cli(capsys, "compare", str(bad), good), "not a JSON array")
    assert_one_error_line(
        run_cli(capsys, "compare", str(tmp_path / "missing.json"), good), "cannot read"
    )
