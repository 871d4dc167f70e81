"""``datahub check metadata-file`` accepts the file we would write (a JSON array of MCPs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.compat import compat_cases
from tests.compat.compat_oracle import check_metadata_file

pytestmark = pytest.mark.compat


def _all_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for mcps in compat_cases.cases().values():
        for mcp in mcps:
            # Both forms the file source reads: the inline {"json": ...} and the wire string.
            items.append(mcp.to_file_form(run_id="compat", last_observed=1))
            items.append(mcp.to_wire(run_id="compat", last_observed=1))
    return items


def test_file_forms_pass_datahub_check_metadata_file(tmp_path: Path) -> None:
    items = _all_items()
    path = tmp_path / "mcps.json"
    path.write_text(json.dumps(items))
    done = check_metadata_file(path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert f"{len(items)} MCEs found - all valid" in done.stdout + done.stderr


def test_control_check_metadata_file_does_fail_on_a_bad_mcp(tmp_path: Path) -> None:
    items = _all_items()
    bad = next(
        i
        for i in items
        if i["aspectName"] == "dataProcessInstanceRunEvent" and "json" in i["aspect"]
    )
    bad["aspect"]["json"]["status"] = "RUNNING"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(items))
    done = check_metadata_file(path)
    assert done.returncode != 0
    assert "RUNNING" in done.stdout + done.stderr
