"""The file transport: DataHub's file format, valid after every write, many writers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from datahub_airflow_listener.transport import FileConfig, FileTransport, TransportError
from datahub_airflow_listener.transport.file import (
    append_json_array,
    read_file_form,
    wire_to_file_form,
)
from tests.unit.transport.transport_helpers import mcp, record

ROOT = Path(__file__).resolve().parents[3]


def test_file_form_inlines_the_aspect() -> None:
    wire = mcp("r", 3).to_wire(last_observed=9)
    form = wire_to_file_form(wire)
    assert form["aspect"] == {"json": {"timestampMillis": 3, "status": "STARTED"}}
    assert {k: v for k, v in form.items() if k != "aspect"} == {
        k: v for k, v in wire.items() if k != "aspect"
    }


def test_each_emit_leaves_a_complete_json_array(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "mcps.json"
    transport = FileTransport(FileConfig.from_dict({"filename": str(path)}))
    assert transport.emit_records([record("a", 1), record("a", 2)]).ok
    first = json.loads(path.read_text())
    assert [m["aspect"]["json"]["timestampMillis"] for m in first] == [1, 2]
    assert transport.emit_records([record("b", 3)]).ok
    assert transport.emit_records([]).ok
    items = json.loads(path.read_text())
    assert [m["aspect"]["json"]["timestampMillis"] for m in items] == [1, 2, 3]
    assert items[2]["entityUrn"] == "urn:li:dataProcessInstance:b"
    assert "value" not in items[2]["aspect"]
    assert read_file_form(path) == items


def test_appends_to_an_existing_pretty_printed_array(tmp_path: Path) -> None:
    path = tmp_path / "mcps.json"
    existing = [wire_to_file_form(mcp("old", 0).to_wire(last_observed=1))]
    path.write_text(json.dumps(existing, indent=4) + "\n\n")
    append_json_array(path, ['{"x": 1}'])
    assert json.loads(path.read_text()) == [*existing, {"x": 1}]
    empty = tmp_path / "empty.json"
    empty.write_text("[ ]")
    append_json_array(empty, ['{"x": 2}'])
    assert json.loads(empty.read_text()) == [{"x": 2}]


def test_a_torn_write_is_repaired_on_the_next_append(tmp_path: Path, caplog) -> None:
    path = tmp_path / "mcps.json"
    append_json_array(path, ['{"a": 1}', '{"a": 2}'])
    with path.open("ab") as f:  # a writer died half-way through its append
        f.seek(0, 2)
    content = path.read_bytes()
    torn = content[: content.rindex(b"]")].rstrip() + b',\n{"a": 3, "b'
    path.write_bytes(torn)
    append_json_array(path, ['{"a": 4}'])
    assert json.loads(path.read_text()) == [{"a": 1}, {"a": 2}, {"a": 4}]
    assert "torn write" in caplog.text


def test_refuses_to_append_to_something_else(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    report = FileTransport(FileConfig(filename=str(path))).emit_records([record("a", 1)])
    assert isinstance(report.error, TransportError)
    assert report.pending == 1
    assert path.read_text() == "hello\n"


def test_config_requires_a_filename() -> None:
    with pytest.raises(ValueError, match="needs a filename"):
        FileConfig.from_dict({})
    with pytest.raises(ValueError, match="unknown datahub-file setting"):
        FileConfig.from_dict({"filename": "x", "path": "y"})


WRITER = textwrap.dedent(
    """
    import sys
    from datahub_airflow_listener.transport import FileConfig, FileTransport
    from tests.support.fake_gms import StubMcp
    path, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    transport = FileTransport(FileConfig(filename=path))
    for i in range(count):
        batch = [StubMcp(entity_urn=f"urn:li:dataProcessInstance:{writer}", seq=i * 2 + k)
                 for k in range(2)]
        report = transport.emit([m.to_wire(last_observed=1) for m in batch])
        assert report.ok, report
    """
)


def test_many_processes_appending_at_once_give_one_valid_array(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    writers, per_writer = 6, 40
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"w{n}", str(per_writer)],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        for n in range(writers)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * writers
    items = json.loads(path.read_text())
    assert len(items) == writers * per_writer * 2
    for n in range(writers):
        mine = [
            m["aspect"]["json"]["timestampMillis"]
            for m in items
            if m["entityUrn"] == f"urn:li:dataProcessInstance:w{n}"
        ]
        assert mine == list(range(per_writer * 2))  # each writer's order kept
