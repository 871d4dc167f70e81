"""RunMapper: Airflow DAG runs and task tries -> process-instance MCPs, without Airflow."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.runs import (
    DagRunFacts,
    RunMapper,
    TaskRunFacts,
    dag_run_instance_id,
    task_run_instance_id,
)
from datahub_airflow_listener.domain.urns import (
    make_data_flow_urn,
    make_data_job_urn,
    make_data_process_instance_urn,
)
from tests.unit.domain.domain_strategies import airflow_id, map_index, run_id

RUN = "scheduled__2024-01-01T00:00:00+00:00"
IN = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.raw,PROD)"
OUT = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.clean,PROD)"
MAPPER = RunMapper()


def _dag(**kw: Any) -> DagRunFacts:
    base: dict[str, Any] = {
        "dag_id": "my_dag",
        "run_id": RUN,
        "run_type": "scheduled",
        "start_ms": 1_000,
        "end_ms": 5_000,
    }
    return DagRunFacts(**{**base, **kw})


def _task(**kw: Any) -> TaskRunFacts:
    base: dict[str, Any] = {
        "dag_id": "my_dag",
        "task_id": "extract",
        "run_id": RUN,
        "try_number": 1,
        "start_ms": 2_000,
        "end_ms": 3_000,
    }
    return TaskRunFacts(**{**base, **kw})


def _by_name(mcps: list[MetadataChangeProposal]) -> dict[str, Any]:
    return {x.aspect_name: x.aspect for x in mcps}


# -- DAG runs -----------------------------------------------------------------------------------


def test_dag_run_started_is_a_flow_level_instance() -> None:
    mcps = MAPPER.dag_run_started(_dag(logical_date="2024-01-01T00:00:00+00:00"))
    urn = MAPPER.dag_run_urn("my_dag", RUN)
    assert {x.entity_urn for x in mcps} == {urn}
    assert urn == make_data_process_instance_urn("airflow", "prod", f"@dag_run:my_dag:{RUN}")
    aspects = _by_name(mcps)
    assert list(aspects) == [
        "dataProcessInstanceProperties",
        "dataProcessInstanceRelationships",
        "dataProcessInstanceRunEvent",
    ]
    rel = aspects["dataProcessInstanceRelationships"]
    assert rel.parent_template == "urn:li:dataFlow:(airflow,my_dag,prod)"
    assert rel.parent_instance is None
    props = aspects["dataProcessInstanceProperties"]
    assert props.name == RUN
    assert props.created.time == 1_000
    assert props.type is a.DataProcessType.BATCH_SCHEDULED
    assert props.custom_properties["logical_date"] == "2024-01-01T00:00:00+00:00"
    assert props.custom_properties["run_type"] == "scheduled"
    event = aspects["dataProcessInstanceRunEvent"]
    assert (event.status, event.timestamp_millis, event.attempt) == ("STARTED", 1_000, 1)


def test_dag_run_completed() -> None:
    (mcp,) = MAPPER.dag_run_completed(_dag(state="failed"), "FAILURE")
    assert mcp.entity_urn == MAPPER.dag_run_urn("my_dag", RUN)
    event = mcp.aspect
    assert isinstance(event, a.DataProcessInstanceRunEvent)
    assert event.status is a.DataProcessRunStatus.COMPLETE
    assert event.timestamp_millis == 5_000
    assert event.duration_millis == 4_000
    assert event.result == a.RunResult(type=a.RunResultType.FAILURE, native_result_type="failed")


def test_dag_run_native_result_defaults_to_the_result_in_lower_case() -> None:
    (mcp,) = MAPPER.dag_run_completed(_dag(), "SUCCESS")
    assert mcp.aspect.result.native_result_type == "success"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("run_type", "expected"),
    [
        ("manual", a.DataProcessType.BATCH_AD_HOC),
        ("backfill", a.DataProcessType.BATCH_AD_HOC),
        ("MANUAL", a.DataProcessType.BATCH_AD_HOC),
        ("scheduled", a.DataProcessType.BATCH_SCHEDULED),
        ("asset_triggered", a.DataProcessType.BATCH_SCHEDULED),
        ("dataset_triggered", a.DataProcessType.BATCH_SCHEDULED),
        (None, a.DataProcessType.BATCH_SCHEDULED),
    ],
)
def test_manual_and_backfill_runs_are_ad_hoc(run_type: str | None, expected: Any) -> None:
    dag_props = _by_name(MAPPER.dag_run_started(_dag(run_type=run_type)))
    task_props = _by_name(MAPPER.task_run_started(_task(run_type=run_type)))
    assert dag_props["dataProcessInstanceProperties"].type is expected
    assert task_props["dataProcessInstanceProperties"].type is expected


def test_dag_run_url_is_the_one_the_adapter_built() -> None:
    """UI routes differ between Airflow releases: the adapter builds them, the domain only
    carries them."""
    url = "http://af:8080/dags/my_dag/runs/scheduled__2024-01-01T00%3A00%3A00%2B00%3A00"
    props = _by_name(MAPPER.dag_run_started(_dag(url=url)))
    assert props["dataProcessInstanceProperties"].external_url == url
    assert (
        _by_name(MAPPER.dag_run_started(_dag()))["dataProcessInstanceProperties"].external_url
        is None
    )


# -- task tries -----------------------------------------------------------------------------------


def test_task_run_urn_is_the_official_plugins() -> None:
    # DATAHUB_WIRE.md worked example: history recorded by the widely installed plugin carries over.
    assert MAPPER.task_run_urn("my_dag", "extract", RUN) == (
        "urn:li:dataProcessInstance:4c378e9cb955769d457950caf4c41dfa"
    )


def test_task_run_started_links_template_and_dag_run() -> None:
    facts = _task(
        inlets=(IN,),
        outlets=(OUT,),
        upstream_task_ids=("z_up", "a_up"),
        operator="PythonOperator",
        pool="default_pool",
        url="http://af/ti",
    )
    mcps = MAPPER.task_run_started(facts)
    urn = MAPPER.task_run_urn("my_dag", "extract", RUN)
    assert {x.entity_urn for x in mcps} == {urn}
    aspects = _by_name(mcps)
    assert list(aspects) == [
        "dataProcessInstanceProperties",
        "dataProcessInstanceRelationships",
        "dataProcessInstanceInput",
        "dataProcessInstanceOutput",
        "dataProcessInstanceRunEvent",
    ]
    rel = aspects["dataProcessInstanceRelationships"]
    assert rel.parent_template == make_data_job_urn(
        make_data_flow_urn("airflow", "my_dag", "prod"), "extract"
    )
    assert rel.parent_instance == MAPPER.dag_run_urn("my_dag", RUN)
    assert rel.upstream_instances == (
        MAPPER.task_run_urn("my_dag", "a_up", RUN),
        MAPPER.task_run_urn("my_dag", "z_up", RUN),
    )
    assert aspects["dataProcessInstanceInput"].inputs == (IN,)
    assert [e.destination_urn for e in aspects["dataProcessInstanceInput"].input_edges] == [IN]
    assert aspects["dataProcessInstanceOutput"].outputs == (OUT,)
    props = aspects["dataProcessInstanceProperties"]
    assert props.name == f"my_dag_extract_{RUN}"
    assert props.external_url == "http://af/ti"
    assert props.custom_properties["operator"] == "PythonOperator"
    assert props.custom_properties["try_number"] == "1"
    assert "hostname" not in props.custom_properties  # None is left out
    event = aspects["dataProcessInstanceRunEvent"]
    assert (event.status, event.timestamp_millis, event.attempt) == ("STARTED", 2_000, 1)


def test_task_without_lineage_sends_no_input_or_output() -> None:
    names = [x.aspect_name for x in MAPPER.task_run_started(_task())]
    assert "dataProcessInstanceInput" not in names
    assert "dataProcessInstanceOutput" not in names


@pytest.mark.parametrize("try_number", [1, 2, 7])
def test_attempt_is_the_try_number_on_started_and_complete(try_number: int) -> None:
    facts = _task(try_number=try_number)
    started = _by_name(MAPPER.task_run_started(facts))["dataProcessInstanceRunEvent"]
    (complete,) = MAPPER.task_run_completed(facts, "SUCCESS", "success")
    assert started.attempt == try_number
    assert complete.aspect.attempt == try_number  # type: ignore[attr-defined]


def test_retries_share_the_urn() -> None:
    first = MAPPER.task_run_started(_task(try_number=1))[0].entity_urn
    second = MAPPER.task_run_started(_task(try_number=2))[0].entity_urn
    assert first == second


def test_up_for_retry_result() -> None:
    (mcp,) = MAPPER.task_run_completed(_task(), "UP_FOR_RETRY", "up_for_retry")
    assert mcp.aspect.result == a.RunResult(  # type: ignore[attr-defined]
        type=a.RunResultType.UP_FOR_RETRY, native_result_type="up_for_retry"
    )
    assert mcp.aspect.duration_millis == 1_000  # type: ignore[attr-defined]


@pytest.mark.parametrize("result", ["SUCCESS", "FAILURE", "SKIPPED", "UP_FOR_RETRY"])
def test_all_results_are_accepted(result: str) -> None:
    (mcp,) = MAPPER.task_run_completed(_task(), result, result.lower())
    assert mcp.aspect.result.type.value == result  # type: ignore[attr-defined]


def test_unknown_result_is_refused() -> None:
    with pytest.raises(ValueError, match="RUNNING"):
        MAPPER.task_run_completed(_task(), "RUNNING", "running")


@pytest.mark.parametrize(("start", "end"), [(2_000, 2_000), (2_000, 1_500)])
def test_started_and_complete_never_share_a_timestamp(start: int, end: int) -> None:
    facts = _task(start_ms=start, end_ms=end)
    started = _by_name(MAPPER.task_run_started(facts))["dataProcessInstanceRunEvent"]
    (complete,) = MAPPER.task_run_completed(facts, "SUCCESS", "success")
    assert complete.aspect.timestamp_millis > started.timestamp_millis  # type: ignore[attr-defined]
    assert complete.aspect.duration_millis == 0  # type: ignore[attr-defined]
    dag = _dag(start_ms=start, end_ms=end)
    dag_started = _by_name(MAPPER.dag_run_started(dag))["dataProcessInstanceRunEvent"]
    (dag_complete,) = MAPPER.dag_run_completed(dag, "SUCCESS")
    assert dag_complete.aspect.timestamp_millis > dag_started.timestamp_millis  # type: ignore[attr-defined]


@given(
    start=st.integers(0, 2**41), delta=st.integers(-(2**20), 2**20), try_number=st.integers(1, 50)
)
def test_started_and_complete_never_share_a_timestamp_property(
    start: int, delta: int, try_number: int
) -> None:
    facts = _task(start_ms=start, end_ms=start + delta, try_number=try_number)
    started = MAPPER.task_run_started(facts)[-1].aspect
    (complete,) = MAPPER.task_run_completed(facts, "FAILURE", "failed")
    assert complete.aspect.timestamp_millis != started.timestamp_millis  # type: ignore[attr-defined]
    assert complete.aspect.duration_millis == max(delta, 0)  # type: ignore[attr-defined]


def test_missing_start_time_uses_now() -> None:
    before = int(time.time() * 1000)
    event = _by_name(MAPPER.task_run_started(_task(start_ms=None)))["dataProcessInstanceRunEvent"]
    assert before <= event.timestamp_millis <= int(time.time() * 1000)


def test_mapped_tasks_get_their_own_instances() -> None:
    unmapped = MAPPER.task_run_urn("my_dag", "extract", RUN)
    zero = MAPPER.task_run_urn("my_dag", "extract", RUN, 0)
    one = MAPPER.task_run_urn("my_dag", "extract", RUN, 1)
    assert len({unmapped, zero, one}) == 3
    props = _by_name(MAPPER.task_run_started(_task(map_index=3)))["dataProcessInstanceProperties"]
    assert props.name == f"my_dag_extract_{RUN}[3]"
    assert props.custom_properties["map_index"] == "3"


def test_cluster_and_platform_instance_shape_the_urns() -> None:
    mapper = RunMapper(cluster="dev", platform_instance="ops")
    assert mapper.flow_urn("d") == "urn:li:dataFlow:(airflow,ops.d,dev)"
    assert mapper.job_urn("d", "t") == "urn:li:dataJob:(urn:li:dataFlow:(airflow,ops.d,dev),t)"
    assert mapper.task_run_urn("d", "t", "r") == make_data_process_instance_urn(
        "airflow", "dev", "d_t_r"
    )
    assert mapper.dag_run_urn("d", "r") != MAPPER.dag_run_urn("d", "r")


def test_every_mcp_serializes() -> None:
    mcps = [
        *MAPPER.dag_run_started(_dag(conf_keys=("b", "a"), clear_number=2)),
        *MAPPER.task_run_started(_task(inlets=(IN,), outlets=(OUT,), url="u")),
        *MAPPER.task_run_completed(_task(), "SKIPPED", "skipped"),
        *MAPPER.dag_run_completed(_dag(), "SUCCESS"),
    ]
    for mcp in mcps:
        assert mcp.to_wire(last_observed=1)["aspect"]["value"].startswith("{")
    assert (
        _by_name(mcps[:3])["dataProcessInstanceProperties"].custom_properties["conf_keys"] == "a,b"
    )


# -- identity: a DAG run's instance never equals a task run's -------------------------------------


@given(
    dag_id=airflow_id,
    dag_run=run_id,
    task_dag_id=airflow_id,
    task_id=airflow_id,
    task_run=run_id,
    index=map_index,
)
def test_dag_run_instance_id_never_equals_a_task_run_instance_id(
    *, dag_id: str, dag_run: str, task_dag_id: str, task_id: str, task_run: str, index: int
) -> None:
    dag_instance = dag_run_instance_id(dag_id, dag_run)
    task_instance = task_run_instance_id(task_dag_id, task_id, task_run, index)
    assert dag_instance != task_instance
    assert MAPPER.dag_run_urn(dag_id, dag_run) != MAPPER.task_run_urn(
        task_dag_id, task_id, task_run, index
    )


def test_adversarial_ids_stay_distinct() -> None:
    # A task run whose official-plugin id *looks like* a DAG-run id can't start with '@'.
    assert dag_run_instance_id("d", "r") == "@dag_run:d:r"
    assert task_run_instance_id("d", "t", "@dag_run:d:r") != dag_run_instance_id("d", "r")
    assert task_run_instance_id("d", "t", "r", 0) != dag_run_instance_id("d", "t:0:r")


@given(a1=airflow_id, r1=run_id, a2=airflow_id, r2=run_id)
def test_dag_run_ids_are_distinct_for_distinct_runs(a1: str, r1: str, a2: str, r2: str) -> None:
    assume((a1, r1) != (a2, r2))
    assert dag_run_instance_id(a1, r1) != dag_run_instance_id(a2, r2)


@given(d=airflow_id, t=airflow_id, r=run_id, i=st.integers(0, 1000), j=st.integers(0, 1000))
def test_mapped_task_ids_are_distinct_per_map_index(d: str, t: str, r: str, i: int, j: int) -> None:
    assume(i != j)
    assert task_run_instance_id(d, t, r, i) != task_run_instance_id(d, t, r, j)
    assert task_run_instance_id(d, t, r, i) != task_run_instance_id(d, t, r, -1)


def test_unmapped_task_ids_keep_the_official_plugins_known_ambiguity() -> None:
    """Documented, not fixed: the official form ``{dag}_{task}_{run}`` is kept so history carries
    over, and it is ambiguous when ids contain ``_`` (both give ``a_b_c_r``)."""
    assert task_run_instance_id("a_b", "c", "r") == task_run_instance_id("a", "b_c", "r")


def test_long_values_give_valid_mcps_or_the_typed_error() -> None:
    from datahub_airflow_listener.domain.errors import InvalidUrnError
    from datahub_airflow_listener.domain.mcp import from_wire

    long_run = "r" * 10_000
    mcps = MAPPER.task_run_started(_task(run_id=long_run))
    assert all(from_wire(x.to_wire(last_observed=1)) == x for x in mcps)
    name = _by_name(mcps)["dataProcessInstanceProperties"].name
    assert name.endswith(long_run)  # kept whole, never truncated
    with pytest.raises(InvalidUrnError) as info:
        MAPPER.task_run_started(_task(dag_id="d" * 10_000))
    assert info.value.field == "flow_id"
    with pytest.raises(InvalidUrnError) as info:
        MAPPER.task_run_started(_task(task_id="t" * 10_000))
    assert info.value.field == "job_id"
