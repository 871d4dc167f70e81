"""The Python examples of the seed document (dataProcessInstance.md), runnable against either SDK.

Each scenario is the seed's example with three changes only, so both this package and
acryl-datahub can run it and their MCPs can be compared: the names come from an :class:`Sdk`
namespace instead of imports, the emitter is a capturing one instead of a REST emitter, and
``int(time.time() * 1000)`` / ``time.sleep`` are replaced by a deterministic clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

START_MS = 1_705_312_800_000  # 2024-01-15T10:00:00Z


@dataclass(frozen=True)
class Sdk:
    name: str
    DataProcessInstance: Any
    InstanceRunResult: Any
    DataProcessTypeClass: Any
    DataFlow: Any
    DataJob: Any
    ContainerKey: Any
    DatasetUrn: Any
    DataJobUrn: Any
    # The seed builds its ML-model outlet with DatasetUrn.create_from_string, which
    # acryl-datahub 1.7 itself refuses (a mlModel urn is not a dataset urn); we accept it.
    ModelOutletUrn: Any


def ours() -> Sdk:
    from datahub_airflow_listener.domain import instance, templates, urns

    return Sdk(
        name="ours",
        DataProcessInstance=instance.DataProcessInstance,
        InstanceRunResult=instance.InstanceRunResult,
        DataProcessTypeClass=instance.DataProcessTypeClass,
        DataFlow=templates.DataFlow,
        DataJob=templates.DataJob,
        ContainerKey=instance.ContainerKey,
        DatasetUrn=urns.DatasetUrn,
        DataJobUrn=urns.DataJobUrn,
        ModelOutletUrn=urns.DatasetUrn,
    )


def acryl() -> Sdk:
    from datahub.api.entities.datajob import DataFlow, DataJob
    from datahub.api.entities.dataprocess.dataprocess_instance import (
        DataProcessInstance,
        InstanceRunResult,
    )
    from datahub.emitter.mcp_builder import ContainerKey
    from datahub.metadata.schema_classes import DataProcessTypeClass
    from datahub.utilities.urns.data_job_urn import DataJobUrn
    from datahub.utilities.urns.dataset_urn import DatasetUrn
    from datahub.utilities.urns.urn import Urn

    return Sdk(
        name="acryl",
        DataProcessInstance=DataProcessInstance,
        InstanceRunResult=InstanceRunResult,
        DataProcessTypeClass=DataProcessTypeClass,
        DataFlow=DataFlow,
        DataJob=DataJob,
        ContainerKey=ContainerKey,
        DatasetUrn=DatasetUrn,
        DataJobUrn=DataJobUrn,
        ModelOutletUrn=Urn,
    )


class CaptureEmitter:
    """Collects what a scenario emits, in order (only ``emit``, like DataHub's emitters)."""

    def __init__(self) -> None:
        self.mcps: list[Any] = []

    def emit(self, mcp: Any, callback: Any = None) -> None:
        self.mcps.append(mcp)


def _clock() -> Callable[[], int]:
    ticks: Iterator[int] = itertools.count(START_MS, 1000)
    return lambda: next(ticks)


def simple(sdk: Sdk, emitter: CaptureEmitter) -> None:
    now = _clock()
    parent_job_urn = sdk.DataJobUrn.create_from_string(
        "urn:li:dataJob:(urn:li:dataFlow:(airflow,sales_pipeline,prod),process_sales_data)"
    )
    instance = sdk.DataProcessInstance(
        id="scheduled__2024-01-15T10:00:00+00:00",
        orchestrator="airflow",
        cluster="prod",
        template_urn=parent_job_urn,
        type=sdk.DataProcessTypeClass.BATCH_SCHEDULED,
        properties={
            "airflow_version": "2.7.0",
            "executor": "CeleryExecutor",
            "pool": "default_pool",
        },
        url="https://airflow.company.com/dags/sales_pipeline/grid?dag_run_id=scheduled__2024-01-15T10:00:00+00:00&task_id=process_sales_data",
        inlets=[
            sdk.DatasetUrn.create_from_string(
                "urn:li:dataset:(urn:li:dataPlatform:postgres,sales_db.raw_orders,PROD)"
            )
        ],
        outlets=[
            sdk.DatasetUrn.create_from_string(
                "urn:li:dataset:(urn:li:dataPlatform:postgres,sales_db.processed_orders,PROD)"
            )
        ],
    )
    start_time = now()
    instance.emit_process_start(
        emitter=emitter,
        start_timestamp_millis=start_time,
        attempt=1,
        emit_template=True,
        materialize_iolets=True,
    )
    end_time = now()
    instance.emit_process_end(
        emitter=emitter,
        end_timestamp_millis=end_time,
        result=sdk.InstanceRunResult.SUCCESS,
        result_type="airflow",
        attempt=1,
        start_timestamp_millis=start_time,
    )


def retry(sdk: Sdk, emitter: CaptureEmitter) -> None:
    now = _clock()
    parent_job_urn = sdk.DataJobUrn.create_from_string(
        "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl_pipeline,prod),load_customer_data)"
    )
    instance = sdk.DataProcessInstance(
        id="scheduled__2024-01-15T14:30:00+00:00",
        orchestrator="airflow",
        cluster="prod",
        template_urn=parent_job_urn,
        type=sdk.DataProcessTypeClass.BATCH_SCHEDULED,
        inlets=[
            sdk.DatasetUrn.create_from_string(
                "urn:li:dataset:(urn:li:dataPlatform:s3,customer_exports,PROD)"
            )
        ],
        outlets=[
            sdk.DatasetUrn.create_from_string(
                "urn:li:dataset:(urn:li:dataPlatform:snowflake,analytics.customers,PROD)"
            )
        ],
    )
    start_time_attempt1 = now()
    instance.emit_process_start(
        emitter=emitter,
        start_timestamp_millis=start_time_attempt1,
        attempt=1,
        emit_template=True,
        materialize_iolets=True,
    )
    end_time_attempt1 = now()
    instance.emit_process_end(
        emitter=emitter,
        end_timestamp_millis=end_time_attempt1,
        result=sdk.InstanceRunResult.UP_FOR_RETRY,
        result_type="airflow",
        attempt=1,
        start_timestamp_millis=start_time_attempt1,
    )
    start_time_attempt2 = now()
    instance.emit_process_start(
        emitter=emitter,
        start_timestamp_millis=start_time_attempt2,
        attempt=2,
        emit_template=False,
        materialize_iolets=False,
    )
    end_time_attempt2 = now()
    instance.emit_process_end(
        emitter=emitter,
        end_timestamp_millis=end_time_attempt2,
        result=sdk.InstanceRunResult.SUCCESS,
        result_type="airflow",
        attempt=2,
        start_timestamp_millis=start_time_attempt2,
    )


def from_dataflow(sdk: Sdk, emitter: CaptureEmitter) -> None:
    now = _clock()
    dataflow = sdk.DataFlow(
        orchestrator="airflow",
        id="daily_reporting_pipeline",
        env="prod",
        description="Daily reporting pipeline that aggregates metrics",
    )
    dag_run_instance = sdk.DataProcessInstance.from_dataflow(
        dataflow=dataflow, id="scheduled__2024-01-15T00:00:00+00:00"
    )
    dag_run_instance.properties = {
        "execution_date": "2024-01-15",
        "run_type": "scheduled",
        "external_trigger": "false",
    }
    dag_run_instance.url = "https://airflow.company.com/dags/daily_reporting_pipeline/grid?dag_run_id=scheduled__2024-01-15T00:00:00+00:00"
    start_time = now()
    dag_run_instance.emit_process_start(
        emitter=emitter,
        start_timestamp_millis=start_time,
        attempt=1,
        emit_template=True,
        materialize_iolets=True,
    )
    end_time = now()
    dag_run_instance.emit_process_end(
        emitter=emitter,
        end_timestamp_millis=end_time,
        result=sdk.InstanceRunResult.SUCCESS,
        result_type="airflow",
        attempt=1,
        start_timestamp_millis=start_time,
    )


def hierarchical(sdk: Sdk, emitter: CaptureEmitter) -> None:
    now = _clock()
    dataflow = sdk.DataFlow(
        orchestrator="airflow",
        id="etl_pipeline",
        env="prod",
        description="ETL pipeline with multiple tasks",
    )
    extract_job = sdk.DataJob(
        id="extract_data",
        flow_urn=dataflow.urn,
        description="Extract data from source",
    )
    dag_run_id = "scheduled__2024-01-15T12:00:00+00:00"
    dag_run_instance = sdk.DataProcessInstance.from_dataflow(dataflow=dataflow, id=dag_run_id)
    dag_start_time = now()
    dag_run_instance.emit_process_start(
        emitter=emitter,
        start_timestamp_millis=dag_start_time,
        attempt=1,
        emit_template=True,
        materialize_iolets=False,
    )
    extract_instance = sdk.DataProcessInstance.from_datajob(
        datajob=extract_job,
        id=f"{dag_run_id}__extract_data",
    )
    extract_instance.parent_instance = dag_run_instance.urn
    extract_instance.inlets = [
        sdk.DatasetUrn.create_from_string(
            "urn:li:dataset:(urn:li:dataPlatform:postgres,raw_db.orders,PROD)"
        )
    ]
    extract_instance.outlets = [
        sdk.DatasetUrn.create_from_string(
            "urn:li:dataset:(urn:li:dataPlatform:s3,staging/orders,PROD)"
        )
    ]
    extract_start_time = now()
    extract_instance.emit_process_start(
        emitter=emitter,
        start_timestamp_millis=extract_start_time,
        attempt=1,
        emit_template=True,
        materialize_iolets=True,
    )
    extract_end_time = now()
    extract_instance.emit_process_end(
        emitter=emitter,
        end_timestamp_millis=extract_end_time,
        result=sdk.InstanceRunResult.SUCCESS,
        attempt=1,
        start_timestamp_millis=extract_start_time,
    )
    dag_end_time = now()
    dag_run_instance.emit_process_end(
        emitter=emitter,
        end_timestamp_millis=dag_end_time,
        result=sdk.InstanceRunResult.SUCCESS,
        attempt=1,
        start_timestamp_millis=dag_start_time,
    )


def ml_training(sdk: Sdk, emitter: CaptureEmitter) -> None:
    now = _clock()
    experiment_container = sdk.ContainerKey(
        platform="urn:li:dataPlatform:mlflow", name="customer_churn_experiment", env="PROD"
    )
    training_run = sdk.DataProcessInstance.from_container(
        container_key=experiment_container, id="run_abc123def456"
    )
    training_run.type = sdk.DataProcessTypeClass.BATCH_AD_HOC
    training_run.properties = {
        "model_type": "RandomForestClassifier",
        "hyperparameters": "n_estimators=100,max_depth=10",
        "framework": "scikit-learn",
        "framework_version": "1.3.0",
    }
    training_run.url = "https://mlflow.company.com/experiments/5/runs/abc123def456"
    training_run.inlets = [
        sdk.DatasetUrn.create_from_string(
            "urn:li:dataset:(urn:li:dataPlatform:snowflake,ml.training_data,PROD)"
        )
    ]
    training_run.outlets = [
        sdk.ModelOutletUrn.create_from_string(
            "urn:li:mlModel:(urn:li:dataPlatform:mlflow,customer_churn_model_v2,PROD)"
        )
    ]
    start_time = now()
    training_run.emit_process_start(
        emitter=emitter,
        start_timestamp_millis=start_time,
        attempt=1,
        emit_template=False,
        materialize_iolets=True,
    )
    end_time = now()
    training_run.emit_process_end(
        emitter=emitter,
        end_timestamp_millis=end_time,
        result=sdk.InstanceRunResult.SUCCESS,
        result_type="mlflow",
        attempt=1,
        start_timestamp_millis=start_time,
    )


SCENARIOS: dict[str, Callable[[Sdk, CaptureEmitter], None]] = {
    "simple": simple,
    "retry": retry,
    "from_dataflow": from_dataflow,
    "hierarchical": hierarchical,
    "ml_training": ml_training,
}


def run(name: str, sdk: Sdk) -> list[Any]:
    emitter = CaptureEmitter()
    SCENARIOS[name](sdk, emitter)
    return emitter.mcps
