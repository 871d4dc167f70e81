"""acryl-datahub accepts every MCP we produce, reads back every field, and for the seed's
scenarios produces the same process-instance aspects as we do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from avro.errors import AvroException

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from tests.compat import compat_cases, seed_scenarios
from tests.compat.compat_oracle import (
    assert_round_trips,
    normalize,
    oracle_mcp,
    schema_order_errors,
)

pytestmark = pytest.mark.compat

CASES = compat_cases.cases()


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_mcp_is_accepted_and_round_trips(case: str) -> None:
    mcps = CASES[case]
    assert mcps
    for mcp in mcps:
        assert_round_trips(mcp.to_wire(run_id="compat", last_observed=1_705_312_800_000))
        assert_round_trips(
            mcp.to_file_form(run_id="compat", last_observed=1, properties={"k": "v"})
        )
        # The envelope that goes on the wire survives JSON encoding unchanged.
        wire = json.loads(json.dumps(mcp.to_wire(last_observed=2)))
        assert_round_trips(wire)


def test_cases_cover_every_aspect_we_define() -> None:
    produced = {m.aspect_name for mcps in CASES.values() for m in mcps}
    assert produced == set(a.ASPECT_CLASSES)


def _dpi_view(items: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(entity urn, aspect name, aspect without defaults) of what is not a template."""
    out = []
    for item in items:
        if item["entityType"] in ("dataFlow", "dataJob"):
            continue
        mcpw = oracle_mcp(item)
        schema = type(mcpw.aspect).RECORD_SCHEMA
        out.append((item["entityUrn"], item["aspectName"], normalize(mcpw.aspect.to_obj(), schema)))
    return out


@pytest.mark.parametrize("scenario", sorted(seed_scenarios.SCENARIOS))
def test_seed_scenarios_match_acryl(scenario: str) -> None:
    """Process-instance and dataset-key MCPs are the same as acryl-datahub's for the seed's
    examples, in the same order. Known, intended difference: the ML example's container urn
    (acryl's ContainerKey ignores ``name``, see test_compat_urns)."""
    ours = [m.to_wire(last_observed=1) for m in seed_scenarios.run(scenario, seed_scenarios.ours())]
    theirs = [m.to_obj() for m in seed_scenarios.run(scenario, seed_scenarios.acryl())]
    mine, acryls = _dpi_view(ours), _dpi_view(theirs)
    if scenario == "ml_training":
        containers = [(x, y) for x, y in zip(mine, acryls, strict=True) if x != y]
        assert [(x[1], y[1]) for x, y in containers] == [("container", "container")]
        mine = [x for x in mine if x[1] != "container"]
        acryls = [y for y in acryls if y[1] != "container"]
    assert mine == acryls


def _template_view(items: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {
        (i["entityUrn"], i["aspectName"]): normalize(
            oracle_mcp(i).aspect.to_obj(), type(oracle_mcp(i).aspect).RECORD_SCHEMA
        )
        for i in items
        if i["entityType"] in ("dataFlow", "dataJob")
    }


@pytest.mark.parametrize("scenario", ["simple", "from_dataflow", "hierarchical"])
def test_seed_templates_carry_at_least_what_acryl_sends(scenario: str) -> None:
    """Templates differ on purpose, only by adding: we also send browsePathsV2, flowUrn and the
    *Edges lineage fields, and we leave out EMPTY ownership/globalTags (an empty UPSERT would
    wipe owners and tags set in DataHub's UI). Everything acryl-datahub sends otherwise, we send
    with the same value."""
    ours = _template_view(
        [m.to_wire(last_observed=1) for m in seed_scenarios.run(scenario, seed_scenarios.ours())]
    )
    theirs = _template_view(
        [m.to_obj() for m in seed_scenarios.run(scenario, seed_scenarios.acryl())]
    )
    assert theirs
    for key, their_aspect in theirs.items():
        if key[1] in ("ownership", "globalTags"):
            assert their_aspect.get("owners", their_aspect.get("tags")) == []
            assert key not in ours
            continue
        mine = ours[key]
        for field, value in their_aspect.items():
            if field == "fineGrainedLineages" and value == []:
                continue  # optional; we send no column lineage
            assert mine[field] == value, (key, field)
    assert {k for k in ours if k[1] == "browsePathsV2"}


# -- the oracle checks can fail ----------------------------------------------------------------


def _event_wire() -> dict[str, Any]:
    mcp = MetadataChangeProposal(
        entity_urn="urn:li:dataProcessInstance:3b554376399927fc165c8e4325700faf",
        aspect=a.DataProcessInstanceRunEvent(
            timestamp_millis=1, status=a.DataProcessRunStatus.STARTED, attempt=1
        ),
    )
    return mcp.to_file_form(last_observed=1)


def test_control_a_field_acryl_does_not_know_is_caught() -> None:
    wire = _event_wire()
    wire["aspect"]["json"]["attemptNumber"] = 1
    with pytest.raises(AssertionError, match="attemptNumber"):
        assert_round_trips(wire)


def test_control_an_invalid_enum_is_rejected() -> None:
    wire = _event_wire()
    wire["aspect"]["json"]["status"] = "RUNNING"
    with pytest.raises((AssertionError, AvroException)):
        assert_round_trips(wire)


def test_control_a_wrong_type_is_rejected() -> None:
    wire = _event_wire()
    wire["aspect"]["json"]["attempt"] = "1"
    with pytest.raises(AvroException, match="cannot be parsed"):
        assert_round_trips(wire)


def test_control_key_order_is_checked() -> None:
    wire = _event_wire()
    aspect = wire["aspect"]["json"]
    wire["aspect"]["json"] = dict(reversed(list(aspect.items())))
    mcpw = oracle_mcp(wire)
    assert schema_order_errors(wire["aspect"]["json"], type(mcpw.aspect).RECORD_SCHEMA)
    with pytest.raises(AssertionError):
        assert_round_trips(wire)


def test_control_an_unwrapped_union_is_not_what_acryl_writes() -> None:
    """dataJobInfo.type must be sent wrapped ({"string": ...}); acryl writes it wrapped too."""
    job = "urn:li:dataJob:(urn:li:dataFlow:(airflow,d,prod),t)"
    wire = MetadataChangeProposal(entity_urn=job, aspect=a.DataJobInfo(name="t")).to_file_form()
    assert wire["aspect"]["json"]["type"] == {"string": "COMMAND"}
    assert oracle_mcp(wire).aspect.to_obj()["type"] == {"string": "COMMAND"}
