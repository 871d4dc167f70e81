"""DagFacts/TaskFacts -> DataFlow and DataJob template MCPs, and their fingerprint."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.pipeline import (
    DagFacts,
    TaskFacts,
    TemplateOptions,
    dag_template_mcps,
    doc_summary,
    flow_template_mcps,
    job_io_mcps,
    job_template_mcps,
    split_owners,
    template_fingerprint,
)

PG = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.src,PROD)"
S3 = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/out,PROD)"
MODEL = "urn:li:mlModel:(urn:li:dataPlatform:mlflow,churn,PROD)"
OTHER_JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,other,prod),publish)"
FLOW = "urn:li:dataFlow:(airflow,etl,prod)"
EXTRACT = f"urn:li:dataJob:({FLOW},extract)"
LOAD = f"urn:li:dataJob:({FLOW},load)"


def facts(**kw: Any) -> DagFacts:
    extract = TaskFacts(
        task_id="extract",
        operator="SQLExecuteQueryOperator",
        doc_md="Reads the source table.",
        retries=2,
        pool="default_pool",
        queue="default",
        trigger_rule="all_success",
        execution_timeout="0:05:00",
        inlets=[PG],
        url="http://af/dags/etl/tasks/extract",
        owner="alice",
    )
    load = TaskFacts(
        task_id="load",
        operator="PythonOperator",
        upstream_task_ids=["extract"],
        outlets=[S3, MODEL],
        upstream_jobs=[OTHER_JOB],
        owner="alice, bob",
    )
    values: dict[str, Any] = {
        "dag_id": "etl",
        "doc_md": "# ETL\n\nCopies the source table to S3.\nDaily.\n\nDetails follow.",
        "schedule": "0 0 * * *",
        "start_date": "2024-01-01T00:00:00+00:00",
        "catchup": False,
        "max_active_runs": 1,
        "fileloc": "etl/etl_dag.py",
        "url": "http://af/dags/etl",
        "owners": ["alice", "bob"],
        "tags": ["finance", "daily"],
        "tasks": [load, extract],
    }
    values.update(kw)
    return DagFacts(**values)


def by_key(mcps: list[MetadataChangeProposal]) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for m in mcps:
        key = (m.entity_urn, m.aspect_name)
        assert key not in out, f"duplicate {key}"
        out[key] = m.aspect_dict()
    return out


# -- the DataFlow ---------------------------------------------------------------------------------


def test_flow_info() -> None:
    got = by_key(flow_template_mcps(facts(), TemplateOptions()))
    assert got[(FLOW, "dataFlowInfo")] == {
        "customProperties": {
            "schedule": "0 0 * * *",
            "start_date": "2024-01-01T00:00:00+00:00",
            "catchup": "false",
            "max_active_runs": "1",
            "fileloc": "etl/etl_dag.py",
        },
        "externalUrl": "http://af/dags/etl",
        "name": "etl",
        "description": "Copies the source table to S3. Daily.",
        "env": "PROD",
    }
    assert got[(FLOW, "status")] == {"removed": False}
    assert got[(FLOW, "browsePathsV2")] == {"path": []}
    assert {o["owner"] for o in got[(FLOW, "ownership")]["owners"]} == {
        "urn:li:corpuser:alice",
        "urn:li:corpuser:bob",
    }
    assert got[(FLOW, "globalTags")] == {
        "tags": [{"tag": "urn:li:tag:daily"}, {"tag": "urn:li:tag:finance"}]
    }


def test_description_wins_over_doc_md() -> None:
    got = by_key(flow_template_mcps(facts(description="Explicit."), TemplateOptions()))
    assert got[(FLOW, "dataFlowInfo")]["description"] == "Explicit."


def test_no_description_at_all() -> None:
    got = by_key(flow_template_mcps(facts(doc_md=None), TemplateOptions()))
    assert "description" not in got[(FLOW, "dataFlowInfo")]


@pytest.mark.parametrize(("cluster", "env"), [("prod", "PROD"), ("dev", "DEV"), ("eu-1", None)])
def test_env_only_when_the_cluster_is_a_fabric(cluster: str, env: str | None) -> None:
    flow = f"urn:li:dataFlow:(airflow,etl,{cluster})"
    got = by_key(flow_template_mcps(facts(), TemplateOptions(cluster=cluster)))
    assert got[(flow, "dataFlowInfo")].get("env") == env


def test_owners_as_groups() -> None:
    got = by_key(dag_template_mcps(facts(), TemplateOptions(capture_ownership_as_group=True)))
    owners = {o["owner"] for o in got[(FLOW, "ownership")]["owners"]}
    assert owners == {"urn:li:corpGroup:alice", "urn:li:corpGroup:bob"}
    job_owners = {o["owner"] for o in got[(LOAD, "ownership")]["owners"]}
    assert job_owners == {"urn:li:corpGroup:alice", "urn:li:corpGroup:bob"}


def test_ownership_and_tags_can_be_switched_off() -> None:
    mcps = dag_template_mcps(
        facts(), TemplateOptions(capture_ownership_info=False, capture_tags_info=False)
    )
    names = {m.aspect_name for m in mcps}
    assert "ownership" not in names
    assert "globalTags" not in names


def test_platform_instance_prefixes_flow_and_sets_the_instance_aspect() -> None:
    got = by_key(dag_template_mcps(facts(), TemplateOptions(platform_instance="eu")))
    flow = "urn:li:dataFlow:(airflow,eu.etl,prod)"
    assert (flow, "dataFlowInfo") in got
    assert got[(flow, "dataPlatformInstance")]["instance"] == (
        "urn:li:dataPlatformInstance:(urn:li:dataPlatform:airflow,eu)"
    )
    assert (f"urn:li:dataJob:({flow},load)", "dataJobInfo") in got


# -- the DataJobs ---------------------------------------------------------------------------------


def test_job_info_has_operator_as_type_and_task_properties() -> None:
    got = by_key(dag_template_mcps(facts(), TemplateOptions()))
    assert got[(EXTRACT, "dataJobInfo")] == {
        "customProperties": {
            "retries": "2",
            "pool": "default_pool",
            "queue": "default",
            "trigger_rule": "all_success",
            "execution_timeout": "0:05:00",
        },
        "externalUrl": "http://af/dags/etl/tasks/extract",
        "name": "extract",
        "description": "Reads the source table.",
        "type": {"string": "SQLExecuteQueryOperator"},
        "flowUrn": FLOW,
        "env": "PROD",
    }
    assert got[(EXTRACT, "status")] == {"removed": False}
    assert got[(EXTRACT, "browsePathsV2")] == {"path": [{"id": FLOW, "urn": FLOW}]}
    assert got[(EXTRACT, "globalTags")] == got[(FLOW, "globalTags")]
    assert [o["owner"] for o in got[(EXTRACT, "ownership")]["owners"]] == ["urn:li:corpuser:alice"]


def test_job_without_operator_is_a_command() -> None:
    dag = facts(tasks=[TaskFacts(task_id="t")])
    got = by_key(dag_template_mcps(dag, TemplateOptions()))
    job = f"urn:li:dataJob:({FLOW},t)"
    assert got[(job, "dataJobInfo")]["type"] == {"string": "COMMAND"}
    assert "ownership" not in {k[1] for k in got if k[0] == job}


def test_job_lineage_has_dataset_edges_and_upstream_tasks_as_input_jobs() -> None:
    got = by_key(dag_template_mcps(facts(), TemplateOptions()))
    io = got[(LOAD, "dataJobInputOutput")]
    assert io["inputDatasets"] == []
    assert io["outputDatasets"] == [S3, MODEL]
    assert io["outputDatasetEdges"] == [{"destinationUrn": S3}, {"destinationUrn": MODEL}]
    assert io["inputDatajobs"] == [EXTRACT, OTHER_JOB]
    assert io["inputDatajobEdges"] == [{"destinationUrn": EXTRACT}, {"destinationUrn": OTHER_JOB}]
    assert got[(EXTRACT, "dataJobInputOutput")]["inputDatasets"] == [PG]


def test_materialize_iolets_emits_each_key_aspect_once() -> None:
    both_use_s3 = facts(
        tasks=[TaskFacts(task_id="a", outlets=[S3]), TaskFacts(task_id="b", inlets=[S3, PG])]
    )
    mcps = dag_template_mcps(both_use_s3, TemplateOptions())
    keys = [(m.entity_urn, m.aspect_name) for m in mcps if m.entity_type == "dataset"]
    assert sorted(keys) == sorted([(S3, "datasetKey"), (PG, "datasetKey")])
    got = by_key(mcps)
    assert got[(S3, "datasetKey")] == {
        "platform": "urn:li:dataPlatform:s3",
        "name": "bucket/out",
        "origin": "PROD",
    }


def test_ml_models_get_their_key_aspect() -> None:
    got = by_key(dag_template_mcps(facts(), TemplateOptions()))
    assert got[(MODEL, "mlModelKey")]["name"] == "churn"


def test_without_materialize_iolets_no_dataset_is_touched() -> None:
    mcps = dag_template_mcps(facts(), TemplateOptions(materialize_iolets=False))
    assert {m.entity_type for m in mcps} == {"dataFlow", "dataJob", "tag"}


def test_flow_comes_first_then_jobs_sorted_then_datasets_then_tags() -> None:
    mcps = dag_template_mcps(facts(), TemplateOptions())
    rank = {"dataFlow": 0, "dataJob": 1, "dataset": 2, "mlModel": 2, "tag": 3}
    kinds = [rank[m.entity_type] for m in mcps]
    assert kinds == sorted(kinds)
    jobs = [m.entity_urn for m in mcps if m.entity_type == "dataJob"]
    assert jobs == sorted(jobs)


def test_job_template_mcps_for_one_task() -> None:
    dag = facts()
    (extract,) = [t for t in dag.tasks if t.task_id == "extract"]
    urns = {m.entity_urn for m in job_template_mcps(dag, extract, TemplateOptions())}
    assert urns == {EXTRACT, PG}


def test_job_io_mcps_carries_only_lineage() -> None:
    task = TaskFacts(task_id="load", upstream_task_ids=["extract"], outlets=[S3])
    mcps = job_io_mcps("etl", task, TemplateOptions())
    assert [(m.entity_urn, m.aspect_name) for m in mcps] == [
        (LOAD, "dataJobInputOutput"),
        (S3, "datasetKey"),
    ]
    assert mcps[0].aspect_dict()["inputDatajobs"] == [EXTRACT]


def test_job_io_mcps_carries_column_lineage_and_the_sql() -> None:
    column = a.FineGrainedLineage(
        upstream_type=a.FineGrainedLineageUpstreamType.FIELD_SET,
        upstreams=(f"urn:li:schemaField:({PG},amount)",),
        downstream_type=a.FineGrainedLineageDownstreamType.FIELD,
        downstreams=(f"urn:li:schemaField:({S3},total)",),
    )
    task = TaskFacts(
        task_id="load", inlets=[PG], outlets=[S3], fine_grained=[column], sql="SELECT 1"
    )
    mcps = job_io_mcps("etl", task, TemplateOptions(materialize_iolets=False))
    assert [(m.entity_urn, m.aspect_name) for m in mcps] == [
        (LOAD, "dataJobInputOutput"),
        (LOAD, "dataTransformLogic"),
    ]
    io = mcps[0].aspect_dict()
    assert io["fineGrainedLineages"] == [
        {
            "upstreamType": "FIELD_SET",
            "upstreams": [f"urn:li:schemaField:({PG},amount)"],
            "downstreamType": "FIELD",
            "downstreams": [f"urn:li:schemaField:({S3},total)"],
            "confidenceScore": 1.0,
        }
    ]
    assert mcps[1].aspect_dict() == {
        "transforms": [{"queryStatement": {"value": "SELECT 1", "language": "SQL"}}]
    }


def test_job_io_mcps_without_column_lineage_sends_no_empty_list() -> None:
    (mcp,) = job_io_mcps("etl", TaskFacts(task_id="load"), TemplateOptions())
    assert "fineGrainedLineages" not in mcp.aspect_dict()


# -- fingerprint ----------------------------------------------------------------------------------


def fp(dag: DagFacts, options: TemplateOptions | None = None) -> str:
    return template_fingerprint(dag_template_mcps(dag, options or TemplateOptions()))


def test_fingerprint_is_stable_for_the_same_dag() -> None:
    assert fp(facts()) == fp(facts())


def test_fingerprint_is_a_sha256_hex() -> None:
    value = fp(facts())
    assert len(value) == 64
    int(value, 16)


def test_fingerprint_ignores_task_order_and_mcp_order() -> None:
    dag = facts()
    reordered = attrs.evolve(dag, tasks=tuple(reversed(dag.tasks)))
    assert fp(dag) == fp(reordered)
    mcps = dag_template_mcps(dag, TemplateOptions())
    assert template_fingerprint(mcps) == template_fingerprint(list(reversed(mcps)))


def test_fingerprint_ignores_audit_stamps() -> None:
    mcps = dag_template_mcps(facts(), TemplateOptions())
    restamped = [
        attrs.evolve(m, aspect=attrs.evolve(m.aspect, last_modified=a.AuditStamp(time=123)))
        if isinstance(m.aspect, a.Ownership)
        else m
        for m in mcps
    ]
    assert template_fingerprint(mcps) == template_fingerprint(restamped)


@pytest.mark.parametrize(
    "change",
    [
        {"doc_md": "Something else."},
        {"schedule": "@hourly"},
        {"tags": ["finance"]},
        {"owners": ["carol"]},
        {"fileloc": "moved.py"},
        {"max_active_runs": 2},
        {"tasks": [TaskFacts(task_id="extract")]},
    ],
)
def test_fingerprint_changes_when_the_dag_changes(change: dict[str, Any]) -> None:
    assert fp(facts()) != fp(facts(**change))


def test_fingerprint_changes_when_a_task_changes() -> None:
    dag = facts()
    tasks = [attrs.evolve(t, retries=5) if t.task_id == "extract" else t for t in dag.tasks]
    assert fp(dag) != fp(attrs.evolve(dag, tasks=tuple(tasks)))
    tasks = [attrs.evolve(t, outlets=(S3,)) if t.task_id == "load" else t for t in dag.tasks]
    assert fp(dag) != fp(attrs.evolve(dag, tasks=tuple(tasks)))


def test_fingerprint_changes_with_options_that_change_the_output() -> None:
    assert fp(facts()) != fp(facts(), TemplateOptions(capture_ownership_as_group=True))
    assert fp(facts()) != fp(facts(), TemplateOptions(cluster="dev"))


# -- small helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "owners"),
    [
        ("airflow", ("airflow",)),
        ("alice, bob,alice", ("alice", "bob")),
        (" , ", ()),
        (None, ()),
        (["b", "a"], ("a", "b")),
    ],
)
def test_split_owners(owner: Any, owners: tuple[str, ...]) -> None:
    assert split_owners(owner) == owners


@pytest.mark.parametrize(
    ("doc", "summary"),
    [
        ("# Title\n\nFirst para\nline two.\n\nSecond.", "First para line two."),
        ("Plain text.", "Plain text."),
        ("## Only a heading", "Only a heading"),
        ("\n\n  \n", None),
        (None, None),
        ("x" * 2000, "x" * 997 + "..."),
    ],
)
def test_doc_summary(doc: str | None, summary: str | None) -> None:
    assert doc_summary(doc) == summary


def test_template_options_from_any_config_object() -> None:
    @attrs.frozen
    class Config:
        cluster: str = "dev"
        capture_tags_info: bool = False
        unrelated: int = 3

    options = TemplateOptions.from_config(Config())
    assert options == TemplateOptions(cluster="dev", capture_tags_info=False)
    assert TemplateOptions.from_config(None) == TemplateOptions()
