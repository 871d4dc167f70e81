"""The official plugin's ``[datahub]`` keys do what they say here: ``datajob_url_link``,
``render_templates`` (Airflow 2), ``log_level``, ``debug_emitter``, ``token`` (see
test_official_names), ``asset_naming``; and the aspects ``platform_instance`` and
``capture_tags_info`` add (instance platform, tag status)."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from datahub_airflow_listener.adapter import compat
from datahub_airflow_listener.adapter import config as cfg
from datahub_airflow_listener.adapter import templates as tpl
from datahub_airflow_listener.adapter.config import parse_config
from datahub_airflow_listener.adapter.lineage import task_lineage
from datahub_airflow_listener.adapter.logs import forget_said
from tests.airflow.conftest import (
    AIRFLOW_3,
    T0,
    call_hook,
    core_manager,
    make_dag_run,
    make_orm_ti,
)

PG_TABLE = "postgres://db-host:5432/db/public/src"


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    forget_said()
    yield
    logging.getLogger("datahub_airflow_listener").setLevel(logging.NOTSET)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_keys_parse_and_a_bad_value_keeps_the_default_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = parse_config(
        {
            "asset_naming": "Official",
            "datajob_url_link": "GRID",
            "render_templates": "false",
            "log_level": "debug",
            "debug_emitter": "true",
            "token": "s3cret",
        }
    )
    assert (config.asset_naming, config.datajob_url_link) == ("official", "grid")
    assert (config.render_templates, config.log_level, config.debug_emitter) == (
        False,
        "DEBUG",
        True,
    )
    assert config.token == "s3cret" and "s3cret" not in repr(config)
    bad = parse_config({"asset_naming": "theirs", "datajob_url_link": "x", "log_level": "LOUD"})
    assert (bad.asset_naming, bad.datajob_url_link, bad.log_level) == ("datahub", "tasks", None)
    assert len(_warnings(caplog)) == 3
    assert any("expected one of datahub, official" in w for w in _warnings(caplog))


def test_log_level_sets_this_packages_loggers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATAHUB__LOG_LEVEL", "WARNING")
    cfg.load_config()
    logger = logging.getLogger("datahub_airflow_listener.adapter.recorder")
    assert logger.getEffectiveLevel() == logging.WARNING
    monkeypatch.setenv("AIRFLOW__DATAHUB__LOG_LEVEL", "DEBUG")
    cfg.load_config()
    assert logger.isEnabledFor(logging.DEBUG)


@pytest.mark.parametrize("link", ["tasks", "grid", "taskinstance"])
def test_datajob_url_link_picks_the_page_a_datajob_links(link: str) -> None:
    url = compat.task_url("http://af/", "etl", "load", link)
    tasks, grid = "http://af/dags/etl/tasks/load", "http://af/dags/etl/grid?task_id=load"
    listing = "http://af/taskinstance/list/?flt1_dag_id_equals=etl&_flt_3_task_id=load"
    expected = {
        "tasks": tasks if AIRFLOW_3 else grid,  # 2.x has no task page
        "grid": grid,
        "taskinstance": tasks if AIRFLOW_3 else listing,  # 3.x has no list
    }
    assert url == expected[link]


def test_templates_carry_the_link_and_each_tags_status(dag: Any) -> None:
    dag.tags = ["finance", "daily"] if not AIRFLOW_3 else {"finance", "daily"}
    config = parse_config({"datajob_url_link": "grid"})
    mcps = tpl.TemplateTracker().templates_for(dag, config, base_url="http://af")
    job = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),load)"
    (info,) = [
        m.aspect_dict() for m in mcps if (m.entity_urn, m.aspect_name) == (job, "dataJobInfo")
    ]
    assert info["externalUrl"] == "http://af/dags/etl/grid?task_id=load"
    tags = [(m.entity_urn, m.aspect_dict()) for m in mcps if m.entity_type == "tag"]
    assert tags == [
        ("urn:li:tag:daily", {"removed": False}),
        ("urn:li:tag:finance", {"removed": False}),
    ]
    untagged = parse_config({"capture_tags_info": "false"})
    assert not [
        m for m in tpl.TemplateTracker().templates_for(dag, untagged) if m.entity_type == "tag"
    ]


def test_asset_naming_switches_how_asset_uris_are_named() -> None:
    if AIRFLOW_3:
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG, Asset
    else:
        from airflow import DAG
        from airflow.datasets import Dataset as Asset
        from airflow.operators.empty import EmptyOperator
    with DAG("naming", start_date=T0, schedule=None):
        task = EmptyOperator(task_id="t", outlets=[Asset(PG_TABLE)])
    ours = task_lineage(task, config=parse_config({}))
    theirs = task_lineage(task, config=parse_config({"asset_naming": "official"}))
    assert ours.outlets == ("urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.src,PROD)",)
    assert theirs.outlets == (
        "urn:li:dataset:(urn:li:dataPlatform:postgres,db-host:5432/db/public/src,PROD)",
    )


def test_platform_instance_goes_on_every_process_instance(
    registered: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__DATAHUB__PLATFORM_INSTANCE", "ops")
    cfg.reset_config()
    call_hook(core_manager(), "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    instances = [m for m in recorder.mcps if m.entity_type == "dataProcessInstance"]
    names = [m.aspect_name for m in instances]
    assert names[:3] == [
        "dataProcessInstanceProperties",
        "dataPlatformInstance",
        "dataProcessInstanceRelationships",
    ]
    (platform,) = recorder.aspects(instances[0].entity_urn, "dataPlatformInstance")
    assert platform == {
        "platform": "urn:li:dataPlatform:airflow",
        "instance": "urn:li:dataPlatformInstance:(urn:li:dataPlatform:airflow,ops)",
    }


def test_debug_emitter_logs_every_mcp_handed_to_the_sender(
    registered: Any,
    recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="datahub_airflow_listener")
    monkeypatch.setenv("AIRFLOW__DATAHUB__DEBUG_EMITTER", "true")
    cfg.reset_config()
    call_hook(core_manager(), "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    lines = [
        r.getMessage()
        for r in caplog.records
        if "datahub-airflow-listener: emit " in r.getMessage()
    ]
    assert len(lines) == len(recorder.mcps) > 0
    assert any("dataProcessInstanceRunEvent on urn:li:dataProcessInstance:" in x for x in lines)
    assert any('"status":"STARTED"' in x for x in lines)


@pytest.mark.skipif(AIRFLOW_3, reason="Airflow 3 renders templated fields before any hook")
@pytest.mark.parametrize("render", [True, False])
def test_render_templates_on_airflow_2_renders_a_running_trys_lineage(
    monkeypatch: pytest.MonkeyPatch, render: bool
) -> None:
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    monkeypatch.setenv("AIRFLOW__DATAHUB__RENDER_TEMPLATES", str(render).lower())
    cfg.reset_config()
    with DAG("render", start_date=T0, schedule=None):
        task = EmptyOperator(
            task_id="t",
            inlets=["urn:li:dataset:(urn:li:dataPlatform:s3,fixed,PROD)"],
            outlets=["s3://bucket/{{ ds }}/part"],
        )
    ti = make_orm_ti(task, state="running", start_date=T0)
    ti.pid = os.getpid()
    # The try's context (the real one reads the metadata DB, which this ring has not; the
    # integration suite renders with it).
    ti.get_template_context = lambda session=None: {"ds": "2024-01-01"}
    got = compat.get_task(ti)
    if render:
        assert got is not task and got.outlets == ["s3://bucket/2024-01-01/part"]
        assert task.outlets == ["s3://bucket/{{ ds }}/part"]  # Airflow's task is untouched
        assert got.inlets == task.inlets and got.task_id == "t"
    else:
        assert got is task
    ti.state = "success"  # an ended try: nothing to render (execute() rendered them)
    assert compat.get_task(ti) is task


def test_a_task_without_templates_is_the_task_itself(dag: Any) -> None:
    ti = make_orm_ti(dag.get_task("load"), state="running")
    ti.pid = os.getpid()
    assert compat.get_task(ti) is dag.get_task("load")
