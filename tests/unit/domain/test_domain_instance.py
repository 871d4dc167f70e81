"""The seed's process-instance API (DataProcessInstance and friends), pure and without Airflow."""

from __future__ import annotations

from typing import Any

import pytest

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.errors import InvalidUrnError
from datahub_airflow_listener.domain.instance import (
    ContainerKey,
    DataProcessInstance,
    DataProcessTypeClass,
    InstanceRunResult,
)
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.templates import DataFlow, DataJob
from datahub_airflow_listener.domain.urns import (
    DataJobUrn,
    DatasetUrn,
    datahub_guid,
    make_data_process_instance_urn,
)

JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,sales,prod),process)"
IN = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.raw,PROD)"
OUT = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.clean,PROD)"
MODEL = "urn:li:mlModel:(urn:li:dataPlatform:mlflow,churn,PROD)"
T0 = 1_705_312_800_000


class Recorder:
    def __init__(self) -> None:
        self.mcps: list[MetadataChangeProposal] = []

    def emit(self, mcp: MetadataChangeProposal, callback: Any = None) -> None:
        self.mcps.append(mcp)


class BatchRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def emit_mcps(self, mcps: list[MetadataChangeProposal]) -> None:
        self.batches.append(len(mcps))
        self.mcps.extend(mcps)


def _names(mcps: list[MetadataChangeProposal]) -> list[tuple[str, str]]:
    return [(x.entity_urn.split(":")[2], x.aspect_name) for x in mcps]


def _instance(**kw: Any) -> DataProcessInstance:
    base: dict[str, Any] = {
        "id": "scheduled__2024-01-15T10:00:00+00:00",
        "orchestrator": "airflow",
        "cluster": "prod",
        "template_urn": DataJobUrn.create_from_string(JOB),
    }
    return DataProcessInstance(**{**base, **kw})


def test_urn_is_derived_from_orchestrator_cluster_and_id() -> None:
    inst = _instance()
    assert str(inst.urn) == make_data_process_instance_urn("airflow", "prod", inst.id)
    inst.id = "other"
    assert str(inst.urn) == make_data_process_instance_urn("airflow", "prod", "other")


def test_start_mcps_in_order() -> None:
    inst = _instance(
        inlets=[DatasetUrn.create_from_string(IN)],
        outlets=[OUT],
        properties={"executor": "CeleryExecutor"},
        url="http://af",
    )
    mcps = inst.start_mcps(T0, attempt=1, emit_template=True, materialize_iolets=True)
    assert _names(mcps) == [
        ("dataJob", "dataJobInfo"),
        ("dataJob", "status"),
        ("dataJob", "browsePathsV2"),
        ("dataJob", "dataJobInputOutput"),
        ("dataProcessInstance", "dataProcessInstanceProperties"),
        ("dataProcessInstance", "dataProcessInstanceRelationships"),
        ("dataProcessInstance", "dataProcessInstanceInput"),
        ("dataProcessInstance", "dataProcessInstanceOutput"),
        ("dataset", "datasetKey"),
        ("dataset", "datasetKey"),
        ("dataProcessInstance", "dataProcessInstanceRunEvent"),
    ]
    props = mcps[4].aspect
    assert isinstance(props, a.DataProcessInstanceProperties)
    assert props.name == inst.id
    assert props.created == a.AuditStamp(time=T0, actor="urn:li:corpuser:datahub")
    assert props.type is a.DataProcessType.BATCH_SCHEDULED
    assert props.custom_properties == {"executor": "CeleryExecutor"}
    assert props.external_url == "http://af"
    assert mcps[5].aspect == a.DataProcessInstanceRelationships(parent_template=JOB)
    assert mcps[8].entity_urn == IN
    assert mcps[8].aspect == a.DatasetKey(
        platform="urn:li:dataPlatform:postgres", name="db.raw", origin="PROD"
    )
    event = mcps[-1].aspect
    assert event == a.DataProcessInstanceRunEvent(
        timestamp_millis=T0, status=a.DataProcessRunStatus.STARTED, attempt=1
    )


def test_start_without_template_or_materialization() -> None:
    inst = _instance(inlets=[IN])
    names = _names(inst.start_mcps(T0, attempt=2, emit_template=False, materialize_iolets=False))
    assert names == [
        ("dataProcessInstance", "dataProcessInstanceProperties"),
        ("dataProcessInstance", "dataProcessInstanceRelationships"),
        ("dataProcessInstance", "dataProcessInstanceInput"),
        ("dataProcessInstance", "dataProcessInstanceRunEvent"),
    ]


def test_no_process_instance_mcp_carries_browse_paths() -> None:
    inst = DataProcessInstance.from_dataflow(
        DataFlow(orchestrator="airflow", id="d", env="prod", platform_instance="ops"), "r"
    )
    mcps = [*inst.start_mcps(T0, 1), *inst.end_mcps(T0 + 5, InstanceRunResult.SUCCESS)]
    dpi = [x for x in mcps if x.entity_type == "dataProcessInstance"]
    assert dpi
    assert all(x.aspect_name != "browsePathsV2" for x in dpi)
    assert any(x.aspect_name == "browsePathsV2" for x in mcps if x.entity_type == "dataFlow")


def test_end_event_with_duration() -> None:
    (mcp,) = _instance().end_mcps(
        T0 + 4321, InstanceRunResult.SUCCESS, "airflow", attempt=1, start_timestamp_millis=T0
    )
    assert mcp.aspect == a.DataProcessInstanceRunEvent(
        timestamp_millis=T0 + 4321,
        status=a.DataProcessRunStatus.COMPLETE,
        attempt=1,
        result=a.RunResult(type=a.RunResultType.SUCCESS, native_result_type="airflow"),
        duration_millis=4321,
    )


def test_end_event_native_result_defaults_to_orchestrator_and_start_to_the_last_start() -> None:
    inst = _instance(orchestrator="spark")
    inst.start_event_mcp(T0, attempt=1)
    (mcp,) = inst.end_event_mcp(T0 + 10, "FAILURE")
    assert mcp.aspect.result == a.RunResult(  # type: ignore[attr-defined]
        type=a.RunResultType.FAILURE, native_result_type="spark"
    )
    assert mcp.aspect.duration_millis == 10  # type: ignore[attr-defined]


def test_end_without_any_start_has_no_duration() -> None:
    (mcp,) = _instance().end_mcps(T0, InstanceRunResult.SKIPPED)
    assert mcp.aspect.duration_millis is None  # type: ignore[attr-defined]
    assert mcp.aspect.timestamp_millis == T0  # type: ignore[attr-defined]


@pytest.mark.parametrize("end", [T0, T0 - 50])
def test_start_and_complete_never_share_a_timestamp(end: int) -> None:
    inst = _instance()
    (started,) = inst.start_event_mcp(T0, attempt=1)
    (complete,) = inst.end_event_mcp(end, InstanceRunResult.SUCCESS, start_timestamp_millis=T0)
    assert complete.aspect.timestamp_millis == T0 + 1  # type: ignore[attr-defined]
    assert started.aspect.timestamp_millis == T0  # type: ignore[attr-defined]
    assert complete.aspect.duration_millis == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("result", list(InstanceRunResult))
def test_every_result(result: InstanceRunResult) -> None:
    (mcp,) = _instance().end_mcps(T0, result, start_timestamp_millis=T0 - 1)
    assert mcp.aspect.result.type.value == result.value  # type: ignore[attr-defined]


def test_unknown_result_is_refused() -> None:
    with pytest.raises(ValueError, match="BROKEN"):
        _instance().end_mcps(T0, "BROKEN")


def test_retry_attempts_share_the_urn_and_carry_their_attempt() -> None:
    inst = _instance()
    rec = Recorder()
    inst.emit_process_start(rec, T0, attempt=1)
    inst.emit_process_end(rec, T0 + 1000, InstanceRunResult.UP_FOR_RETRY, "airflow", 1, T0)
    inst.emit_process_start(rec, T0 + 2000, attempt=2, emit_template=False)
    inst.emit_process_end(rec, T0 + 3000, InstanceRunResult.SUCCESS, "airflow", 2, T0 + 2000)
    events = [x for x in rec.mcps if x.aspect_name == "dataProcessInstanceRunEvent"]
    assert {x.entity_urn for x in events} == {str(inst.urn)}
    summary = [
        (e.aspect.status.value, e.aspect.attempt, e.aspect.result and e.aspect.result.type.value)  # type: ignore[attr-defined]
        for e in events
    ]
    assert summary == [
        ("STARTED", 1, None),
        ("COMPLETE", 1, "UP_FOR_RETRY"),
        ("STARTED", 2, None),
        ("COMPLETE", 2, "SUCCESS"),
    ]
    assert len({e.aspect.timestamp_millis for e in events}) == 4  # type: ignore[attr-defined]


def test_emit_uses_batches_when_the_emitter_has_them() -> None:
    rec = BatchRecorder()
    _instance().emit_process_start(rec, T0, attempt=1)
    assert len(rec.batches) == 1
    assert rec.batches[0] == len(rec.mcps) > 3


def test_from_dataflow() -> None:
    flow = DataFlow(orchestrator="airflow", id="daily", env="prod", description="d")
    inst = DataProcessInstance.from_dataflow(dataflow=flow, id="scheduled__x")
    assert inst.cluster == "prod"
    assert str(inst.template_urn) == "urn:li:dataFlow:(airflow,daily,prod)"
    names = _names(inst.start_mcps(T0, 1))
    assert names[:3] == [
        ("dataFlow", "dataFlowInfo"),
        ("dataFlow", "status"),
        ("dataFlow", "browsePathsV2"),
    ]
    rel = next(x for x in inst.start_mcps(T0, 1) if x.aspect_name.endswith("Relationships"))
    assert rel.aspect.parent_template == "urn:li:dataFlow:(airflow,daily,prod)"  # type: ignore[attr-defined]


def test_from_datajob_and_parent_instance() -> None:
    flow = DataFlow(orchestrator="airflow", id="etl", env="prod")
    job = DataJob(id="extract", flow_urn=flow.urn, inlets=[IN], outlets=[OUT])
    dag_run = DataProcessInstance.from_dataflow(flow, "run1")
    task = DataProcessInstance.from_datajob(job, "run1__extract", clone_inlets=True)
    task.parent_instance = dag_run.urn
    task.upstream_urns = [make_data_process_instance_urn("airflow", "prod", "up")]
    assert (task.orchestrator, task.cluster) == ("airflow", "prod")
    assert task.inlets == [IN]
    assert task.outlets == []
    mcps = task.start_mcps(T0, 1, emit_template=True, materialize_iolets=False)
    rel = next(x.aspect for x in mcps if x.aspect_name == "dataProcessInstanceRelationships")
    assert rel == a.DataProcessInstanceRelationships(
        parent_template=str(job.urn),
        parent_instance=str(dag_run.urn),
        upstream_instances=(make_data_process_instance_urn("airflow", "prod", "up"),),
    )
    # The job template is emitted without materializing its iolets.
    assert not any(x.aspect_name == "datasetKey" for x in mcps)


def test_template_from_a_bare_urn() -> None:
    names = _names(_instance(template_urn=JOB).template_mcps())
    assert ("dataJob", "dataJobInfo") in names
    flow_names = _names(_instance(template_urn="urn:li:dataFlow:(airflow,d,prod)").template_mcps())
    assert flow_names[0] == ("dataFlow", "dataFlowInfo")
    assert _instance(template_urn=None).template_mcps() == []


def test_from_container_keeps_the_container_name_in_its_key() -> None:
    key = ContainerKey(platform="urn:li:dataPlatform:mlflow", name="churn_exp", env="PROD")
    inst = DataProcessInstance.from_container(container_key=key, id="run_1")
    inst.type = DataProcessTypeClass.BATCH_AD_HOC
    inst.outlets = [MODEL]
    assert inst.orchestrator == "mlflow"
    assert inst.template_urn is None
    expected_guid = datahub_guid({"platform": "urn:li:dataPlatform:mlflow", "name": "churn_exp"})
    assert inst.container_urn == f"urn:li:container:{expected_guid}"
    other = ContainerKey(platform="urn:li:dataPlatform:mlflow", name="another", env="PROD")
    assert other.as_urn() != key.as_urn()
    mcps = inst.start_mcps(T0, 1, emit_template=False, materialize_iolets=True)
    by = {x.aspect_name: x for x in mcps}
    assert by["container"].aspect == a.Container(container=inst.container_urn)
    assert by["dataProcessInstanceProperties"].aspect.type is a.DataProcessType.BATCH_AD_HOC  # type: ignore[attr-defined]
    assert by["mlModelKey"].entity_urn == MODEL
    assert by["mlModelKey"].aspect == a.MlModelKey(
        platform="urn:li:dataPlatform:mlflow", name="churn", origin="PROD"
    )
    assert by["dataProcessInstanceRelationships"].aspect == a.DataProcessInstanceRelationships()


def test_platform_instance_and_subtype() -> None:
    inst = _instance(data_platform_instance="ops", subtype="Training Run")
    by = {x.aspect_name: x.aspect for x in inst.generate_mcp(T0)}
    assert by["dataPlatformInstance"] == a.DataPlatformInstance(
        platform="urn:li:dataPlatform:airflow",
        instance="urn:li:dataPlatformInstance:(urn:li:dataPlatform:airflow,ops)",
    )
    assert by["subTypes"] == a.SubTypes(type_names=("Training Run",))


def test_bad_lineage_urns_are_refused_with_the_field() -> None:
    with pytest.raises(InvalidUrnError):
        _instance(inlets=["not a urn"]).start_mcps(T0, 1)
    with pytest.raises(InvalidUrnError) as info:
        _instance(inlets=[42]).start_mcps(T0, 1)
    assert info.value.field == "inlets"


def test_unknown_process_type_is_refused() -> None:
    with pytest.raises(ValueError, match="NIGHTLY"):
        _instance(type="NIGHTLY").generate_mcp(T0)
