"""Our urns equal acryl-datahub's for a table of awkward inputs (reserved characters, unicode)."""

from __future__ import annotations

import pytest
from datahub.api.entities.dataprocess.dataprocess_instance import DataProcessInstanceKey
from datahub.emitter import mce_builder as acryl
from datahub.metadata import urns as acryl_urns

from datahub_airflow_listener.domain import urns as ours
from datahub_airflow_listener.domain.runs import RunMapper

pytestmark = pytest.mark.compat

INPUTS = [
    "plain",
    "db.schema.table",
    "with,comma",
    "(parens)",
    "f(a,b)",
    "unit\u241fsep",
    "tåble_ü",
    "名前",
    "emoji🎉",
    "50%off",
    "%2C-already-looks-encoded",
    "inner space",
    "tab\tinside",
    "a:b/c?d=e&f",
    "x" * 120,
]


def _dpi_urn(cluster: str | None, id: str) -> str:
    guid = DataProcessInstanceKey(cluster=cluster, orchestrator="airflow", id=id).guid()
    return str(acryl_urns.DataProcessInstanceUrn(guid))


@pytest.mark.parametrize("value", INPUTS)
def test_dataset_urns(value: str) -> None:
    assert ours.make_dataset_urn("hive", value, "PROD") == acryl.make_dataset_urn(
        "hive", value, "PROD"
    )
    assert ours.make_dataset_urn("hive", value, "dev") == acryl.make_dataset_urn(
        "hive", value, "dev"
    )
    assert ours.make_dataset_urn(value, "t") == str(acryl_urns.DatasetUrn(value, "t", "PROD"))
    assert ours.make_dataset_urn(
        "postgres", value, "PROD", "eu1"
    ) == acryl.make_dataset_urn_with_platform_instance("postgres", value, "eu1", "PROD")
    assert ours.make_dataset_urn(
        "postgres", "t", "PROD", value
    ) == acryl.make_dataset_urn_with_platform_instance("postgres", "t", value, "PROD")


@pytest.mark.parametrize("value", INPUTS)
def test_flow_and_job_urns(value: str) -> None:
    for cluster in ("prod", "PROD", "Prod-EU"):
        assert ours.make_data_flow_urn("airflow", value, cluster) == acryl.make_data_flow_urn(
            "airflow", value, cluster
        )
    assert ours.make_data_flow_urn("airflow", "d", value) == acryl.make_data_flow_urn(
        "airflow", "d", value
    )
    assert ours.make_data_flow_urn("airflow", value, "prod", "ops") == acryl.make_data_flow_urn(
        "airflow", value, "prod", "ops"
    )
    assert str(ours.DataFlowUrn.create_from_ids("airflow", value, "prod", "ops")) == str(
        acryl_urns.DataFlowUrn.create_from_ids("airflow", value, "prod", "ops")
    )
    flow = acryl.make_data_flow_urn("airflow", value, "prod")
    assert ours.make_data_job_urn(flow, value) == acryl.make_data_job_urn_with_flow(flow, value)
    assert str(ours.DataJobUrn.create_from_ids(flow, value)) == str(
        acryl_urns.DataJobUrn.create_from_ids(flow, value)
    )


@pytest.mark.parametrize("value", INPUTS)
def test_process_instance_urns(value: str) -> None:
    for cluster in ("prod", "PROD", None, value):
        assert ours.make_data_process_instance_urn("airflow", cluster, value) == _dpi_urn(
            cluster, value
        )


@pytest.mark.parametrize("value", INPUTS)
def test_tag_user_group_platform_urns(value: str) -> None:
    assert ours.make_tag_urn(value) == acryl.make_tag_urn(value)
    assert ours.make_user_urn(value) == acryl.make_user_urn(value)
    assert ours.make_group_urn(value) == acryl.make_group_urn(value)
    assert ours.make_data_platform_urn(value) == acryl.make_data_platform_urn(value)
    assert ours.make_data_platform_instance_urn("airflow", value) == str(
        acryl_urns.DataPlatformInstanceUrn("airflow", value)
    )
    assert ours.make_ml_model_urn("mlflow", value) == str(
        acryl_urns.MlModelUrn("mlflow", value, "PROD")
    )


@pytest.mark.parametrize("urn", ["urn:li:corpGroup:team", "urn:li:corpuser:jdoe"])
def test_existing_owner_urns_pass_through_like_acryl(urn: str) -> None:
    assert ours.make_user_urn(urn) == acryl.make_user_urn(urn)
    assert ours.make_group_urn(urn) == acryl.make_group_urn(urn)
    assert ours.make_tag_urn("urn:li:tag:pii") == acryl.make_tag_urn("urn:li:tag:pii")


def test_a_urn_of_another_type_is_refused_where_acryl_nests_it() -> None:
    """Differs on purpose: acryl-datahub turns ``urn:li:tag:pii`` given as a user into
    ``urn:li:corpuser:urn:li:tag:pii``; we refuse it with the typed error instead."""
    from datahub_airflow_listener.domain.errors import InvalidUrnError

    assert acryl.make_user_urn("urn:li:tag:pii") == "urn:li:corpuser:urn:li:tag:pii"
    with pytest.raises(InvalidUrnError) as info:
        ours.make_user_urn("urn:li:tag:pii")
    assert info.value.field == "user"


@pytest.mark.parametrize("value", INPUTS)
def test_parser_agrees(value: str) -> None:
    flow = ours.make_data_flow_urn("airflow", value, "prod")
    for urn in (
        ours.make_dataset_urn("hive", value),
        flow,
        ours.make_data_job_urn(flow, value),
        ours.make_tag_urn(value),
    ):
        mine = ours.parse_urn(urn)
        theirs = acryl_urns.Urn.from_string(urn)
        assert (mine.entity_type, list(mine.parts)) == (theirs.entity_type, theirs.entity_ids)


def test_worked_examples_agree() -> None:
    assert ours.datahub_guid({"cluster": "prod", "orchestrator": "airflow", "id": "x"}) == (
        DataProcessInstanceKey(cluster="prod", orchestrator="airflow", id="x").guid()
    )
    assert ours.datahub_guid({"a": "é,(", "b": None}) == acryl.datahub_guid({"a": "é,("})


@pytest.mark.parametrize("value", INPUTS)
def test_task_runs_keep_the_official_plugins_urn(value: str) -> None:
    """An unmapped task try's urn is the one the widely installed DataHub plugin writes."""
    run_id = f"manual__{value}"
    assert RunMapper(cluster="prod").task_run_urn("my_dag", "extract", run_id) == _dpi_urn(
        "prod", f"my_dag_extract_{run_id}"
    )


def test_container_key_differs_from_acryl_on_purpose() -> None:
    """acryl-datahub's ContainerKey base class leaves ``name`` out of the guid (pydantic drops the
    undeclared field), so every container of a platform would share one urn. Ours keeps it; the
    two are expected to differ whenever a name is given, and agree without one."""
    from datahub.emitter.mcp_builder import ContainerKey as AcrylContainerKey

    from datahub_airflow_listener.domain.instance import ContainerKey

    platform = "urn:li:dataPlatform:mlflow"
    theirs = AcrylContainerKey(platform=platform, name="exp_a", env="PROD")
    assert theirs.guid() == AcrylContainerKey(platform=platform, name="exp_b", env="PROD").guid()
    assert ContainerKey(platform=platform, name="exp_a").guid() != (
        ContainerKey(platform=platform, name="exp_b").guid()
    )
    assert ContainerKey(platform=platform, env="PROD").as_urn() == (
        AcrylContainerKey(platform=platform, env="PROD").as_urn()
    )
    assert ContainerKey(platform=platform, instance="i").as_urn() == (
        AcrylContainerKey(platform=platform, instance="i").as_urn()
    )
