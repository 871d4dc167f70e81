"""The official plugin's extra aspects and acryl-datahub's own MCP objects, checked by the oracle.

* acryl-datahub's MetadataChangeProposalWrappers, raw proposals and MetadataChangeEvents (what
  DAGs hand ``DatahubEmitterOperator``) go through :func:`proposals_of` and come out as MCPs
  acryl-datahub reads back with the same aspect, one per aspect of an MCE, as its own
  ``mcps_from_mce`` splits it;
* the operation, tag status, instance platform and owners we send carry at least every field,
  with the same value, that the official plugin builds for them with acryl-datahub's classes.
"""

from __future__ import annotations

from typing import Any

import datahub.emitter.mce_builder as builder
import pytest
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.emitter.mcp_builder import mcps_from_mce
from datahub.metadata import schema_classes as sc

from datahub_airflow_listener.domain.extras import (
    dataset_operation_mcps,
    instance_platform_mcps,
    tag_status_mcps,
)
from datahub_airflow_listener.domain.foreign import proposals_of
from datahub_airflow_listener.domain.templates import DataJob
from tests.compat.compat_oracle import assert_round_trips, normalize, oracle_mcp

pytestmark = pytest.mark.compat

DS = builder.make_dataset_urn("snowflake", "mydb.schema.tablec", "DEV")
UP = builder.make_dataset_urn("snowflake", "mydb.schema.tablea")
DPI = "urn:li:dataProcessInstance:4c378e9cb955769d457950caf4c41dfa"


def _acryl_items() -> dict[str, Any]:
    props = MetadataChangeProposalWrapper(
        entityUrn=DS,
        aspect=sc.DatasetPropertiesClass(description="ünïcødé", customProperties={"k": "v"}),
    )
    raw = MetadataChangeProposalWrapper(
        entityUrn=DS, aspect=sc.StatusClass(removed=False)
    ).make_mcp()
    return {
        "wrapper": props,
        "raw proposal": raw,
        "lineage mce": builder.make_lineage_mce([UP], DS),
    }


@pytest.mark.parametrize("name", sorted(_acryl_items()))
def test_acryl_objects_become_mcps_acryl_reads_back(name: str) -> None:
    item = _acryl_items()[name]
    ours = proposals_of(item)
    theirs = list(mcps_from_mce(item)) if name == "lineage mce" else [item]
    assert len(ours) == len(theirs)
    for mine, their in zip(ours, theirs, strict=True):
        wire = mine.to_wire(run_id="compat", last_observed=1)
        oracle = assert_round_trips(wire)
        their_aspect = their.aspect if hasattr(their, "aspect") and their.aspect else None
        if isinstance(their, MetadataChangeProposalWrapper):
            assert oracle.aspect == their_aspect
            assert (wire["entityUrn"], wire["aspectName"]) == (their.entityUrn, their.aspectName)
        else:  # the raw proposal: its aspect is JSON text
            assert oracle.aspect == oracle_mcp(their.to_obj()).aspect


def _view(wire: dict[str, Any]) -> dict[str, Any]:
    mcpw = oracle_mcp(wire)
    return normalize(mcpw.aspect.to_obj(), type(mcpw.aspect).RECORD_SCHEMA)


def _at_least(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    for field, value in theirs.items():
        assert ours.get(field) == value, field


def test_operation_carries_what_the_official_plugin_sends() -> None:
    theirs = MetadataChangeProposalWrapper(
        entityUrn=DS,
        aspect=sc.OperationClass(
            timestampMillis=1_705_312_815_000,
            operationType=sc.OperationTypeClass.CREATE,
            lastUpdatedTimestamp=1_705_312_815_000,
            actor=builder.make_user_urn("airflow"),
        ),
    )
    (ours,) = dataset_operation_mcps([DS], time_ms=1_705_312_815_000, properties={"k": "v"})
    wire = ours.to_wire(last_observed=1)
    assert_round_trips(wire)
    _at_least(_view(wire), _view(theirs.to_obj()))


def test_tag_status_and_instance_platform_are_the_official_plugins() -> None:
    tag = MetadataChangeProposalWrapper(
        entityUrn=builder.make_tag_urn("finance"), aspect=sc.StatusClass(removed=False)
    )
    (ours,) = tag_status_mcps(["finance"])
    assert ours.to_wire(last_observed=1)["entityUrn"] == tag.entityUrn
    assert _view(ours.to_wire(last_observed=1)) == _view(tag.to_obj())
    platform = MetadataChangeProposalWrapper(
        entityUrn=DPI,
        aspect=sc.DataPlatformInstanceClass(
            platform=builder.make_data_platform_urn("airflow"),
            instance=builder.make_dataplatform_instance_urn("airflow", "ops"),
        ),
    )
    (mine,) = instance_platform_mcps(DPI, "ops")
    assert _view(mine.to_wire(last_observed=1)) == _view(platform.to_obj())


def test_owners_carry_their_source_as_acryl_datajobs_do() -> None:
    from datahub.api.entities.datajob import DataJob as AcrylDataJob
    from datahub.utilities.urns.data_flow_urn import DataFlowUrn

    flow = DataFlowUrn.create_from_ids(orchestrator="airflow", flow_id="etl", env="prod")
    theirs = AcrylDataJob(id="load", flow_urn=flow, owners={"alice"}, group_owners={"team"})
    mine = DataJob(id="load", flow_urn=str(flow), owners={"alice"}, group_owners={"team"})
    (their_ownership,) = [m.to_obj() for m in theirs.generate_mcp() if m.aspectName == "ownership"]
    (our_ownership,) = [
        m.to_wire(last_observed=1) for m in mine.generate_mcp() if m.aspect_name == "ownership"
    ]

    def by_owner(view: dict[str, Any]) -> list[dict[str, Any]]:
        return sorted(view["owners"], key=lambda o: o["owner"])  # theirs: a set's order

    assert by_owner(_view(our_ownership)) == by_owner(_view(their_ownership))
