"""MCPs other code built (what DAGs hand the emitter operator), read duck-typed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.errors import DomainError
from datahub_airflow_listener.domain.foreign import (
    WireProposal,
    map_strings,
    proposals_of,
    to_wire_proposal,
)
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal

DS = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/x,PROD)"
UP = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/up,PROD)"
WIRE = {
    "entityType": "dataset",
    "entityUrn": DS,
    "changeType": "UPSERT",
    "aspectName": "status",
    "aspect": {"value": '{"removed": false}', "contentType": "application/json"},
}
MCE = {
    "proposedSnapshot": {
        "com.linkedin.pegasus2avro.metadata.snapshot.DatasetSnapshot": {
            "urn": DS,
            "aspects": [
                {
                    "com.linkedin.pegasus2avro.dataset.UpstreamLineage": {
                        "upstreams": [{"dataset": UP, "type": "TRANSFORMED"}]
                    }
                },
                {"com.linkedin.pegasus2avro.common.Status": {"removed": False}},
            ],
        }
    }
}


class _ToObj:
    """Stands for acryl-datahub's wrapper: only ``to_obj()``."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self._obj = obj

    def to_obj(self) -> dict[str, Any]:
        return self._obj


class _Aspect:
    ASPECT_NAME = "upstreamLineage"

    def to_obj(self) -> dict[str, Any]:
        return {"upstreams": [{"dataset": UP, "type": "TRANSFORMED"}]}


class _Snapshot:
    urn = DS
    aspects = (_Aspect(),)


class _Mce:
    """Stands for acryl-datahub's MetadataChangeEventClass: its snapshot's aspects name
    themselves."""

    proposedSnapshot = _Snapshot()  # noqa: N815 -- acryl-datahub's attribute name


def _value(p: Any) -> dict[str, Any]:
    return json.loads(p.to_wire(last_observed=1)["aspect"]["value"])


def test_our_mcps_pass_through_unchanged() -> None:
    ours = MetadataChangeProposal(entity_urn=DS, aspect=a.Status(removed=False))
    assert proposals_of(ours) == [ours]


@pytest.mark.parametrize("item", [WIRE, _ToObj(WIRE)], ids=["dict", "to_obj"])
def test_a_wire_form_mcp(item: Any) -> None:
    (p,) = proposals_of(item)
    assert isinstance(p, WireProposal)
    assert (p.entity_urn, p.entity_type, p.aspect_name) == (DS, "dataset", "status")
    wire = p.to_wire(run_id="r", last_observed=7)
    assert wire["aspect"] == {"value": '{"removed":false}', "contentType": "application/json"}
    assert wire["systemMetadata"] == {"lastObserved": 7, "runId": "r"}
    assert p.to_wire_json(last_observed=7) == json.dumps(
        p.to_wire(last_observed=7), separators=(",", ":")
    )


def test_the_file_form_and_a_missing_entity_type() -> None:
    item = {"entityUrn": DS, "aspectName": "status", "aspect": {"json": {"removed": True}}}
    (p,) = proposals_of(item)
    assert p.entity_type == "dataset" and _value(p) == {"removed": True}
    assert p.to_file_form(last_observed=1)["aspect"] == {"json": {"removed": True}}


@pytest.mark.parametrize("item", [MCE, _ToObj(MCE)], ids=["dict", "to_obj"])
def test_a_metadata_change_event_is_one_proposal_per_aspect(item: Any) -> None:
    lineage, status = proposals_of(item)
    assert [lineage.aspect_name, status.aspect_name] == ["upstreamLineage", "status"]
    assert {lineage.entity_urn, status.entity_urn} == {DS}
    assert _value(lineage)["upstreams"][0]["dataset"] == UP


def test_an_mce_object_names_its_aspects_itself() -> None:
    (p,) = proposals_of(_Mce())
    assert p.aspect_name == "upstreamLineage" and p.entity_type == "dataset"


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (42, "not an MCP"),
        ({"entityUrn": DS}, "aspectName"),
        ({**WIRE, "aspect": {"value": "{not json", "contentType": "application/json"}}, "JSON"),
        ({**WIRE, "aspect": {"value": "[1]", "contentType": "application/json"}}, "object"),
        ({**WIRE, "aspect": {"value": "{}", "contentType": "text/plain"}}, "content type"),
        ({**WIRE, "aspect": None, "changeType": "DELETE"}, "no aspect"),
        ({**WIRE, "entityUrn": "not-a-urn", "entityType": None}, "urn"),
    ],
)
def test_what_is_not_an_mcp_is_refused_with_the_reason(item: Any, problem: str) -> None:
    with pytest.raises(DomainError, match=problem):
        proposals_of(item)


def test_map_strings_rewrites_the_urn_and_every_string_of_the_aspect() -> None:
    job = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),load)"
    templated = "urn:li:dataset:(urn:li:dataPlatform:s3,{{ ds }},PROD)"
    ours = MetadataChangeProposal(
        entity_urn=job, aspect=a.DataJobInputOutput(input_datasets=[templated])
    )
    wire = map_strings(ours, lambda s: s.replace("{{ ds }}", "2024-01-01"))
    assert _value(wire)["inputDatasets"] == [
        "urn:li:dataset:(urn:li:dataPlatform:s3,2024-01-01,PROD)"
    ]
    assert (wire.entity_urn, wire.entity_type) == (job, "dataJob")
    assert to_wire_proposal(ours).aspect == ours.aspect_dict()
    bare = WireProposal(entity_urn=DS, entity_type="dataset", aspect_name="status", aspect={})
    moved = map_strings(bare, lambda s: s.replace("bucket/x", "bucket/y"))
    assert moved.entity_urn.endswith("bucket/y,PROD)") and moved.entity_type == "dataset"
