"""The aspects the official plugin sends beside the run record: instance platform, tag status,
dataset operations, owners' source."""

from __future__ import annotations

import json

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.extras import (
    dataset_operation_mcps,
    instance_platform_mcps,
    tag_status_mcps,
    try_operation_mcps,
    with_instance_platform,
)
from datahub_airflow_listener.domain.runs import RunMapper, TaskRunFacts
from datahub_airflow_listener.domain.templates import DataFlow

OUT = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/clean,PROD)"
MODEL = "urn:li:mlModel:(urn:li:dataPlatform:mlflow,churn,PROD)"
FACTS = TaskRunFacts(
    dag_id="etl", task_id="load", run_id="r1", try_number=2, start_ms=1_000, end_ms=5_000
)


def _wire_aspect(mcp: object) -> dict:  # type: ignore[type-arg]
    return json.loads(mcp.to_wire(last_observed=1)["aspect"]["value"])  # type: ignore[attr-defined]


def test_instance_platform_names_airflow_and_the_instance() -> None:
    (mcp,) = instance_platform_mcps("urn:li:dataProcessInstance:abc", "ops")
    assert mcp.aspect_name == "dataPlatformInstance"
    assert _wire_aspect(mcp) == {
        "platform": "urn:li:dataPlatform:airflow",
        "instance": "urn:li:dataPlatformInstance:(urn:li:dataPlatform:airflow,ops)",
    }
    assert instance_platform_mcps("urn:li:dataProcessInstance:abc", None) == []


def test_with_instance_platform_follows_each_instance_start_only() -> None:
    mapper = RunMapper()
    started = mapper.task_run_started(FACTS)
    completed = mapper.task_run_completed(FACTS, "SUCCESS", "success")
    out = with_instance_platform([*started, *completed], "ops")
    names = [m.aspect_name for m in out]
    assert names.count("dataPlatformInstance") == 1
    at = names.index("dataPlatformInstance")
    assert names[at - 1] == "dataProcessInstanceProperties"
    assert out[at].entity_urn == out[at - 1].entity_urn
    assert with_instance_platform(completed, "ops") is completed  # nothing to add: same list
    assert with_instance_platform(started, None) is started


def test_tag_status_once_per_tag_sorted() -> None:
    mcps = tag_status_mcps(["b", "a", "b", "urn:li:tag:c", ""])
    assert [m.entity_urn for m in mcps] == ["urn:li:tag:a", "urn:li:tag:b", "urn:li:tag:c"]
    assert {m.entity_type for m in mcps} == {"tag"}
    assert [_wire_aspect(m) for m in mcps] == [{"removed": False}] * 3


def test_operation_on_each_dataset_written_at_the_given_time() -> None:
    mcps = dataset_operation_mcps([OUT, MODEL, OUT], time_ms=5_000, properties={"k": 1})
    (mcp,) = mcps  # the ML model is not a dataset; the repeat is one
    assert mcp.entity_urn == OUT and mcp.aspect_name == "operation"
    assert _wire_aspect(mcp) == {
        "timestampMillis": 5_000,
        "actor": "urn:li:corpuser:airflow",
        "operationType": "CREATE",
        "sourceType": "DATA_PROCESS",
        "customProperties": {"k": "1"},
        "lastUpdatedTimestamp": 5_000,
    }


def test_try_operations_only_for_a_try_that_succeeded() -> None:
    failed = try_operation_mcps(
        TaskRunFacts(dag_id="etl", task_id="load", run_id="r1", state="failed"),
        [OUT],
        time_ms=1,
    )
    assert failed == []
    (mcp,) = try_operation_mcps(
        TaskRunFacts(dag_id="etl", task_id="load", run_id="r1", try_number=2, state="success"),
        [OUT],
        time_ms=7,
    )
    assert _wire_aspect(mcp)["customProperties"] == {
        "dag_id": "etl",
        "task_id": "load",
        "run_id": "r1",
        "try_number": "2",
    }
    assert mcp.aspect.TIMESERIES


def test_template_owners_carry_their_source() -> None:
    flow = DataFlow(orchestrator="airflow", id="d", env="prod", owners={"alice"})
    (ownership,) = [m for m in flow.generate_mcp() if m.aspect_name == "ownership"]
    assert _wire_aspect(ownership)["owners"] == [
        {"owner": "urn:li:corpuser:alice", "type": "DEVELOPER", "source": {"type": "SERVICE"}}
    ]
    assert ownership.aspect.owners[0].source == a.OwnershipSource(
        type=a.OwnershipSourceType.SERVICE
    )
