"""Links between runs: upstreamInstances of DAG runs and task runs, a run's consumed inputs."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.encode import aspect_to_json
from datahub_airflow_listener.domain.links import (
    MAX_PROPERTY_CHARS,
    ConsumedEvent,
    RunLinks,
    RunRef,
    extra_properties,
    upstream_map_indexes,
)
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.runs import DagRunFacts, RunMapper, TaskRunFacts

MAPPER = RunMapper()
RUN = "asset_triggered__2024-01-01T00:00:00+00:00"
ORDERS = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.orders,PROD)"
USERS = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.users,PROD)"
PRODUCER = RunRef(dag_id="producer", run_id="manual__1", task_id="publish")


def _by_name(mcps: list[MetadataChangeProposal]) -> dict[str, Any]:
    return {m.aspect_name: m.aspect for m in mcps}


def _event(urn: str, ts: int, event_id: int, **kw: Any) -> ConsumedEvent:
    return ConsumedEvent(dataset_urn=urn, timestamp_ms=ts, event_id=event_id, **kw)


def test_a_dag_run_follows_the_producers_of_what_it_consumed() -> None:
    mapped = RunRef(dag_id="producer", run_id="manual__1", task_id="each", map_index=2)
    links = RunLinks(
        consumed=(
            _event(ORDERS, 1_000, 1, producer=PRODUCER),
            _event(USERS, 2_000, 2, producer=mapped),
            _event(USERS, 3_000, 3),  # created through the REST API: no producer
        )
    )
    facts = DagRunFacts(dag_id="consumer", run_id=RUN, start_ms=5_000, links=links)
    rel = _by_name(MAPPER.dag_run_started(facts))["dataProcessInstanceRelationships"]
    assert rel.upstream_instances == (
        MAPPER.task_run_urn("producer", "each", "manual__1", 2),
        MAPPER.task_run_urn("producer", "publish", "manual__1"),
    )
    assert rel.parent_template == MAPPER.flow_urn("consumer")


def test_input_edges_carry_the_latest_event_time_and_its_extra() -> None:
    links = RunLinks(
        consumed=(
            _event(ORDERS, 1_000, 1, properties={"rows": "10"}),
            _event(ORDERS, 4_000, 7, properties={"rows": "12", "batch": "b"}),
            _event(USERS, 2_000, 2),
        )
    )
    facts = DagRunFacts(dag_id="consumer", run_id=RUN, start_ms=5_000, links=links)
    inputs = _by_name(MAPPER.dag_run_started(facts))["dataProcessInstanceInput"]
    assert inputs.inputs == (ORDERS, USERS)
    orders, users = inputs.input_edges
    assert (orders.destination_urn, orders.created.time) == (ORDERS, 4_000)
    assert dict(orders.properties) == {"batch": "b", "rows": "12"}
    assert (users.created.time, users.properties) == (2_000, None)


def test_a_run_without_links_has_no_upstreams_and_no_inputs() -> None:
    mcps = MAPPER.dag_run_started(DagRunFacts(dag_id="d", run_id="r", start_ms=1))
    by_name = _by_name(mcps)
    assert by_name["dataProcessInstanceRelationships"].upstream_instances == ()
    assert "dataProcessInstanceInput" not in by_name
    assert [m.aspect_name for m in mcps] == [
        "dataProcessInstanceProperties",
        "dataProcessInstanceRelationships",
        "dataProcessInstanceRunEvent",
    ]


def test_a_triggered_run_follows_the_task_run_that_triggered_it() -> None:
    trigger = RunRef(dag_id="parent", run_id="scheduled__x", task_id="trigger", map_index=0)
    facts = DagRunFacts(dag_id="child", run_id="manual__y", links=RunLinks(triggered_by=[trigger]))
    rel, *rest = MAPPER.dag_run_links(facts)
    assert rel.aspect.upstream_instances == (
        MAPPER.task_run_urn("parent", "trigger", "scheduled__x", 0),
    )
    assert rest == []


def test_equal_links_read_in_another_order_are_equal() -> None:
    first = RunLinks(consumed=(_event(ORDERS, 1, 1, producer=PRODUCER), _event(USERS, 2, 2)))
    second = RunLinks(consumed=(_event(USERS, 2, 2), _event(ORDERS, 1, 1, producer=PRODUCER)))
    assert first == second
    assert RunLinks().empty and not first.empty


def test_task_run_follows_mapped_upstream_instances_and_external_runs() -> None:
    refs = (
        RunRef(dag_id="d", run_id="r", task_id="each", map_index=1),
        RunRef(dag_id="d", run_id="r", task_id="each", map_index=0),
        RunRef(dag_id="other", run_id="scheduled__2024"),
    )
    facts = TaskRunFacts(
        dag_id="d", task_id="sum", run_id="r", upstream_task_ids=("start",), upstream_runs=refs
    )
    (rel,) = MAPPER.task_run_relationships(facts)
    assert rel.aspect.upstream_instances == (
        MAPPER.task_run_urn("d", "each", "r", 0),
        MAPPER.task_run_urn("d", "each", "r", 1),
        MAPPER.task_run_urn("d", "start", "r"),
        MAPPER.dag_run_urn("other", "scheduled__2024"),
    )
    started = _by_name(MAPPER.task_run_started(facts))["dataProcessInstanceRelationships"]
    assert started == rel.aspect


def test_upstream_ids_keep_their_sorted_order() -> None:
    facts = TaskRunFacts(dag_id="d", task_id="t", run_id="r", upstream_task_ids=("b", "a", "a"))
    (rel,) = MAPPER.task_run_relationships(facts)
    assert rel.aspect.upstream_instances == (
        MAPPER.task_run_urn("d", "a", "r"),
        MAPPER.task_run_urn("d", "b", "r"),
    )


def test_extra_becomes_string_properties() -> None:
    got = extra_properties({"rows": 10, "ok": True, "name": "x", "nested": {"b": 1, "a": [1]}})
    assert got == {"rows": "10", "ok": "true", "name": "x", "nested": '{"a":[1],"b":1}'}
    assert extra_properties(None) == {} == extra_properties(["not", "a", "mapping"])
    assert extra_properties({"skip": None}) == {}
    assert len(extra_properties({"big": "x" * 10_000})["big"]) == MAX_PROPERTY_CHARS


@given(st.dictionaries(st.text(max_size=5), st.recursive(st.none() | st.integers(), st.lists)))
def test_extra_properties_are_always_strings(extra: dict[str, Any]) -> None:
    for key, value in extra_properties(extra).items():
        assert isinstance(key, str)
        assert isinstance(value, str)


def test_map_indexes_followed() -> None:
    assert upstream_map_indexes([2, 0, 1], map_index=-1, same_mapped_group=False) == (0, 1, 2)
    assert upstream_map_indexes([2, 0, 1], map_index=1, same_mapped_group=False) == (0, 1, 2)
    assert upstream_map_indexes([2, 0, 1], map_index=1, same_mapped_group=True) == (1,)
    # not expanded (or expanded to nothing): the unmapped instance
    assert upstream_map_indexes([-1], map_index=0, same_mapped_group=True) == (-1,)


def test_linked_aspects_serialize_as_datahub_expects() -> None:
    links = RunLinks(
        triggered_by=[PRODUCER],
        consumed=[_event(ORDERS, 1_000, 1, properties={"rows": "1"}, producer=PRODUCER)],
    )
    facts = DagRunFacts(dag_id="consumer", run_id=RUN, start_ms=2_000, links=links)
    by_name = _by_name(MAPPER.dag_run_started(facts))
    rel = json.loads(aspect_to_json(by_name["dataProcessInstanceRelationships"]))
    assert rel["upstreamInstances"] == [MAPPER.task_run_urn("producer", "publish", "manual__1")]
    inputs = json.loads(aspect_to_json(by_name["dataProcessInstanceInput"]))
    assert inputs == {
        "inputs": [ORDERS],
        "inputEdges": [
            {
                "destinationUrn": ORDERS,
                "created": {"time": 1_000, "actor": a.DEFAULT_ACTOR},
                "properties": {"rows": "1"},
            }
        ],
    }
