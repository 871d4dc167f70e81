"""OpenLineage naming against acryl-datahub: for every row of the naming table our urn is the
one DataHub's own builder gives the expected (platform, name); schemaField urns agree; MCPs
carrying column lineage and transform logic are accepted and read back whole."""

from __future__ import annotations

import pytest
from avro.errors import AvroException
from datahub.emitter import mce_builder as acryl
from datahub.metadata.schema_classes import DataJobInputOutputClass, DataTransformLogicClass

from datahub_airflow_listener.domain.openlineage import (
    ConnectionDetail,
    column_lineage,
    connection_key,
    ol_dataset_urn,
    schema_field_urn,
)
from tests.compat import compat_cases
from tests.compat.compat_oracle import assert_round_trips, oracle_mcp
from tests.support.openlineage_cases import CASES

pytestmark = pytest.mark.compat

AWKWARD = [
    "plain",
    "with,comma",
    "f(a,b)",
    "unit\u241fsep",
    "tåble_ü",
    "名前",
    "emoji🎉",
    "50%off",
    "inner space",
    "a:b/c?d=e&f",
    "x" * 120,
]


def _connection(namespace: str, **detail: str) -> dict[str, ConnectionDetail]:
    scheme, _, authority = namespace.partition("://")
    return {connection_key(scheme, authority): ConnectionDetail(**detail)}


@pytest.mark.parametrize(("namespace", "name", "platform", "expected"), CASES)
def test_every_row_equals_acryls_urn_of_the_expected_naming(
    namespace: str, name: str, platform: str, expected: str
) -> None:
    assert ol_dataset_urn(namespace, name) == (
        acryl.make_dataset_urn_with_platform_instance(platform, expected, None, "PROD"),
        None,
    )
    with_instance = _connection(namespace, platform_instance="warehouse", env="DEV")
    assert ol_dataset_urn(namespace, name, connections=with_instance)[0] == (
        acryl.make_dataset_urn_with_platform_instance(platform, expected, "warehouse", "DEV")
    )
    assert ol_dataset_urn(namespace, name, env="qa")[0] == acryl.make_dataset_urn(
        platform, expected, "QA"
    )


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_names_are_encoded_as_acryl_encodes_them(value: str) -> None:
    assert ol_dataset_urn("kafka://b:9092", value)[0] == acryl.make_dataset_urn("kafka", value)
    assert ol_dataset_urn("s3://bucket", value)[0] == acryl.make_dataset_urn(
        "s3", f"bucket/{value}"
    )
    instance = _connection("kafka://b:9092", platform_instance=value)
    assert ol_dataset_urn("kafka://b:9092", "t", connections=instance)[0] == (
        acryl.make_dataset_urn_with_platform_instance("kafka", "t", value, "PROD")
    )


@pytest.mark.parametrize("value", AWKWARD)
def test_schema_field_urns_equal_acryls(value: str) -> None:
    dataset = acryl.make_dataset_urn("postgres", f"db.public.{value}")
    assert schema_field_urn(dataset, value) == acryl.make_schema_field_urn(dataset, value)


def test_column_lineage_urns_equal_acryls() -> None:
    out = acryl.make_dataset_urn("snowflake", "db.s.out")
    (record,) = column_lineage(out, {"Total": [("snowflake://acct", "DB.S.SRC", "Amount")]})
    source = acryl.make_dataset_urn("snowflake", "db.s.src")
    assert record.upstreams == (acryl.make_schema_field_urn(source, "amount"),)
    assert record.downstreams == (acryl.make_schema_field_urn(out, "total"),)


def _mcps() -> list[dict[str, object]]:
    return [m.to_file_form(last_observed=1) for m in compat_cases.cases()["column_lineage"]]


def test_column_lineage_and_transform_logic_mcps_round_trip() -> None:
    for mcp in compat_cases.cases()["column_lineage"]:
        assert_round_trips(mcp.to_wire(run_id="compat", last_observed=1))
        assert_round_trips(mcp.to_file_form(last_observed=1))
    io, logic = (oracle_mcp(w).aspect for w in _mcps())
    assert isinstance(io, DataJobInputOutputClass)
    assert isinstance(logic, DataTransformLogicClass)
    assert io.fineGrainedLineages is not None
    assert [f.upstreamType for f in io.fineGrainedLineages] == ["FIELD_SET", "FIELD_SET", "DATASET"]
    assert [f.confidenceScore for f in io.fineGrainedLineages] == [1.0, 1.0, 0.5]
    assert io.fineGrainedLineages[2].query == "urn:li:query:load_clean"
    statements = [t.queryStatement for t in logic.transforms]
    assert [(s.value, s.language) if s else None for s in statements] == [
        ("INSERT INTO clean SELECT * FROM orders", "SQL"),
        ("CALL x()", "UNKNOWN"),
        None,
    ]


def test_control_an_unknown_upstream_type_is_rejected() -> None:
    wire = _mcps()[0]
    wire["aspect"]["json"]["fineGrainedLineages"][0]["upstreamType"] = "COLUMN"  # type: ignore[index]
    with pytest.raises((AssertionError, AvroException)):
        assert_round_trips(wire)  # type: ignore[arg-type]


def test_control_a_confidence_score_as_text_is_rejected() -> None:
    wire = _mcps()[0]
    wire["aspect"]["json"]["fineGrainedLineages"][0]["confidenceScore"] = "1.0"  # type: ignore[index]
    with pytest.raises((AssertionError, AvroException)):
        assert_round_trips(wire)  # type: ignore[arg-type]
