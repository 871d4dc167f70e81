"""The canonical serializer: camelCase, None dropped, enums as values, unions wrapped, order."""

from __future__ import annotations

import enum
import json
from typing import Any

import attrs
import pytest
from hypothesis import given

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.encode import aspect_to_json, dumps, encoder_source
from datahub_airflow_listener.domain.parse import aspect_from_dict
from tests.unit.domain.domain_strategies import job_aspects, process_instance_aspects

STAMP = a.AuditStamp(time=1_700_000_000_000)


def test_none_fields_are_dropped() -> None:
    props = a.DataProcessInstanceProperties(name="r", created=STAMP)
    assert a.aspect_to_dict(props) == {
        "customProperties": {},
        "name": "r",
        "created": {"time": 1_700_000_000_000, "actor": "urn:li:corpuser:datahub"},
    }


def test_enums_become_their_values() -> None:
    event = a.DataProcessInstanceRunEvent(
        timestamp_millis=5,
        status=a.DataProcessRunStatus.COMPLETE,
        result=a.RunResult(type=a.RunResultType.UP_FOR_RETRY, native_result_type="up_for_retry"),
    )
    d = a.aspect_to_dict(event)
    assert d["status"] == "COMPLETE"
    assert type(d["status"]) is str
    assert d["result"] == {"type": "UP_FOR_RETRY", "nativeResultType": "up_for_retry"}
    assert type(d["result"]["type"]) is str


def test_data_job_info_type_is_a_wrapped_union() -> None:
    info = a.DataJobInfo(name="t", type="PYTHON")
    assert a.aspect_to_dict(info)["type"] == {"string": "PYTHON"}
    assert a.aspect_to_dict(a.DataJobInfo(name="t"))["type"] == {"string": "COMMAND"}
    assert '"type":{"string":"COMMAND"}' in aspect_to_json(a.DataJobInfo(name="t"))


def test_keys_follow_datahub_schema_order() -> None:
    props = a.DataProcessInstanceProperties(
        name="r",
        created=STAMP,
        type=a.DataProcessType.BATCH_AD_HOC,
        external_url="http://x",
        custom_properties={"k": "v"},
    )
    assert list(a.aspect_to_dict(props)) == [
        "customProperties",
        "externalUrl",
        "name",
        "type",
        "created",
    ]
    event = a.DataProcessInstanceRunEvent(
        timestamp_millis=1,
        status=a.DataProcessRunStatus.COMPLETE,
        attempt=2,
        message_id="m",
        external_url="u",
        duration_millis=3,
        result=a.RunResult(type=a.RunResultType.SUCCESS, native_result_type="success"),
    )
    assert list(a.aspect_to_dict(event)) == [
        "timestampMillis",
        "messageId",
        "externalUrl",
        "status",
        "attempt",
        "result",
        "durationMillis",
    ]
    edge = a.Edge(destination_urn="d", source_urn="s", properties={"p": "1"})
    assert list(a.aspect_to_dict(edge)) == ["sourceUrn", "destinationUrn", "properties"]


def test_required_collections_are_sent_even_when_empty() -> None:
    assert a.aspect_to_dict(a.DataProcessInstanceRelationships()) == {"upstreamInstances": []}
    assert a.aspect_to_dict(a.DataProcessInstanceInput(inputs=())) == {"inputs": []}
    assert a.aspect_to_dict(a.DataJobInputOutput()) == {"inputDatasets": [], "outputDatasets": []}


def test_snake_case_fields_become_camel_case_wire_names() -> None:
    io = a.DataJobInputOutput(
        input_datasets=("i",),
        input_dataset_edges=(a.Edge(destination_urn="i"),),
        output_datasets=("o",),
        input_datajobs=("j",),
        input_datajob_edges=(),
    )
    assert list(a.aspect_to_dict(io)) == [
        "inputDatasets",
        "inputDatasetEdges",
        "outputDatasets",
        "inputDatajobs",
        "inputDatajobEdges",
    ]
    assert a.aspect_to_dict(a.SubTypes(type_names=("x",))) == {"typeNames": ["x"]}


def test_custom_properties_become_strings_and_none_values_are_dropped() -> None:
    props = a.DataProcessInstanceProperties(
        name="r", created=STAMP, custom_properties={"n": 3, "b": True, "none": None, 4: "k"}
    )
    assert props.custom_properties == {"n": "3", "b": "True", "4": "k"}


def test_custom_properties_are_a_private_copy() -> None:
    source = {"k": "v"}
    props = a.DataProcessInstanceProperties(name="r", created=STAMP, custom_properties=source)
    source["k"] = "changed"
    assert props.custom_properties == {"k": "v"}


def test_aspects_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.Status().removed = True  # type: ignore[misc]


def test_unknown_values_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot serialize"):
        a.to_json_value(object())
    with pytest.raises(TypeError, match="cannot serialize"):
        aspect_to_json(a.Container(container=object()))  # type: ignore[arg-type]


def test_serialized_aspect_is_compact_ascii() -> None:
    text = aspect_to_json(a.DataProcessInstanceProperties(name="réseau 名", created=STAMP))
    assert text.isascii()
    assert "r\\u00e9seau \\u540d" in text
    assert ": " not in text
    assert ", " not in text


def test_browse_paths_are_not_allowed_on_process_instances() -> None:
    assert "dataProcessInstance" not in a.BrowsePathsV2.ENTITY_TYPES
    assert {"dataFlow", "dataJob"} <= a.BrowsePathsV2.ENTITY_TYPES
    for name in (
        "dataProcessInstanceProperties",
        "dataProcessInstanceRelationships",
        "dataProcessInstanceInput",
        "dataProcessInstanceOutput",
        "dataProcessInstanceRunEvent",
        "status",
        "dataPlatformInstance",
        "subTypes",
        "container",
    ):
        assert "dataProcessInstance" in a.ASPECT_CLASSES[name].ENTITY_TYPES, name


def test_only_the_run_event_and_the_operation_are_timeseries() -> None:
    assert [n for n, c in a.ASPECT_CLASSES.items() if c.TIMESERIES] == [
        "dataProcessInstanceRunEvent",
        "operation",
    ]


# -- the compiled encoders equal the generic serializer -------------------------------------


@given(aspect=process_instance_aspects | job_aspects)
def test_compiled_encoder_equals_generic_serializer(aspect: Any) -> None:
    assert aspect_to_json(aspect) == dumps(a.aspect_to_dict(aspect))


class _Color(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    "aspect",
    [
        # Values of another kind than declared take the generic path, with the same result.
        a.DataProcessInstanceRunEvent(timestamp_millis=True, status=a.DataProcessRunStatus.STARTED),  # type: ignore[arg-type]
        a.DataProcessInstanceRunEvent(timestamp_millis=1, status="STARTED"),  # type: ignore[arg-type]
        a.DataProcessInstanceRunEvent(timestamp_millis=1.5, status=_Color.RED),  # type: ignore[arg-type]
        a.Status(removed=1),  # type: ignore[arg-type]
        a.DataProcessInstanceRelationships(upstream_instances=["a", "b"]),
        a.Edge(destination_urn="d", properties={1: 2}),  # type: ignore[dict-item]
        a.Container(container=_Color.RED),  # type: ignore[arg-type]
        a.Ownership(owners=(a.Owner(owner="o"), {"owner": "x"})),  # type: ignore[arg-type]
    ],
    ids=repr,
)
def test_compiled_encoder_falls_back_for_unexpected_types(aspect: Any) -> None:
    generic = dumps(a.aspect_to_dict(aspect))
    assert aspect_to_json(aspect) == generic
    json.loads(generic)


def test_encoder_source_is_generated_from_the_schema_order() -> None:
    source = encoder_source(a.DataProcessInstanceRunEvent)
    positions = [source.index(f'"\\"{k}\\":"') for k in ("timestampMillis", "status", "result")]
    assert positions == sorted(positions)
    assert "def encode" in source


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError, match="JSON"):
        aspect_to_json(a.DataProcessInstanceRunEvent(timestamp_millis=float("nan"), status="S"))  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class _Outside:
    """A record defined outside aspects.py, with nested records and a forward reference."""

    stamp: a.AuditStamp
    tags: tuple[a.TagAssociation, ...] = ()
    missing: Undefined | None = None  # type: ignore[name-defined]  # noqa: F821  # unresolvable on purpose


def test_records_from_other_modules_and_unresolvable_hints_serialize_the_same() -> None:
    record = _Outside(stamp=STAMP, tags=(a.TagAssociation(tag="urn:li:tag:x"),), missing="m")
    assert aspect_to_json(record) == dumps(a.aspect_to_dict(record))
    assert json.loads(aspect_to_json(record))["missing"] == "m"


# -- column lineage and transform logic -----------------------------------------------------


def _fine(**kw: Any) -> a.FineGrainedLineage:
    return a.FineGrainedLineage(
        upstream_type=a.FineGrainedLineageUpstreamType.FIELD_SET,
        upstreams=("urn:li:schemaField:(urn:li:dataset:(urn:li:dataPlatform:hive,i,PROD),x)",),
        downstream_type=a.FineGrainedLineageDownstreamType.FIELD,
        downstreams=("urn:li:schemaField:(urn:li:dataset:(urn:li:dataPlatform:hive,o,PROD),y)",),
        **kw,
    )


def test_fine_grained_lineage_follows_datahub_names_order_and_types() -> None:
    record = _fine(transform_operation="SUM", query="urn:li:query:q1")
    assert list(a.aspect_to_dict(record)) == [
        "upstreamType",
        "upstreams",
        "downstreamType",
        "downstreams",
        "transformOperation",
        "confidenceScore",
        "query",
    ]
    text = aspect_to_json(record)
    assert '"upstreamType":"FIELD_SET"' in text
    assert '"downstreamType":"FIELD"' in text
    # confidenceScore is a JSON number (a float in DataHub's schema), never a string.
    assert '"confidenceScore":1.0' in text
    assert json.loads(text)["confidenceScore"] == 1.0
    assert type(json.loads(aspect_to_json(_fine(confidence_score=1)))["confidenceScore"]) is float


def test_fine_grained_lineage_drops_what_is_unset() -> None:
    bare = a.FineGrainedLineage(
        upstream_type=a.FineGrainedLineageUpstreamType.NONE,
        downstream_type=a.FineGrainedLineageDownstreamType.FIELD_SET,
    )
    assert a.aspect_to_dict(bare) == {
        "upstreamType": "NONE",
        "downstreamType": "FIELD_SET",
        "confidenceScore": 1.0,
    }


def test_data_job_input_output_carries_fine_grained_lineages_last() -> None:
    io = a.DataJobInputOutput(input_datasets=("i",), fine_grained_lineages=[_fine()])
    d = a.aspect_to_dict(io)
    assert list(d) == ["inputDatasets", "outputDatasets", "fineGrainedLineages"]
    assert d["fineGrainedLineages"] == [a.aspect_to_dict(_fine())]
    assert isinstance(io.fine_grained_lineages, tuple)


def test_data_transform_logic_is_a_job_aspect_with_sql_by_default() -> None:
    logic = a.DataTransformLogic(
        transforms=[a.DataTransform(query_statement=a.QueryStatement(value="SELECT 1"))]
    )
    assert aspect_to_json(logic) == (
        '{"transforms":[{"queryStatement":{"value":"SELECT 1","language":"SQL"}}]}'
    )
    assert a.aspect_to_dict(a.DataTransformLogic(transforms=[a.DataTransform()])) == {
        "transforms": [{}]
    }
    assert a.ASPECT_CLASSES["dataTransformLogic"] is a.DataTransformLogic
    assert frozenset({"dataJob"}) == a.DataTransformLogic.ENTITY_TYPES


def test_new_aspects_read_back_as_they_were() -> None:
    io = a.DataJobInputOutput(fine_grained_lineages=[_fine(confidence_score=0.5)])
    logic = a.DataTransformLogic(
        transforms=[a.DataTransform(query_statement=a.QueryStatement(value="SELECT 1"))]
    )
    for aspect in (io, logic):
        assert aspect_from_dict(type(aspect), json.loads(aspect_to_json(aspect))) == aspect
