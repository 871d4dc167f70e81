"""The listener registers with the installed Airflow's listener manager and maps its hooks.

Runs unchanged on 2.10, 2.11 and 3.0-3.3 (tox: airflow33, airflow211, contract-airflow*).
"""

from __future__ import annotations

import os
from typing import Any

import pluggy
import pytest

from datahub_airflow_listener.adapter import compat
from datahub_airflow_listener.adapter.listener import DatahubListener, hookimpl
from datahub_airflow_listener.domain.runs import RunMapper
from tests.airflow.conftest import (
    AIRFLOW_3,
    T0,
    call_hook,
    core_manager,
    make_dag_run,
    make_orm_ti,
    make_runtime_ti,
    sdk_manager,
    task_manager,
)

RUN_ID = "scheduled__2024-01-01T00:00:00+00:00"
MAPPER = RunMapper(cluster="prod")
DAG_RUN_URN = MAPPER.dag_run_urn("etl", RUN_ID)
EXTRACT_URN = MAPPER.task_run_urn("etl", "extract", RUN_ID)
LOAD_URN = MAPPER.task_run_urn("etl", "load", RUN_ID)

HOOKS = {
    "on_starting",
    "before_stopping",
    "on_dag_run_running",
    "on_dag_run_success",
    "on_dag_run_failed",
    "on_task_instance_running",
    "on_task_instance_success",
    "on_task_instance_failed",
    "on_task_instance_skipped",
}


def _managers() -> list[Any]:
    return [m for m in (core_manager(), sdk_manager()) if m is not None]


# -- registration ---------------------------------------------------------------------------------


def test_the_installed_plugin_puts_its_listener_in_airflows_manager() -> None:
    """Airflow loads the plugin through its entry point and registers our listener object."""
    for manager in _managers():
        plugins = manager.pm.get_plugins()
        assert any(isinstance(p, DatahubListener) for p in plugins), plugins


def test_listener_registers_on_this_airflow_with_every_hook(listener: DatahubListener) -> None:
    for manager in _managers():
        manager.clear()
        manager.add_listener(listener)
        names = {caller.name for caller in manager.pm.get_hookcallers(listener)}
        # The core manager knows every hook but "skipped" on 2.x (unverified there: no spec).
        assert HOOKS - {"on_dag_run_running", "on_dag_run_success", "on_dag_run_failed"} <= names
        if manager is core_manager():
            assert HOOKS - {"on_task_instance_skipped"} <= names


def test_every_hook_declares_only_arguments_its_spec_has(listener: DatahubListener) -> None:
    """pluggy rejects an implementation with an argument the spec lacks (no `session`)."""
    for manager in _managers():
        manager.clear()
        manager.add_listener(listener)
        for caller in manager.pm.get_hookcallers(listener):
            if caller.spec is None:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is listener:
                    assert set(impl.argnames) <= set(caller.spec.argnames), caller.name
                    assert "session" not in impl.argnames


def test_an_argument_missing_from_the_spec_would_break_registration() -> None:
    """What the previous test guards against: pluggy refuses such a listener outright."""

    class Broken:
        @hookimpl
        def on_dag_run_running(self, dag_run: Any, not_in_spec: Any) -> None:
            raise AssertionError("never called")

    manager = core_manager()
    with pytest.raises(pluggy.PluginValidationError):
        manager.pm.register(Broken())


def test_skipped_hook_without_a_spec_does_not_break_registration(listener: DatahubListener) -> None:
    manager = core_manager()
    manager.clear()
    manager.add_listener(listener)
    caller = manager.pm.hook.on_task_instance_skipped
    if compat.skipped_hook_fires():
        assert caller.spec is not None
    elif not AIRFLOW_3:
        assert caller.spec is None  # 2.x: kept unverified, never called by Airflow
    assert manager.pm.is_registered(listener)
    assert any(impl.plugin is listener for impl in caller.get_hookimpls())


# -- task tries through the manager ---------------------------------------------------------------


def _as_task_process(ti: Any) -> Any:
    """2.x: the raw task process records its pid on the instance."""
    if not AIRFLOW_3:
        ti.pid = os.getpid()
    return ti


@pytest.fixture
def task_process(request: pytest.FixtureRequest) -> None:
    if AIRFLOW_3:
        request.getfixturevalue("in_task_process")


@pytest.mark.usefixtures("task_process")
def test_a_task_process_sends_its_tries_lineage_declared_then_as_execute_left_it(
    registered: Any, recorder: Any, dag: Any
) -> None:
    """The try's record (instance, STARTED, COMPLETE) comes from the metadata database; its
    lineage only from the process that ran it: declared at the start, again at the end when
    ``execute()`` changed it (on the run and on its DataJob)."""
    load = dag.get_task("load")
    if AIRFLOW_3:
        ti = make_runtime_ti(load, try_number=2)
    else:
        ti = _as_task_process(make_orm_ti(load, start_date=T0, state="running"))
        ti.try_number = 2
    manager = task_manager()
    call_hook(manager, "on_task_instance_running", previous_state=None, task_instance=ti)
    declared = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/out,PROD)"
    assert {(m.entity_urn, m.aspect_name) for m in recorder.mcps} == {
        (LOAD_URN, "dataProcessInstanceOutput")
    }
    assert recorder.aspects(LOAD_URN, "dataProcessInstanceOutput")[0]["outputs"] == [declared]
    recorder.mcps.clear()
    extra = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/extra,PROD)"
    load.outlets = [*load.outlets, extra]  # what execute() may do
    ti.state = "success"
    call_hook(manager, "on_task_instance_success", previous_state="running", task_instance=ti)

    assert recorder.events() == []
    job = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),load)"
    assert {(m.entity_urn, m.aspect_name) for m in recorder.mcps} == {
        (LOAD_URN, "dataProcessInstanceOutput"),
        (job, "dataJobInputOutput"),
        (extra, "datasetKey"),
        (declared, "datasetKey"),
        (declared, "operation"),  # the try succeeded: it wrote its outputs
        (extra, "operation"),
    }
    (operation,) = recorder.aspects(extra, "operation")
    assert operation["operationType"] == "CREATE"
    assert operation["customProperties"]["task_id"] == "load"
    (out,) = recorder.aspects(LOAD_URN, "dataProcessInstanceOutput")
    assert out["outputs"] == [declared, extra]
    (job_io,) = recorder.aspects(job, "dataJobInputOutput")
    assert job_io["outputDatasets"] == [declared, extra]
    assert job_io["inputDatajobs"] == [
        "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),extract)"
    ]


@pytest.mark.usefixtures("task_process")
def test_a_task_process_whose_lineage_did_not_change_sends_it_once(
    registered: Any, recorder: Any, dag: Any
) -> None:
    task = dag.get_task("load")
    ti = make_runtime_ti(task) if AIRFLOW_3 else _as_task_process(make_orm_ti(task, start_date=T0))
    manager = task_manager()
    call_hook(manager, "on_task_instance_running", previous_state=None, task_instance=ti)
    ti.state = "failed"
    call_hook(manager, "on_task_instance_failed", task_instance=ti, error=RuntimeError("boom"))
    assert [(m.entity_urn, m.aspect_name) for m in recorder.mcps] == [
        (LOAD_URN, "dataProcessInstanceOutput")
    ]


@pytest.mark.usefixtures("task_process")
def test_a_task_process_without_lineage_sends_nothing(
    registered: Any, recorder: Any, dag: Any
) -> None:
    task = dag.get_task("skipped")
    ti = make_runtime_ti(task) if AIRFLOW_3 else _as_task_process(make_orm_ti(task, start_date=T0))
    manager = task_manager()
    call_hook(manager, "on_task_instance_running", previous_state=None, task_instance=ti)
    ti.state = "success"
    call_hook(manager, "on_task_instance_success", previous_state="running", task_instance=ti)
    assert not recorder.built


@pytest.mark.parametrize(
    ("state", "result"), [("up_for_retry", "UP_FOR_RETRY"), ("failed", "FAILURE")]
)
def test_a_try_ended_by_the_scheduler_is_transcribed_at_its_recorded_times(
    registered: Any, recorder: Any, dag: Any, state: str, result: str
) -> None:
    """The scheduler's failure hook (heartbeat timeout, a killed task): the try's whole record
    at the database's times, identical to what any other process would send."""
    end = T0.replace(minute=7)
    ti = make_orm_ti(dag.get_task("load"), state=state, start_date=T0, end_date=end)
    ti.hostname = "worker-1"
    ti.try_number = 3
    call_hook(core_manager(), "on_task_instance_failed", task_instance=ti, error=None)
    events = recorder.events()
    assert [(u, s) for u, s, _ in events] == [(LOAD_URN, "STARTED"), (LOAD_URN, "COMPLETE")]
    started, complete = events[0][2], events[1][2]
    assert started["timestampMillis"] == int(T0.timestamp() * 1000)
    assert complete["timestampMillis"] == int(end.timestamp() * 1000)
    assert complete["durationMillis"] == 7 * 60 * 1000
    assert started["attempt"] == complete["attempt"] == 3
    assert complete["result"] == {"type": result, "nativeResultType": state}
    (rel,) = recorder.aspects(LOAD_URN, "dataProcessInstanceRelationships")
    assert rel["parentInstance"] == DAG_RUN_URN
    assert rel["upstreamInstances"] == [EXTRACT_URN]
    assert rel["parentTemplate"] == "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),load)"
    (props,) = recorder.aspects(LOAD_URN, "dataProcessInstanceProperties")
    assert props["customProperties"]["try_number"] == "3"
    assert props["customProperties"]["hostname"] == "worker-1"
    assert "/dags/etl/" in props["externalUrl"]
    # The same hook again (a restarted scheduler would re-send identical events; this one
    # remembers it sent them).
    call_hook(core_manager(), "on_task_instance_failed", task_instance=ti, error=None)
    assert len(recorder.events()) == 2


def test_marked_success_in_the_ui_before_it_ran_opens_and_closes_it(
    registered: Any, recorder: Any, dag: Any
) -> None:
    """API server: ORM instance, never ran on a worker (marking stamps start = end = now)."""
    ti = make_orm_ti(dag.get_task("load"), state="success", start_date=T0, end_date=T0)
    ti.hostname = ""
    call_hook(core_manager(), "on_task_instance_success", previous_state=None, task_instance=ti)
    events = recorder.events()
    assert [s for _, s, _ in events] == ["STARTED", "COMPLETE"]
    assert events[0][2]["timestampMillis"] == int(T0.timestamp() * 1000)
    assert events[1][2]["timestampMillis"] > events[0][2]["timestampMillis"]
    # lineage comes only from a process that ran the try
    assert recorder.aspects(LOAD_URN, "dataProcessInstanceOutput") == []


# -- DAG runs -------------------------------------------------------------------------------------


def test_dag_run_running_emits_the_flow_instance(registered: Any, recorder: Any) -> None:
    dag_run = make_dag_run()
    call_hook(core_manager(), "on_dag_run_running", dag_run=dag_run, msg="started")
    (urn, status, body) = recorder.events()[0]
    assert (urn, status) == (DAG_RUN_URN, "STARTED")
    assert body["timestampMillis"] == int(dag_run.start_date.timestamp() * 1000)
    (props,) = recorder.aspects(DAG_RUN_URN, "dataProcessInstanceProperties")
    assert props["type"] == "BATCH_SCHEDULED"
    custom = props["customProperties"]
    assert custom["run_type"] == "scheduled"
    assert custom["conf_keys"] == "limit,secret_value"
    assert "never sent" not in str(recorder.mcps)
    (rel,) = recorder.aspects(DAG_RUN_URN, "dataProcessInstanceRelationships")
    assert rel["parentTemplate"] == "urn:li:dataFlow:(airflow,etl,prod)"


def test_dag_run_end_without_a_session_still_completes(registered: Any, recorder: Any) -> None:
    """A DagRun not attached to a session: no task instances to read, the run still ends."""
    dag_run = make_dag_run(state="failed")
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    statuses = [(u, s) for u, s, _ in recorder.events()]
    assert statuses == [(DAG_RUN_URN, "STARTED"), (DAG_RUN_URN, "COMPLETE")]
    body = recorder.events()[-1][2]
    assert body["result"] == {"type": "FAILURE", "nativeResultType": "failed"}
    assert body["durationMillis"] == 4 * 60 * 1000


def test_dag_run_started_is_not_resent_by_the_process_that_sent_it(
    registered: Any, recorder: Any
) -> None:
    call_hook(core_manager(), "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    call_hook(
        core_manager(), "on_dag_run_success", dag_run=make_dag_run(state="success"), msg="success"
    )
    assert [s for _, s, _ in recorder.events()] == ["STARTED", "COMPLETE"]


def test_dags_test_emits_the_dag_run_start_at_the_first_task_once(
    registered: Any, recorder: Any, dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airflow dags test`` fires no running hook; its run's start_date is its logical date."""
    dag_run = make_dag_run(run_id="manual__2024-01-01T00:00:00+00:00", start_date=T0)
    if AIRFLOW_3:
        from airflow.sdk.execution_time import task_runner

        class InProcessSupervisorComms:  # the class dags test installs on 3.1+
            pass

        monkeypatch.setattr(
            task_runner, "SUPERVISOR_COMMS", InProcessSupervisorComms(), raising=False
        )
    manager = core_manager()
    for task_id in ("extract", "load"):
        ti = make_orm_ti(dag.get_task(task_id), run_id=dag_run.run_id, start_date=T0)
        ti.dag_run = dag_run
        ti.start_date = T0.replace(minute=10)
        _as_task_process(ti)
        call_hook(manager, "on_task_instance_running", previous_state=None, task_instance=ti)
    urn = MAPPER.dag_run_urn("etl", dag_run.run_id)
    starts = [body for u, s, body in recorder.events() if u == urn]
    assert len(starts) == 1
    # The first task's start, not the logical date dags test puts in start_date.
    assert starts[0]["timestampMillis"] == int(T0.replace(minute=10).timestamp() * 1000)
    assert recorder.aspects(urn, "dataProcessInstanceProperties")[0]["type"] == "BATCH_AD_HOC"


# -- lifecycle ------------------------------------------------------------------------------------


def test_before_stopping_waits_at_most_the_configured_exit_wait(
    registered: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datahub_airflow_listener.adapter import config

    monkeypatch.setenv("AIRFLOW__DATAHUB__EXIT_WAIT_MS", "30")
    config.reset_config()
    call_hook(core_manager(), "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    call_hook(core_manager(), "before_stopping", component=object())
    assert recorder.flushes == [(0.03, True)]  # a stopping process: its own events


def test_before_stopping_without_events_builds_nothing(registered: Any, recorder: Any) -> None:
    call_hook(core_manager(), "on_starting", component=object())
    call_hook(core_manager(), "before_stopping", component=object())
    assert not recorder.built


@pytest.mark.usefixtures("task_process")
def test_dataset_pattern_filters_the_run_and_the_job_alike(
    registered: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One filter, one key: what the DataJob keeps, the task run keeps.

    A non-dataset outlet (an mlModel) is not subject to the dataset pattern, and a name with
    a reserved character is matched as written, not percent-encoded.
    """
    from datahub_airflow_listener.adapter import config as config_module

    monkeypatch.setenv(
        "AIRFLOW__DATAHUB__DATASET_PATTERN", '{"allow": ["postgres:db\\\\.public\\\\.a,b"]}'
    )
    config_module.reset_config()
    if AIRFLOW_3:
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG
    else:
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator
    kept = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.a%2Cb,PROD)"
    model = "urn:li:mlModel:(urn:li:dataPlatform:mlflow,churn,PROD)"
    dropped = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/out,PROD)"
    with DAG("etl", start_date=T0, schedule=None):
        load = EmptyOperator(task_id="load", outlets=[kept, model, dropped])
    ti = make_runtime_ti(load) if AIRFLOW_3 else _as_task_process(make_orm_ti(load, start_date=T0))
    call_hook(task_manager(), "on_task_instance_running", previous_state=None, task_instance=ti)

    (run_out,) = recorder.aspects(LOAD_URN, "dataProcessInstanceOutput")
    job = "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl,prod),load)"
    job_outputs = [a["outputDatasets"] for a in recorder.aspects(job, "dataJobInputOutput")]
    assert run_out["outputs"] == [kept, model]
    assert job_outputs in ([], [[kept, model]])  # templates are sent by the DAG-run start


@pytest.mark.usefixtures("in_task_process")
def test_a_task_process_prepares_nothing_on_starting(registered: Any, recorder: Any) -> None:
    """It usually sends nothing: no config read, no connection resolved through the
    supervisor, no sender built until a hook has something to send."""
    from datahub_airflow_listener.adapter import runtime as runtime_module

    call_hook(task_manager(), "on_starting", component=object())
    assert runtime_module.get_runtime(create=False) is None
    assert not recorder.built
