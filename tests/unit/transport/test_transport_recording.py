"""The recording transport: the test seam shipped in the package."""

from __future__ import annotations

from datahub_airflow_listener.transport import (
    PermanentError,
    RecordingConfig,
    RecordingTransport,
    TransientError,
)
from tests.unit.transport.transport_helpers import record


def test_records_in_order_and_plays_failures() -> None:
    transport = RecordingTransport(RecordingConfig(name="rec-unit"))
    assert RecordingTransport.named("rec-unit") is transport
    assert transport.emit_records([record("a", 1), record("b", 2)]).ok
    assert [m["entityUrn"] for m in transport.wire_mcps] == [
        "urn:li:dataProcessInstance:a",
        "urn:li:dataProcessInstance:b",
    ]
    transport.down = True
    report = transport.emit_records([record("c", 3)])
    assert isinstance(report.error, TransientError) and report.pending == 1
    transport.down = False
    transport.reject_urns = {"urn:li:dataProcessInstance:bad"}
    report = transport.emit_records([record("bad", 4), record("d", 5)])
    assert [f.index for f in report.failed] == [0]
    assert isinstance(report.failed[0].error, PermanentError)
    assert len(transport.records) == 3
    assert transport.emit_calls == 3
    transport.clear()
    assert transport.records == []
    transport.close()
    assert transport.closed
