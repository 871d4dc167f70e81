"""Errors, backoff, the wire record, the emit report and the registry."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.transport import (
    EmitReport,
    FailedMcp,
    PermanentError,
    RecordingTransport,
    TransientError,
    WireRecord,
    create_transport,
    get_transport_kind,
    transport_factory,
    transport_kinds,
)
from datahub_airflow_listener.transport.errors import redact
from datahub_airflow_listener.transport.retry import BackoffPolicy, parse_retry_after
from tests.unit.transport.transport_helpers import TOKEN, mcp, record


def test_redact_hides_every_secret_and_bounds_length() -> None:
    text = f"Bearer {TOKEN} and header=hdr-secret-value " + "x" * 2000
    shown = redact(text, [TOKEN, "hdr-secret-value", None, ""])
    assert TOKEN not in shown
    assert "hdr-secret-value" not in shown
    assert shown.startswith("Bearer *** and header=*** ")
    assert len(shown) < 600


def test_error_message_names_method_url_status_and_server_message() -> None:
    error = PermanentError(
        "DataHub rejected the request",
        method="POST",
        url="http://gms:8080/aspects?action=ingestProposal",
        status=422,
        server_message="bad urn",
    )
    assert str(error) == (
        "DataHub rejected the request (POST http://gms:8080/aspects?action=ingestProposal "
        "-> HTTP 422) server said: bad urn"
    )
    assert not error.retryable
    assert TransientError("x").retryable


@given(
    attempt=st.integers(min_value=0, max_value=40),
    base=st.floats(min_value=0.001, max_value=5),
    cap=st.floats(min_value=0.01, max_value=60),
    seed=st.integers(),
)
def test_backoff_is_exponential_capped_and_jittered_within_half(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    policy = BackoffPolicy(base=base, cap=cap)
    raw = min(cap, base * 2**attempt)
    delay = policy.delay(attempt, rand=random.Random(seed))
    assert raw / 2 - 1e-9 <= delay <= raw + 1e-9


def test_backoff_honours_retry_after_as_a_floor_with_a_cap() -> None:
    policy = BackoffPolicy(base=0.01, cap=0.02, max_retry_after=3)
    assert policy.delay(0, retry_after=2.5) == 2.5
    assert policy.delay(0, retry_after=3600) == 3


def test_parse_retry_after_seconds_date_and_garbage() -> None:
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2024, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == pytest.approx(30)
    assert parse_retry_after(format_datetime(now, usegmt=True), now=now.timestamp() + 5) == 0


def test_wire_record_serializes_once_and_round_trips() -> None:
    wire = mcp("r1", 5).to_wire(last_observed=123)
    rec = WireRecord.from_wire(wire)
    assert rec.urn == "urn:li:dataProcessInstance:r1"
    assert rec.aspect_name == "dataProcessInstanceRunEvent"
    assert rec.entity_type == "dataProcessInstance"
    assert json.loads(rec.payload) == wire
    assert rec.wire() == wire
    assert rec.payload == json.dumps(wire, separators=(",", ":"))  # compact
    assert "payload" not in repr(rec)


def test_wire_record_of_takes_the_text_fast_path_with_the_same_bytes() -> None:
    from datahub_airflow_listener.domain import aspects as a
    from datahub_airflow_listener.domain.mcp import MetadataChangeProposal

    event = a.DataProcessInstanceRunEvent(
        timestamp_millis=1, status=a.DataProcessRunStatus.STARTED, attempt=2
    )
    domain = MetadataChangeProposal(entity_urn="urn:li:dataProcessInstance:x", aspect=event)
    fast = WireRecord.of(domain, run_id="r", last_observed=9)
    assert fast == WireRecord.from_wire(domain.to_wire(run_id="r", last_observed=9))
    stub = mcp("r1", 5)  # no to_wire_json: the generic path
    generic = WireRecord.from_wire(stub.to_wire(last_observed=123))
    assert WireRecord.of(stub, run_id=None, last_observed=123) == generic


def test_emit_report_arithmetic() -> None:
    failed = FailedMcp(index=1, urn="u", aspect_name="a", error=PermanentError("no"))
    report = EmitReport(attempted=5, settled=3, failed=(failed,), error=TransientError("down"))
    assert (report.delivered, report.pending, report.ok) == (2, 2, False)
    assert EmitReport.all_delivered(4).ok


def test_registry_knows_the_four_kinds_and_builds_from_dicts(tmp_path) -> None:
    assert transport_kinds() == ["datahub-file", "datahub-rest", "local", "recording"]
    rest = create_transport("datahub-rest", {"server": "gms:8080", "token": TOKEN})
    assert type(rest).__name__ == "RestTransport"
    file_t = create_transport("datahub-file", {"filename": str(tmp_path / "out.json")})
    assert type(file_t).__name__ == "FileTransport"
    local = create_transport("local", {"directory": str(tmp_path / "dh")})
    assert type(local).__name__ == "LocalStore"
    rec_t = create_transport("recording", {"name": "reg-test"})
    assert rec_t is RecordingTransport.named("reg-test")
    for transport in (rest, file_t, local, rec_t):
        transport.close()


def test_registry_refuses_unknown_kinds_and_settings() -> None:
    with pytest.raises(ValueError, match="unknown transport kind 'kafka'"):
        get_transport_kind("kafka")
    with pytest.raises(ValueError, match=r"unknown datahub-rest setting\(s\) \['tokne'\]"):
        create_transport("datahub-rest", {"server": "gms", "tokne": "x"})


def test_transport_factory_validates_now_and_builds_later() -> None:
    with pytest.raises(ValueError, match="needs a server"):
        transport_factory("datahub-rest", {"server": ""})
    factory = transport_factory("recording", {"name": "factory-test"})
    first, second = factory(), factory()
    assert first is not second
    assert first.emit_records([record("r", 1)]).ok
