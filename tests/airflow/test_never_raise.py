"""Nothing the listener meets may fail a task or stop the scheduler: each hook logs one line."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pytest

from datahub_airflow_listener.adapter import config as config_module
from datahub_airflow_listener.adapter.listener import DatahubListener
from tests.airflow.conftest import T0, call_hook, core_manager, make_dag_run, make_orm_ti


class Exploding:
    """Every attribute access raises (a half-initialised or foreign object)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} here")


class Weird:
    """Plausible names, impossible values."""

    dag_id = "etl"
    task_id = 42
    run_id = object()
    try_number = "two"
    map_index = None
    state = object()
    start_date = "yesterday"
    end_date = float("nan")
    task = Exploding()


BROKEN = [None, object(), Exploding(), Weird(), "a string", 17]

DAG_HOOKS = ["on_dag_run_running", "on_dag_run_success", "on_dag_run_failed"]
TASK_HOOKS = [
    "on_task_instance_running",
    "on_task_instance_success",
    "on_task_instance_failed",
    "on_task_instance_skipped",
]


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("datahub_airflow_listener") and r.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("hook", DAG_HOOKS + TASK_HOOKS)
@pytest.mark.parametrize("obj", BROKEN, ids=lambda o: type(o).__name__)
def test_broken_objects_never_raise(
    listener: DatahubListener,
    recorder: Any,
    caplog: pytest.LogCaptureFixture,
    hook: str,
    obj: Any,
) -> None:
    caplog.set_level(logging.DEBUG, logger="datahub_airflow_listener")
    offered = {"dag_run": obj, "msg": "x"} if hook in DAG_HOOKS else {"task_instance": obj}
    method = getattr(listener, hook)
    # As pluggy does: pass exactly the arguments the implementation declares.
    kwargs = {k: v for k, v in offered.items() if k in inspect.signature(method).parameters}
    method(**kwargs)
    assert len(_lines(caplog)) <= 1
    for line in _lines(caplog):
        assert "\n" not in line and hook in line


def test_a_failing_dispatcher_is_one_line_per_hook(
    registered: Any, recorder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")
    call_hook(core_manager(), "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    recorder.fail = True
    call_hook(core_manager(), "on_dag_run_success", dag_run=make_dag_run(state="success"))
    assert _lines(caplog) == [
        "datahub-airflow-listener: on_dag_run_success skipped: RuntimeError: dispatcher down"
    ]


def test_an_unreadable_config_never_raises(
    registered: Any,
    recorder: Any,
    monkeypatch: pytest.MonkeyPatch,
    dag: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each hook that needs the config logs one line naming itself and the cause; nothing is
    recorded; the hooks return normally (a raise would fail this test)."""
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")

    def broken() -> Any:
        raise OSError("airflow.cfg vanished")

    monkeypatch.setattr(config_module, "get_config", broken)
    from datahub_airflow_listener.adapter import recorder as recorder_module

    monkeypatch.setattr(recorder_module, "get_config", broken)
    ti = make_orm_ti(dag.get_task("extract"), state="success", start_date=T0)
    call_hook(core_manager(), "on_task_instance_success", task_instance=ti)
    call_hook(core_manager(), "on_starting", component=None)
    call_hook(core_manager(), "before_stopping", component=None)
    assert _lines(caplog) == [
        "datahub-airflow-listener: on_task_instance_success skipped: OSError: airflow.cfg vanished",
        "datahub-airflow-listener: on_starting skipped: OSError: airflow.cfg vanished",
    ]
    assert not recorder.built


def test_error_lines_stop_after_twenty(
    listener: DatahubListener,
    recorder: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")
    from datahub_airflow_listener.adapter import recorder as recorder_module

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("mapper exploded")

    monkeypatch.setattr(recorder_module.extract, "dag_run_facts", boom)
    for _ in range(50):
        listener.on_dag_run_running(dag_run=make_dag_run())
    lines = _lines(caplog)
    assert len(lines) == 20
    assert lines[-1].endswith("(further errors are logged at DEBUG)")


def test_real_objects_with_odd_values_still_emit(registered: Any, recorder: Any, dag: Any) -> None:
    """A real task instance missing most values (API server view) is still recorded."""
    ti = make_orm_ti(dag.get_task("extract"), state="failed")
    ti.start_date = ti.end_date = None
    ti.hostname = None
    ti.try_number = 0
    call_hook(core_manager(), "on_task_instance_failed", task_instance=ti, error=None)
    statuses = [s for _, s, _ in recorder.events()]
    assert statuses == ["STARTED", "COMPLETE"]
