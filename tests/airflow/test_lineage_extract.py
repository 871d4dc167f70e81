"""Lineage and templates out of REAL Airflow DAG objects (3.x SDK + SerializedDAG, 2.x DAG).

Run with each Airflow venv: the same expectations hold for a DAG as its file defines it
(task process, ``dags test``) and as the scheduler holds it (deserialized), on 3.3 and 2.11.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import attrs
import pytest

from datahub_airflow_listener import entities
from datahub_airflow_listener.adapter import compat, try_lineage
from datahub_airflow_listener.adapter import templates as tpl
from datahub_airflow_listener.adapter.config import AllowDeny, DatahubConfig
from datahub_airflow_listener.adapter.lineage import (
    alias_event_uris,
    asset_urn,
    resolved_alias_uris,
    task_lineage,
)
from datahub_airflow_listener.domain.runs import RunMapper, TaskRunFacts
from tests.airflow.conftest import AIRFLOW_3, make_orm_ti

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
PG = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.src,PROD)"
HIVE = "urn:li:dataset:(urn:li:dataPlatform:hive,db.t,PROD)"
S3_IN = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/in,PROD)"
S3_OUT = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/out,PROD)"
JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,upstream_dag,prod),publish)"


# -- real DAGs ------------------------------------------------------------------------------------


def airflow_api() -> Any:
    """(DAG, Asset, AssetAlias, EmptyOperator, BashOperator) of this Airflow."""
    if AIRFLOW_3:
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG, Asset, AssetAlias
    else:
        from airflow import DAG
        from airflow.datasets import Dataset as Asset
        from airflow.datasets import DatasetAlias as AssetAlias
        from airflow.operators.bash import BashOperator
        from airflow.operators.empty import EmptyOperator
    return DAG, Asset, AssetAlias, EmptyOperator, BashOperator


def make_etl(
    *, doc_md: str = "# ETL\n\nCopies the source.", alias: bool = False, **dag_kw: Any
) -> Any:
    dag_cls, asset, asset_alias, empty, bash = airflow_api()
    outlets: list[Any] = [asset("s3://bucket/out"), "weird://host/x"]
    if alias:
        outlets.append(asset_alias("daily_export"))
    with dag_cls(
        "etl",
        start_date=T0,
        schedule="@daily",
        catchup=False,
        max_active_runs=2,
        doc_md=doc_md,
        tags=["finance", "daily"],
        default_args={"owner": "alice"},
        **dag_kw,
    ) as dag:
        extract = bash(
            task_id="extract",
            bash_command="echo",
            inlets=[
                asset("postgres://db-host:5432/db/public/src"),
                entities.Dataset("hive", "db.t"),
                entities.Urn(JOB),
                S3_IN,
                42,
            ],
            retries=2,
            execution_timeout=dt.timedelta(minutes=5),
            doc_md="Reads the source.",
            owner="bob",
        )
        load = empty(task_id="load", outlets=outlets, trigger_rule="all_done")
        extract >> load
    return dag


def serialized(dag: Any) -> Any:
    """The DAG as the scheduler holds it."""
    from airflow.serialization import serialized_objects

    codec = getattr(serialized_objects, "DagSerialization", None)  # 3.2+
    if codec is not None:
        return codec.from_dict(codec.to_dict(dag))
    from airflow.serialization.serialized_objects import SerializedDAG

    return SerializedDAG.from_dict(SerializedDAG.to_dict(dag))


@pytest.fixture(params=["as_written", "serialized"])
def etl(request: pytest.FixtureRequest) -> Any:
    dag = make_etl()
    return dag if request.param == "as_written" else serialized(dag)


# -- task lineage ---------------------------------------------------------------------------------


def test_inlets_of_every_form(etl: Any) -> None:
    lineage = task_lineage(etl.task_dict["extract"])
    assert lineage.inlets == (PG, HIVE, S3_IN)
    assert lineage.upstream_jobs == (JOB,)
    assert lineage.outlets == ()
    assert len(lineage.warnings) == 1
    assert lineage.warnings[0].startswith("task etl.extract: inlet 42")


def test_outlets_with_an_unknown_scheme_are_kept_with_a_warning(etl: Any) -> None:
    lineage = task_lineage(etl.task_dict["load"])
    assert lineage.outlets == (S3_OUT, "urn:li:dataset:(urn:li:dataPlatform:weird,host/x,PROD)")
    assert len(lineage.warnings) == 1
    assert "task etl.load: outlet 'weird://host/x'" in lineage.warnings[0]


def test_entities_survive_the_dag_serializer() -> None:
    task = serialized(make_etl()).task_dict["extract"]
    # The serializer keeps str() of unknown objects: our entities print as their urn.
    assert HIVE in [i for i in task.inlets if isinstance(i, str)]
    assert HIVE in task_lineage(task).inlets


def test_config_cluster_dataset_pattern_and_asset_switch(tmp_path: Any) -> None:
    dag = make_etl()
    config = DatahubConfig(
        outbox_path=str(tmp_path), cluster="dev", dataset_pattern=AllowDeny(deny=("hive:.*",))
    )
    lineage = task_lineage(dag.task_dict["extract"], config=config)
    assert lineage.inlets == (
        "urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.src,DEV)",
        S3_IN,  # an explicit urn keeps its own env
    )
    no_assets = attrs.evolve(config, capture_airflow_assets=False, dataset_pattern=AllowDeny())
    lineage = task_lineage(dag.task_dict["extract"], config=no_assets)
    assert lineage.inlets == (HIVE, S3_IN)
    assert lineage.upstream_jobs == (JOB,)
    assert task_lineage(dag.task_dict["load"], config=no_assets).outlets == ()


def test_asset_urn_of_one_asset() -> None:
    _, asset, *_ = airflow_api()
    assert asset_urn(asset("s3://bucket/out")) == S3_OUT
    assert (
        asset_urn(asset("plain_name"))
        == "urn:li:dataset:(urn:li:dataPlatform:airflow,plain_name,PROD)"
    )
    assert asset_urn(object()) is None


def test_aliases_are_not_static_lineage() -> None:
    dag = make_etl(alias=True)
    lineage = task_lineage(dag.task_dict["load"])
    assert lineage.outlets[0] == S3_OUT
    assert not any("daily_export" in u for u in lineage.outlets)
    assert not any("daily_export" in w for w in lineage.warnings)


@pytest.mark.skipif(not AIRFLOW_3, reason="Asset references exist on Airflow 3")
def test_asset_references() -> None:
    from airflow.sdk import Asset

    dag_cls, *_, empty, _ = airflow_api()
    with dag_cls("refs", start_date=T0, schedule=None) as dag:
        empty(task_id="t", inlets=[Asset.ref(uri="s3://bucket/in"), Asset.ref(name="orders")])
    for version in (dag, serialized(dag)):
        lineage = task_lineage(version.task_dict["t"])
        assert lineage.inlets == (S3_IN,)
        assert len(lineage.warnings) == 1
        assert "Asset.ref(name='orders')" in lineage.warnings[0]


@attrs.frozen
class _Runtime:
    """What :func:`try_lineage.end_mcps` reads of the adapter's runtime: its mapper and config."""

    mapper: RunMapper = attrs.field(factory=lambda: RunMapper(cluster="prod"))
    config: DatahubConfig = attrs.field(factory=DatahubConfig)
    base_url: str | None = None


def _try_facts() -> TaskRunFacts:
    return TaskRunFacts(dag_id="etl", task_id="load", run_id="r1", try_number=1, start_ms=7)


# -- asset aliases resolved at task end -----------------------------------------------------------


@pytest.mark.skipif(not AIRFLOW_3, reason="the task SDK's RuntimeTaskInstance is 3.x")
def test_alias_outlets_resolved_from_the_runtime_task_instance() -> None:
    from airflow.sdk import Asset, AssetAlias
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from tests.airflow.conftest import make_runtime_ti

    dag = make_etl(alias=True)
    task = dag.task_dict["load"]
    ti = make_runtime_ti(task)
    events = OutletEventAccessors()
    ti._cached_template_context = {"outlet_events": events}
    assert resolved_alias_uris(ti) == ([], None)
    runtime = _Runtime()
    facts = _try_facts()
    start = try_lineage.declared(task, None)
    unchanged = try_lineage.at_end(task, ti, config=None, succeeded=True)
    assert try_lineage.end_mcps(runtime, task, facts, start=start, end=unchanged) == []

    events[AssetAlias("daily_export")].add(Asset("s3://bucket/2024-01-01"))
    events[AssetAlias("daily_export")].add(Asset("postgres://h:5432/db/public/agg"))
    events[Asset("s3://bucket/out")].extra["rows"] = 3  # a direct outlet's event: not an alias

    resolved = ["s3://bucket/2024-01-01", "postgres://h:5432/db/public/agg"]
    assert resolved_alias_uris(ti) == (resolved, None)
    day = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/2024-01-01,PROD)"
    agg = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.agg,PROD)"
    lineage = task_lineage(task, ti)
    assert lineage.outlets[0] == S3_OUT
    assert lineage.outlets[-2:] == (day, agg)

    end = try_lineage.at_end(task, ti, config=None, succeeded=True)
    mcps = try_lineage.end_mcps(runtime, task, facts, start=start, end=end)
    got = {(m.entity_urn, m.aspect_name): m.aspect_dict() for m in mcps}
    run_urn = runtime.mapper.task_run_urn("etl", "load", "r1")
    run_out = got[(run_urn, "dataProcessInstanceOutput")]
    assert run_out["outputs"][-2:] == [day, agg]
    assert run_out["outputEdges"][-1]["created"]["time"] == 7
    job = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),load)"
    assert got[(job, "dataJobInputOutput")]["outputDatasets"][-2:] == [day, agg]
    assert (day, "datasetKey") in got


def test_alias_event_uris_of_this_airflows_outlet_events() -> None:
    if AIRFLOW_3:
        from airflow.sdk import Asset, AssetAlias
        from airflow.sdk.execution_time.context import OutletEventAccessors
    else:
        from airflow.datasets import Dataset as Asset
        from airflow.datasets import DatasetAlias as AssetAlias
        from airflow.utils.context import OutletEventAccessors
    events = OutletEventAccessors()
    events[AssetAlias("a")].add(Asset("s3://bucket/x"))
    events[AssetAlias("b")].add(Asset("s3://bucket/x"))
    events[AssetAlias("b")].add(Asset("gs://bucket/y"))
    assert alias_event_uris(events) == ["s3://bucket/x", "gs://bucket/y"]
    assert alias_event_uris(OutletEventAccessors()) == []


def test_an_orm_instance_of_another_process_resolves_nothing_and_reads_no_db() -> None:
    dag = make_etl(alias=True)
    ti = make_orm_ti(dag.task_dict["load"], pid=-1)
    assert resolved_alias_uris(ti) == ([], None)
    assert task_lineage(dag.task_dict["load"], ti).outlets[0] == S3_OUT


# -- facts and templates --------------------------------------------------------------------------


def test_dag_facts_are_the_same_as_written_and_serialized() -> None:
    dag = make_etl()
    as_written, warnings = tpl.dag_facts(dag, base_url="http://af")
    assert tpl.dag_facts(serialized(dag), base_url="http://af") == (as_written, warnings)
    assert as_written.dag_id == "etl"
    assert as_written.schedule == "0 0 * * *"
    assert as_written.start_date == "2024-01-01T00:00:00+00:00"
    assert as_written.catchup is False
    assert as_written.max_active_runs == 2
    assert as_written.owners == ("alice", "bob")
    assert as_written.tags == ("daily", "finance")
    assert as_written.doc_md == "# ETL\n\nCopies the source."
    extract = next(t for t in as_written.tasks if t.task_id == "extract")
    assert extract.operator == "BashOperator"
    assert extract.retries == 2
    assert extract.execution_timeout == "0:05:00"
    assert extract.doc_md == "Reads the source."
    assert extract.owner == "bob"
    assert extract.trigger_rule == "all_success"
    assert extract.inlets == (PG, HIVE, S3_IN)
    assert extract.upstream_jobs == (JOB,)
    load = next(t for t in as_written.tasks if t.task_id == "load")
    assert load.upstream_task_ids == ("extract",)
    assert load.trigger_rule == "all_done"
    assert len(warnings) == 2


@pytest.mark.parametrize(
    ("schedule", "text"),
    [
        (None, "None"),
        ("@once", "@once"),
        ("@daily", "0 0 * * *"),
        ("5 4 * * *", "5 4 * * *"),
        (dt.timedelta(hours=1), "1:00:00"),
    ],
)
def test_schedule_text_is_the_timetable_summary(schedule: Any, text: str) -> None:
    dag_cls, *_, empty, _ = airflow_api()
    with dag_cls("s", start_date=T0, schedule=schedule) as dag:
        empty(task_id="t")
    assert compat.schedule_text(dag) == text
    assert compat.schedule_text(serialized(dag)) == text


def test_fileloc_relative_to_the_dags_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    dag = make_etl()
    folder = tmp_path / "dags"
    (folder / "team").mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    compat._dags_folder.cache_clear()
    try:
        dag.fileloc = str(folder / "team" / "etl.py")
        assert compat.relative_fileloc(dag) == "team/etl.py"
        dag.fileloc = "/elsewhere/etl.py"
        assert compat.relative_fileloc(dag) == "/elsewhere/etl.py"
    finally:
        compat._dags_folder.cache_clear()


def test_ui_links_follow_this_airflows_routes() -> None:
    if AIRFLOW_3:
        assert compat.dag_url("http://af/", "etl") == "http://af/dags/etl"
        assert compat.task_url("http://af", "etl", "load") == "http://af/dags/etl/tasks/load"
    else:
        assert compat.dag_url("http://af/", "etl") == "http://af/dags/etl/grid"
        assert compat.task_url("http://af", "etl", "load") == "http://af/dags/etl/grid?task_id=load"
    assert compat.dag_url(None, "etl") is None


def aspects(mcps: list[Any]) -> set[tuple[str, str]]:
    return {(m.entity_urn, m.aspect_name) for m in mcps}


def test_templates_of_a_real_dag() -> None:
    mcps = tpl.TemplateTracker().templates_for(make_etl(), base_url="http://af")
    flow = "urn:li:dataFlow:(airflow,etl,prod)"
    job = f"urn:li:dataJob:({flow},load)"
    assert {
        (flow, "dataFlowInfo"),
        (flow, "ownership"),
        (flow, "globalTags"),
        (flow, "status"),
        (flow, "browsePathsV2"),
        (job, "dataJobInfo"),
        (job, "dataJobInputOutput"),
        (S3_OUT, "datasetKey"),
        (PG, "datasetKey"),
    } <= aspects(mcps)
    info = next(m for m in mcps if m.aspect_name == "dataFlowInfo").aspect_dict()
    assert info["description"] == "Copies the source."
    assert info["externalUrl"].startswith("http://af/dags/etl")
    io = next(m for m in mcps if (m.entity_urn, m.aspect_name) == (job, "dataJobInputOutput"))
    assert io.aspect_dict()["inputDatajobs"] == [f"urn:li:dataJob:({flow},extract)"]


def test_templates_are_sent_once_then_again_only_after_a_change() -> None:
    tracker = tpl.TemplateTracker()
    assert tracker.templates_for(make_etl())
    assert tracker.templates_for(make_etl()) == []
    assert tracker.templates_for(serialized(make_etl())) == []
    edited = make_etl(doc_md="Now documented differently.")
    assert tracker.templates_for(edited)
    assert tracker.templates_for(edited) == []
    assert tracker.templates_for(make_etl())  # edited back: a change again


def test_templates_follow_the_config() -> None:
    tracker = tpl.TemplateTracker()
    config = DatahubConfig(outbox_path="/unused", capture_ownership_as_group=True)
    mcps = tracker.templates_for(make_etl(), config)
    owners = next(m for m in mcps if m.aspect_name == "ownership").aspect_dict()["owners"]
    assert owners[0]["owner"].startswith("urn:li:corpGroup:")
    no_keys = DatahubConfig(outbox_path="/unused", materialize_iolets=False)
    assert not any(
        m.entity_type == "dataset" for m in tpl.TemplateTracker().templates_for(make_etl(), no_keys)
    )


def test_an_unchanged_version_is_not_even_built() -> None:
    tracker = tpl.TemplateTracker()
    assert tracker.templates_for(make_etl(), version="v1")

    class Unreadable:
        dag_id = "etl"

        @property
        def tasks(self) -> Any:
            raise AssertionError("built although the version is unchanged")

    assert tracker.templates_for(Unreadable(), version="v1") == []
    assert tracker.templates_for(make_etl(), version="v2") == []  # same content, new version
    assert tracker.is_current("etl", "v2")


def test_only_one_of_many_racing_threads_gets_the_templates() -> None:
    tracker = tpl.TemplateTracker()
    dags = [make_etl() for _ in range(8)]
    results: list[int] = []
    barrier = threading.Barrier(len(dags))

    def worker(dag: Any) -> None:
        barrier.wait()
        results.append(len(tracker.templates_for(dag)))

    threads = [threading.Thread(target=worker, args=(d,)) for d in dags]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[:-1] == [0] * (len(dags) - 1)
    assert results.count(0) == len(dags) - 1


def test_the_tracker_is_bounded() -> None:
    tracker = tpl.TemplateTracker(max_dags=2)
    dag_cls, *_, empty, _ = airflow_api()
    made = []
    for name in ("a", "b", "c"):
        with dag_cls(name, start_date=T0, schedule=None) as dag:
            empty(task_id="t")
        made.append(dag)
        assert tracker.templates_for(dag)
    assert len(tracker) == 2
    assert tracker.templates_for(made[0])  # forgotten, so sent again
    assert tracker.templates_for(made[2]) == []


def test_a_broken_dag_gets_one_warning_and_no_templates(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")

    class Broken:
        dag_id = "broken_dag"

        @property
        def tasks(self) -> Any:
            raise RuntimeError("cannot list tasks")

    assert tpl.TemplateTracker().templates_for(Broken()) == []
    assert any("broken_dag" in r.getMessage() for r in caplog.records)


def test_dag_version_key() -> None:
    class Run:
        created_dag_version_id = "0190-abc"

    assert tpl.dag_version_key(Run()) == "0190-abc"
    assert tpl.dag_version_key(object()) is None


@pytest.mark.skipif(AIRFLOW_3, reason="Airflow 2 reads alias events from its DatasetEvent table")
def test_airflow2_alias_outlets_read_from_this_tries_dataset_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from airflow import settings
    from airflow.models import dataset as models
    from airflow.models.dataset import DatasetAliasModel, DatasetEvent, DatasetModel
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    # Only the tables the query touches (the full metadata needs the FAB user tables too).
    engine = create_engine("sqlite://")
    for table in (
        DatasetModel.__table__,
        DatasetAliasModel.__table__,
        DatasetEvent.__table__,
        models.alias_association_table,
        models.dataset_alias_dataset_event_assocation_table,
    ):
        table.create(engine)
    run_id = "scheduled__2024-01-01T00:00:00+00:00"
    with Session(engine) as session:
        alias = DatasetAliasModel(name="daily_export")
        resolved = DatasetModel(uri="s3://bucket/2024-01-01")
        direct = DatasetModel(uri="s3://bucket/out")
        earlier = DatasetModel(uri="s3://bucket/earlier-try")
        elsewhere = DatasetModel(uri="s3://bucket/other-task")
        session.add_all([alias, resolved, direct, earlier, elsewhere])
        session.flush()
        source = {
            "source_dag_id": "etl",
            "source_task_id": "load",
            "source_run_id": run_id,
            "source_map_index": -1,
        }
        via_alias = DatasetEvent(
            dataset_id=resolved.id, timestamp=T0 + dt.timedelta(hours=1), **source
        )
        via_alias.source_aliases.append(alias)
        older = DatasetEvent(dataset_id=earlier.id, timestamp=T0 - dt.timedelta(days=1), **source)
        older.source_aliases.append(alias)
        other_task = DatasetEvent(
            dataset_id=elsewhere.id,
            timestamp=T0 + dt.timedelta(hours=1),
            **{**source, "source_task_id": "extract"},
        )
        other_task.source_aliases.append(alias)
        not_alias = DatasetEvent(
            dataset_id=direct.id, timestamp=T0 + dt.timedelta(hours=1), **source
        )
        session.add_all([via_alias, older, other_task, not_alias])
        session.commit()
    monkeypatch.setattr(settings, "engine", engine)

    dag = make_etl(alias=True)
    task = dag.task_dict["load"]
    ti = make_orm_ti(task, run_id=run_id, pid=os.getpid(), start_date=T0)
    assert resolved_alias_uris(ti) == (["s3://bucket/2024-01-01"], None)
    day = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/2024-01-01,PROD)"
    assert task_lineage(task, ti).outlets[-1] == day

    elsewhere = make_orm_ti(task, run_id=run_id, pid=os.getpid() + 1, start_date=T0)
    assert resolved_alias_uris(elsewhere) == ([], None)


def test_state_dir_carries_fingerprints_to_the_next_process(tmp_path: Any) -> None:
    first = tpl.TemplateTracker(state_dir=tmp_path)
    assert first.templates_for(make_etl())
    next_process = tpl.TemplateTracker(state_dir=tmp_path)
    assert next_process.templates_for(make_etl()) == []
    edited = make_etl(doc_md="Edited between two runs.")
    assert tpl.TemplateTracker(state_dir=tmp_path).templates_for(edited)
    assert tpl.TemplateTracker(state_dir=tmp_path).templates_for(edited) == []
    assert len(list((tmp_path / "templates").iterdir())) == 1


def test_unchanged_templates_are_resent_after_the_refresh_period(tmp_path: Any) -> None:
    now = [1000.0]
    tracker = tpl.TemplateTracker(refresh_sec=60, clock=lambda: now[0])
    assert tracker.templates_for(make_etl(), version="v1")
    now[0] += 59
    assert tracker.templates_for(make_etl(), version="v1") == []
    now[0] += 2
    assert tracker.templates_for(make_etl(), version="v1")
    assert tracker.templates_for(make_etl(), version="v1") == []


def test_an_unusable_state_dir_only_costs_resending(tmp_path: Any) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    tracker = tpl.TemplateTracker(state_dir=blocker)
    assert tracker.templates_for(make_etl())
    assert tracker.templates_for(make_etl()) == []
    assert tpl.TemplateTracker(state_dir=blocker).templates_for(make_etl())


def test_the_process_tracker_keeps_its_state_under_the_outbox_path(tmp_path: Any) -> None:
    tpl.reset_trackers()
    try:
        config = DatahubConfig(outbox_path=str(tmp_path))
        assert tpl.templates_for(make_etl(), config)
        assert tpl.templates_for(make_etl(), config) == []
        assert tpl.get_tracker(config) is tpl.get_tracker(config)
        assert (tmp_path / "templates").is_dir()
        tpl.reset_trackers()  # a new process
        assert tpl.templates_for(make_etl(), config) == []
    finally:
        tpl.reset_trackers()
