"""Every kind of MCP this package produces, grouped by scenario, for the oracle to check."""

from __future__ import annotations

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.extras import (
    dataset_operation_mcps,
    tag_status_mcps,
    try_operation_mcps,
    with_instance_platform,
)
from datahub_airflow_listener.domain.instance import ContainerKey, DataProcessInstance
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.openlineage import (
    column_lineage,
    ol_dataset_urn,
    parse_connections,
)
from datahub_airflow_listener.domain.runs import DagRunFacts, RunMapper, TaskRunFacts
from datahub_airflow_listener.domain.templates import DataFlow, DataJob
from tests.compat import seed_scenarios

IN = "urn:li:dataset:(urn:li:dataPlatform:postgres,sales_db.raw_orders,PROD)"
OUT = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/clean%2Corders,PROD)"
MODEL = "urn:li:mlModel:(urn:li:dataPlatform:mlflow,churn,PROD)"
UP_JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),extract)"
AWKWARD_RUN = "manual__2024-01-15T10:00:00+00:00 (re-run, ünïcødé ␟ 名前)"


def _run_mapper(
    mapper: RunMapper, dag_id: str, task_id: str, run_id: str
) -> list[MetadataChangeProposal]:
    dag = DagRunFacts(
        dag_id=dag_id,
        run_id=run_id,
        run_type="manual",
        logical_date="2024-01-15T10:00:00+00:00",
        data_interval_start="2024-01-15T10:00:00+00:00",
        data_interval_end="2024-01-16T10:00:00+00:00",
        conf_keys=("b", "a"),
        clear_number=1,
        airflow_version="3.3.2",
        start_ms=1_705_312_800_000,
        end_ms=1_705_312_900_000,
        state="success",
        url="http://airflow.example.com:8080/dags/sales_pipeline/runs/scheduled__x",
    )
    out = mapper.dag_run_started(dag)
    for try_number, result in ((1, "UP_FOR_RETRY"), (2, "SUCCESS")):
        facts = TaskRunFacts(
            dag_id=dag_id,
            task_id=task_id,
            run_id=run_id,
            try_number=try_number,
            max_tries=3,
            state=result.lower(),
            operator="PythonOperator",
            pool="default_pool",
            queue="default",
            executor="CeleryExecutor",
            hostname="worker-1",
            start_ms=1_705_312_810_000 + try_number * 10_000,
            end_ms=1_705_312_815_000 + try_number * 10_000,
            upstream_task_ids=("extract",),
            inlets=(IN,),
            outlets=(OUT, MODEL),
            url="http://airflow.example.com:8080/dags/d/grid?task_id=t",
            run_type="manual",
        )
        out += mapper.task_run_started(facts)
        out += mapper.task_run_completed(facts, result, result.lower())
    mapped = TaskRunFacts(
        dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=4, try_number=1,
        start_ms=1_705_312_850_000, end_ms=1_705_312_850_000,
    )  # fmt: skip
    out += mapper.task_run_started(mapped)
    out += mapper.task_run_completed(mapped, "SKIPPED", "skipped")
    out += mapper.dag_run_completed(dag, "FAILURE")
    return out


def _templates() -> list[MetadataChangeProposal]:
    flow = DataFlow(
        orchestrator="airflow",
        id="sales(eu),daily",
        env="prod",
        name="Sales \u2013 daily",
        description="Daily sales ✓",
        properties={"schedule": "@daily", "fileloc": "/dags/sales.py"},
        url="http://airflow.example.com/dags/sales",
        owners={"alice", "bob@example.com"},
        group_owners={"data-eng"},
        tags={"pii", "tier,1"},
        platform_instance="ops",
    )
    job = DataJob(
        id="load,orders",
        flow_urn=flow.urn,
        name="load orders",
        description="Load",
        type="PYTHON",
        properties={"operator": "PythonOperator"},
        url="http://airflow.example.com/dags/sales/tasks/load",
        owners={"alice"},
        tags={"pii"},
        inlets=[IN],
        outlets=[OUT, MODEL],
        upstream_urns=[UP_JOB],
        platform_instance="ops",
    )
    plain = DataFlow(orchestrator="airflow", id="plain", cluster="eu-west")
    return [*flow.generate_mcp(), *job.generate_mcp(), *plain.generate_mcp()]


def _instance_extras() -> list[MetadataChangeProposal]:
    """Optional process-instance aspects the seed's examples do not reach."""
    key = ContainerKey(platform="urn:li:dataPlatform:mlflow", name="exp", instance="eu")
    run = DataProcessInstance.from_container(key, "run (1), ü")
    run.subtype = "ML Training Run"
    run.data_platform_instance = "eu"
    run.parent_instance = "urn:li:dataProcessInstance:3b554376399927fc165c8e4325700faf"
    run.upstream_urns = ["urn:li:dataProcessInstance:4c378e9cb955769d457950caf4c41dfa"]
    run.inlets = [IN]
    run.outlets = [MODEL]
    return [
        *run.start_mcps(1_705_312_800_000, attempt=3),
        *run.end_mcps(1_705_312_800_000, "FAILURE", "failed", 3, 1_705_312_800_000),
    ]


def _column_lineage() -> list[MetadataChangeProposal]:
    """A job's column lineage and SQL, its datasets named from OpenLineage identities."""
    connections, _ = parse_connections({"snowflake://acct": {"platform_instance": "sf"}})
    pg = "postgres://db.example.com:5432"
    source, _ = ol_dataset_urn(pg, "sales.public.orders")
    target, _ = ol_dataset_urn("snowflake://acct", "DB.PUBLIC.CLEAN", connections=connections)
    fine = column_lineage(
        target,
        {
            "AMOUNT": [(pg, "sales.public.orders", "amount"), (pg, "sales.public.orders", "fx")],
            "ID (x, y)": [(pg, "sales.public.orders", "id")],
        },
        connections=connections,
    )
    whole = a.FineGrainedLineage(
        upstream_type=a.FineGrainedLineageUpstreamType.DATASET,
        upstreams=(source,),
        downstream_type=a.FineGrainedLineageDownstreamType.FIELD_SET,
        downstreams=fine[0].downstreams,
        transform_operation="COPY",
        confidence_score=0.5,
        query="urn:li:query:load_clean",
    )
    io = a.DataJobInputOutput(
        input_datasets=(source,), output_datasets=(target,), fine_grained_lineages=(*fine, whole)
    )
    logic = a.DataTransformLogic(
        transforms=(
            a.DataTransform(
                query_statement=a.QueryStatement(value="INSERT INTO clean SELECT * FROM orders")
            ),
            a.DataTransform(
                query_statement=a.QueryStatement(value="CALL x()", language=a.QueryLanguage.UNKNOWN)
            ),
            a.DataTransform(),
        )
    )
    return [MetadataChangeProposal(entity_urn=UP_JOB, aspect=x) for x in (io, logic)]


def _official_extras() -> list[MetadataChangeProposal]:
    """What the official plugin sends beside the run record: instance platform, tag status,
    operations on the datasets a try wrote."""
    mapper = RunMapper(cluster="prod", platform_instance="ops")
    facts = TaskRunFacts(
        dag_id="etl", task_id="load", run_id="r1", map_index=3, state="success", start_ms=1
    )
    started = with_instance_platform(mapper.task_run_started(facts), "ops")
    return [
        *started,
        *tag_status_mcps(["pii", "finance team"]),
        *try_operation_mcps(facts, [OUT, MODEL], time_ms=1_705_312_815_000),
        *dataset_operation_mcps([IN], time_ms=1, operation_type=a.OperationType.INSERT),
    ]


def cases() -> dict[str, list[MetadataChangeProposal]]:
    out: dict[str, list[MetadataChangeProposal]] = {
        f"seed:{name}": seed_scenarios.run(name, seed_scenarios.ours())
        for name in seed_scenarios.SCENARIOS
    }
    out["run_mapper"] = _run_mapper(RunMapper(), "sales_pipeline", "process_sales", "scheduled__x")
    out["run_mapper:awkward"] = _run_mapper(
        RunMapper(cluster="Prod-EU", platform_instance="ops"), "dag.v2-ü", "task_名", AWKWARD_RUN
    )
    out["templates"] = _templates()
    out["instance:extras"] = _instance_extras()
    out["column_lineage"] = _column_lineage()
    out["official:extras"] = _official_extras()
    return out
