"""The MCP envelope: Rest.li wire form, file form, allowed aspects, and the parse round trip."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain import mcp as m
from datahub_airflow_listener.domain.errors import InvalidAspectError, InvalidUrnError
from tests.unit.domain.domain_strategies import job_aspects, process_instance_aspects

DPI = "urn:li:dataProcessInstance:3b554376399927fc165c8e4325700faf"
JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,d,prod),t)"
EVENT = a.DataProcessInstanceRunEvent(
    timestamp_millis=1_700_000_000_000, status=a.DataProcessRunStatus.STARTED, attempt=1
)


def _mcp(aspect: Any = EVENT, urn: str = DPI) -> m.MetadataChangeProposal:
    return m.MetadataChangeProposal(entity_urn=urn, aspect=aspect)


def test_wire_form_golden() -> None:
    """Byte-exact: the envelope key order and the escaped aspect string are stable."""
    props = a.DataProcessInstanceProperties(
        name="é,run", created=a.AuditStamp(time=1), custom_properties={"k": "v"}
    )
    wire = _mcp(props).to_wire(run_id="r-1", last_observed=7)
    assert m.dumps(wire) == (
        '{"entityType":"dataProcessInstance",'
        '"entityUrn":"urn:li:dataProcessInstance:3b554376399927fc165c8e4325700faf",'
        '"changeType":"UPSERT","aspectName":"dataProcessInstanceProperties",'
        '"aspect":{"value":"{\\"customProperties\\":{\\"k\\":\\"v\\"},\\"name\\":'
        '\\"\\\\u00e9,run\\",\\"created\\":{\\"time\\":1,\\"actor\\":\\"urn:li:corpuser:datahub\\"}}",'
        '"contentType":"application/json"},'
        '"systemMetadata":{"lastObserved":7,"runId":"r-1"}}'
    )


def test_aspect_value_is_an_ascii_json_string_of_the_aspect() -> None:
    aspect = a.DataProcessInstanceProperties(name="名前", created=a.AuditStamp(time=1))
    wire = _mcp(aspect).to_wire(last_observed=1)
    value = wire["aspect"]["value"]
    assert isinstance(value, str)
    assert value.isascii()
    assert json.loads(value) == a.aspect_to_dict(aspect)
    assert json.loads(value)["name"] == "名前"
    assert wire["aspect"]["contentType"] == "application/json"


def test_system_metadata_defaults() -> None:
    before = int(time.time() * 1000)
    wire = _mcp().to_wire()
    after = int(time.time() * 1000)
    assert before <= wire["systemMetadata"]["lastObserved"] <= after
    assert wire["systemMetadata"]["runId"] == "no-run-id-provided"
    assert "properties" not in wire["systemMetadata"]


def test_system_metadata_properties_are_sent_when_given() -> None:
    wire = _mcp().to_wire(run_id="x", last_observed=3, properties={"clientId": "dhal"})
    assert wire["systemMetadata"] == {
        "lastObserved": 3,
        "runId": "x",
        "properties": {"clientId": "dhal"},
    }


def test_file_form_inlines_the_aspect() -> None:
    form = _mcp().to_file_form(run_id="x", last_observed=3)
    assert form["aspect"] == {
        "json": {"timestampMillis": 1_700_000_000_000, "status": "STARTED", "attempt": 1}
    }
    assert list(form) == [
        "entityType",
        "entityUrn",
        "changeType",
        "aspectName",
        "aspect",
        "systemMetadata",
    ]


def test_file_and_wire_forms_convert_into_each_other() -> None:
    mcp = _mcp()
    wire = mcp.to_wire(run_id="x", last_observed=3)
    form = mcp.to_file_form(run_id="x", last_observed=3)
    assert m.file_form_to_wire(form) == wire
    assert m.wire_to_file_form(wire) == form


def test_entity_type_and_aspect_name_come_from_urn_and_aspect() -> None:
    mcp = _mcp(a.DataJobInfo(name="t"), JOB)
    assert mcp.entity_type == "dataJob"
    assert mcp.aspect_name == "dataJobInfo"
    assert mcp.entityUrn == JOB
    assert mcp.aspectName == "dataJobInfo"


def test_browse_paths_are_refused_on_a_process_instance() -> None:
    with pytest.raises(InvalidAspectError, match="not allowed on a dataProcessInstance"):
        _mcp(a.BrowsePathsV2(path=()))
    assert _mcp(a.BrowsePathsV2(path=()), JOB).aspect_name == "browsePathsV2"


def test_template_aspects_are_refused_on_a_process_instance() -> None:
    with pytest.raises(InvalidAspectError):
        _mcp(a.DataJobInfo(name="t"))
    with pytest.raises(InvalidAspectError):
        _mcp(EVENT, JOB)


def test_non_aspects_and_bad_urns_are_refused() -> None:
    with pytest.raises(InvalidAspectError):
        m.MetadataChangeProposal(entity_urn=DPI, aspect={"removed": False})  # type: ignore[arg-type]
    with pytest.raises(InvalidUrnError):
        m.MetadataChangeProposal(entity_urn="not-a-urn", aspect=a.Status())


def test_seed_wrapper_spelling() -> None:
    mcp = m.MetadataChangeProposalWrapper(entityUrn=DPI, aspect=EVENT)
    assert mcp == _mcp()
    assert mcp.to_obj()["aspectName"] == "dataProcessInstanceRunEvent"


def test_wire_batch_shares_one_last_observed() -> None:
    wires = m.wire_batch([_mcp(), _mcp(a.Status(), DPI)], run_id="b")
    assert wires[0]["systemMetadata"] == wires[1]["systemMetadata"]
    assert wires[0]["systemMetadata"]["runId"] == "b"


def test_dumps_is_canonical() -> None:
    assert m.dumps({"b": 1, "a": ["é", None]}) == '{"b":1,"a":["\\u00e9",null]}'
    with pytest.raises(ValueError, match="JSON"):
        m.dumps({"x": float("inf")})


def test_same_mcp_serializes_identically() -> None:
    props = a.DataProcessInstanceProperties(
        name="r", created=a.AuditStamp(time=1), custom_properties={"b": "1", "a": "2"}
    )
    one = m.dumps(_mcp(props).to_wire(run_id="x", last_observed=1))
    two = m.dumps(_mcp(props).to_wire(run_id="x", last_observed=1))
    assert one == two
    assert one.index('\\"b\\"') < one.index('\\"a\\"')  # insertion order, not sorted


# -- parse round trip -------------------------------------------------------------------------


@given(aspect=process_instance_aspects)
def test_process_instance_mcps_round_trip(aspect: Any) -> None:
    mcp = _mcp(aspect)
    assert m.from_wire(mcp.to_wire(last_observed=1)) == mcp
    assert m.from_wire(mcp.to_file_form(last_observed=1)) == mcp
    assert m.from_wire(json.loads(m.dumps(mcp.to_wire(last_observed=1)))) == mcp


@given(aspect=job_aspects)
def test_job_mcps_round_trip(aspect: Any) -> None:
    mcp = _mcp(aspect, JOB)
    assert m.from_wire(json.loads(m.dumps(mcp.to_wire(last_observed=1)))) == mcp


def test_round_trip_detects_a_changed_field() -> None:
    # Control: from_wire really reads the aspect (a tampered value gives a different MCP).
    wire = _mcp().to_wire(last_observed=1)
    wire["aspect"]["value"] = wire["aspect"]["value"].replace('"attempt":1', '"attempt":2')
    assert m.from_wire(wire) != _mcp()
    assert m.from_wire(wire).aspect.attempt == 2  # type: ignore[attr-defined]


def test_from_wire_refuses_unknown_aspects_and_fields() -> None:
    wire = _mcp().to_wire(last_observed=1)
    with pytest.raises(InvalidAspectError, match="unknown to this package"):
        m.from_wire({**wire, "aspectName": "schemaMetadata"})
    bad = m.wire_to_file_form(wire)
    bad["aspect"]["json"]["partitionSpec"] = {"partition": "x"}
    with pytest.raises(InvalidAspectError, match="unknown fields"):
        m.from_wire(bad)


def test_from_wire_reads_wrapped_and_bare_union_values() -> None:
    wire = _mcp(a.DataJobInfo(name="t", type="SQL"), JOB).to_file_form(last_observed=1)
    assert m.from_wire(wire).aspect.type == "SQL"  # type: ignore[attr-defined]
    wire["aspect"]["json"]["type"] = "SQL"
    assert m.from_wire(wire).aspect.type == "SQL"  # type: ignore[attr-defined]


# -- the sender's text fast path --------------------------------------------------------------


@given(
    aspect=process_instance_aspects,
    run=st.none() | st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    observed=st.none() | st.integers(min_value=0, max_value=4_102_444_800_000),
)
def test_wire_json_is_dumps_of_the_wire_form(aspect: Any, run: str | None, observed: Any) -> None:
    mcp = _mcp(aspect)
    fixed = 1 if observed is None else observed  # the default reads the clock
    assert mcp.to_wire_json(run_id=run, last_observed=fixed) == m.dumps(
        mcp.to_wire(run_id=run, last_observed=fixed)
    )


@given(aspect=job_aspects)
def test_wire_json_of_job_aspects(aspect: Any) -> None:
    mcp = _mcp(aspect, JOB)
    assert mcp.to_wire_json(last_observed=5) == m.dumps(mcp.to_wire(last_observed=5))


def test_wire_json_generic_cases() -> None:
    mcp = _mcp()
    props = {"clientId": "dhal"}
    assert mcp.to_wire_json(last_observed=3, properties=props) == m.dumps(
        mcp.to_wire(last_observed=3, properties=props)
    )
    before = int(time.time() * 1000)
    stamped = json.loads(mcp.to_wire_json())["systemMetadata"]["lastObserved"]
    assert before <= stamped <= int(time.time() * 1000)
