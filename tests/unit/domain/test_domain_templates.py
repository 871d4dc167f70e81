"""DataFlow and DataJob templates: what a pipeline and a task are."""

from __future__ import annotations

import pytest

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.errors import InvalidUrnError
from datahub_airflow_listener.domain.templates import DataFlow, DataJob, iolet_key_mcps
from datahub_airflow_listener.domain.urns import DataFlowUrn

IN = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.raw,PROD)"
OUT = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/clean,PROD)"
UP = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),upstream)"


def _by_name(mcps: list) -> dict:  # type: ignore[type-arg]
    return {x.aspect_name: x.aspect for x in mcps}


def test_flow_urn_env_cluster_and_platform_instance() -> None:
    assert str(DataFlow(orchestrator="airflow", id="d", env="prod").urn) == (
        "urn:li:dataFlow:(airflow,d,prod)"
    )
    assert str(DataFlow(orchestrator="airflow", id="d", cluster="dev").urn).endswith(",dev)")
    assert str(
        DataFlow(orchestrator="airflow", id="d", env="prod", platform_instance="ops").urn
    ) == ("urn:li:dataFlow:(airflow,ops.d,prod)")
    with pytest.raises(InvalidUrnError) as info:
        _ = DataFlow(orchestrator="airflow", id="d").urn
    assert info.value.field == "env"


def test_flow_mcps() -> None:
    flow = DataFlow(
        orchestrator="airflow",
        id="daily",
        env="prod",
        description="Daily reporting",
        properties={"schedule": "@daily"},
        url="http://af/dags/daily",
        owners={"bob", "alice"},
        group_owners={"data"},
        tags={"pii", "finance,eu"},
    )
    mcps = flow.generate_mcp()
    assert {x.entity_urn for x in mcps} == {"urn:li:dataFlow:(airflow,daily,prod)"}
    by = _by_name(mcps)
    assert list(by) == ["dataFlowInfo", "status", "ownership", "globalTags", "browsePathsV2"]
    assert by["dataFlowInfo"] == a.DataFlowInfo(
        name="daily",
        description="Daily reporting",
        custom_properties={"schedule": "@daily"},
        external_url="http://af/dags/daily",
        env="PROD",
    )
    assert by["status"] == a.Status(removed=False)
    assert [o.owner for o in by["ownership"].owners] == [
        "urn:li:corpGroup:data",
        "urn:li:corpuser:alice",
        "urn:li:corpuser:bob",
    ]
    assert {o.type for o in by["ownership"].owners} == {a.OwnershipType.DEVELOPER}
    assert by["ownership"].last_modified.actor == "urn:li:corpuser:airflow"
    assert [t.tag for t in by["globalTags"].tags] == ["urn:li:tag:finance%2Ceu", "urn:li:tag:pii"]
    assert by["browsePathsV2"] == a.BrowsePathsV2(path=())


def test_flow_without_owners_or_tags_sends_neither() -> None:
    """An empty ownership/globalTags UPSERT would wipe owners and tags set in DataHub's UI."""
    names = [
        x.aspect_name for x in DataFlow(orchestrator="airflow", id="d", env="prod").generate_mcp()
    ]
    assert "ownership" not in names
    assert "globalTags" not in names


def test_flow_env_field_only_takes_a_known_fabric() -> None:
    info = _by_name(DataFlow(orchestrator="airflow", id="d", env="eu-cluster").generate_mcp())
    assert info["dataFlowInfo"].env is None
    info = _by_name(DataFlow(orchestrator="airflow", id="d", env="dev").generate_mcp())
    assert info["dataFlowInfo"].env == "DEV"


def test_flow_platform_instance_aspects() -> None:
    by = _by_name(
        DataFlow(orchestrator="airflow", id="d", env="prod", platform_instance="ops").generate_mcp()
    )
    inst = "urn:li:dataPlatformInstance:(urn:li:dataPlatform:airflow,ops)"
    assert by["dataPlatformInstance"] == a.DataPlatformInstance(
        platform="urn:li:dataPlatform:airflow", instance=inst
    )
    assert by["browsePathsV2"] == a.BrowsePathsV2(path=(a.BrowsePathEntry(id=inst, urn=inst),))


def test_job_mcps_and_lineage() -> None:
    flow = DataFlow(orchestrator="airflow", id="etl", env="prod")
    job = DataJob(
        id="load",
        flow_urn=flow.urn,
        description="Load",
        type="PYTHON",
        inlets=[IN, IN],
        outlets=[OUT],
        upstream_urns=[UP],
    )
    mcps = job.generate_mcp()
    job_urn = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),load)"
    by = _by_name([x for x in mcps if x.entity_urn == job_urn])
    assert list(by) == ["dataJobInfo", "status", "browsePathsV2", "dataJobInputOutput"]
    info = by["dataJobInfo"]
    assert info.type == "PYTHON"
    assert info.flow_urn == "urn:li:dataFlow:(airflow,etl,prod)"
    assert info.env == "PROD"
    assert a.aspect_to_dict(info)["type"] == {"string": "PYTHON"}
    flow_urn = "urn:li:dataFlow:(airflow,etl,prod)"
    assert by["browsePathsV2"] == a.BrowsePathsV2(
        path=(a.BrowsePathEntry(id=flow_urn, urn=flow_urn),)
    )
    io = by["dataJobInputOutput"]
    assert io.input_datasets == (IN,)  # de-duplicated
    assert io.output_datasets == (OUT,)
    assert io.input_datajobs == (UP,)
    assert [e.destination_urn for e in io.input_dataset_edges] == [IN]
    assert [e.destination_urn for e in io.input_datajob_edges] == [UP]
    keys = [x for x in mcps if x.aspect_name == "datasetKey"]
    assert [k.entity_urn for k in keys] == [IN, OUT]
    assert keys[1].aspect == a.DatasetKey(
        platform="urn:li:dataPlatform:s3", name="bucket/clean", origin="PROD"
    )


def test_job_without_lineage_or_materialization() -> None:
    job = DataJob(id="t", flow_urn="urn:li:dataFlow:(airflow,d,prod)", inlets=[IN])
    assert "dataJobInputOutput" not in _by_name(job.generate_mcp(generate_lineage=False))
    assert "datasetKey" not in _by_name(job.generate_mcp(materialize_iolets=False))


def test_job_flow_urn_must_be_a_flow() -> None:
    with pytest.raises(InvalidUrnError) as info:
        DataJob(id="t", flow_urn="urn:li:tag:x")
    assert info.value.field == "flow_urn"
    with pytest.raises(InvalidUrnError):
        DataJob(id="t", flow_urn=None)  # type: ignore[arg-type]
    assert isinstance(DataJob(id="t", flow_urn="urn:li:dataFlow:(a,d,p)").flow_urn, DataFlowUrn)


def test_iolet_keys_cover_datasets_and_models_once() -> None:
    model = "urn:li:mlModel:(urn:li:dataPlatform:mlflow,m,PROD)"
    mcps = iolet_key_mcps([IN, model, IN, "urn:li:dataJob:(urn:li:dataFlow:(a,d,p),t)"])
    assert [(x.entity_urn, x.aspect_name) for x in mcps] == [
        (IN, "datasetKey"),
        (model, "mlModelKey"),
    ]


def test_emit_sends_every_mcp() -> None:
    sent: list = []  # type: ignore[type-arg]

    class Emitter:
        def emit(self, mcp, callback=None) -> None:  # type: ignore[no-untyped-def]
            sent.append(mcp)

    flow = DataFlow(orchestrator="airflow", id="d", env="prod")
    flow.emit(Emitter())
    assert sent == flow.generate_mcp()
