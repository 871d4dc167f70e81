"""Fixtures for the listener contract on whichever Airflow this venv has (2.10, 2.11, 3.x).

Airflow reads AIRFLOW_HOME when it is first imported, so this module points it at a fresh
temporary directory before anything imports Airflow: the tests never touch a real deployment.
Airflow objects are real (operators in a DAG, ORM DagRun / TaskInstance, the task SDK's
RuntimeTaskInstance on 3.x); events are captured by a recording dispatcher instead of the
transport.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_HOME = tempfile.mkdtemp(prefix="dhal-airflow-home-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
for _name in list(os.environ):
    if _name.startswith(("AIRFLOW__DATAHUB__", "AIRFLOW_CONN_DATAHUB")):
        del os.environ[_name]

import logging  # noqa: E402 -- AIRFLOW_HOME must be set before Airflow is imported
import uuid  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import airflow  # noqa: E402
import attrs  # noqa: E402
import pytest  # noqa: E402

from datahub_airflow_listener.adapter import config as config_module  # noqa: E402
from datahub_airflow_listener.adapter import runtime as runtime_module  # noqa: E402
from datahub_airflow_listener.adapter.listener import DatahubListener  # noqa: E402

AIRFLOW_3 = airflow.__version__.split(".", 1)[0] >= "3"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


# -- the recording seam ---------------------------------------------------------------------------


@attrs.define
class RecordingDispatcher:
    """Stands in for the transport's dispatcher: keeps the MCP objects the listener submitted.

    Synchronous and object-level, for precise assertions on what each hook hands over; the
    real dispatcher and transports are exercised in test_delivery.py.
    """

    sinks: Any
    config: Any
    mcps: list[Any] = attrs.field(factory=list)
    flushes: list[tuple[float, bool]] = attrs.field(factory=list)
    fail: bool = False
    short_lived: bool = False

    def submit(self, mcps: Sequence[Any]) -> None:
        if self.fail:
            raise RuntimeError("dispatcher down")
        self.mcps.extend(mcps)

    def flush(self, timeout: float, *, only_own: bool = False) -> None:
        self.flushes.append((timeout, only_own))

    # -- views ------------------------------------------------------------------------------------

    def events(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(urn, status, run event) of every run event, in order."""
        out = []
        for mcp in self.mcps:
            if mcp.aspect_name == "dataProcessInstanceRunEvent":
                body = mcp.aspect_dict()
                out.append((mcp.entity_urn, body["status"], body))
        return out

    def aspects(self, urn: str, name: str) -> list[dict[str, Any]]:
        return [m.aspect_dict() for m in self.mcps if m.entity_urn == urn and m.aspect_name == name]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RecordingDispatcher]:
    """A fresh config (outbox under tmp_path) and runtime whose dispatcher records."""
    monkeypatch.setenv("AIRFLOW__DATAHUB__OUTBOX_PATH", str(tmp_path / "datahub"))
    made: list[RecordingDispatcher] = []

    def factory(sinks: Any, config: Any) -> RecordingDispatcher:
        made.append(RecordingDispatcher(sinks, config))
        return made[-1]

    config_module.reset_config()
    runtime_module.reset_runtime(dispatcher_factory=factory)
    proxy = _LazyRecorder(made)
    yield proxy  # type: ignore[misc]
    config_module.reset_config()
    runtime_module.reset_runtime()


class _LazyRecorder:
    """The recording dispatcher the runtime builds on first submit (or an empty stand-in)."""

    def __init__(self, made: list[RecordingDispatcher]) -> None:
        self._made = made

    def __getattr__(self, name: str) -> Any:
        target = self._made[-1] if self._made else RecordingDispatcher(None, None)
        return getattr(target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._made[-1], name, value)

    @property
    def built(self) -> bool:
        return bool(self._made)


@pytest.fixture
def listener() -> DatahubListener:
    return DatahubListener()


# -- Airflow's listener managers ------------------------------------------------------------------


def core_manager() -> Any:
    from airflow.listeners.listener import get_listener_manager

    return get_listener_manager()


def sdk_manager() -> Any | None:
    """The task SDK's own manager (3.2+); 3.0/3.1 task runners use the core one."""
    try:
        from airflow.sdk.listener import get_listener_manager
    except ImportError:
        return None
    return get_listener_manager()


@pytest.fixture
def registered(listener: DatahubListener) -> Iterator[DatahubListener]:
    """``listener`` as the only listener of Airflow's manager(s); restored afterwards."""
    managers = [m for m in (core_manager(), sdk_manager()) if m is not None]
    saved = [list(m.pm.get_plugins()) for m in managers]
    for manager in managers:
        manager.clear()
        manager.add_listener(listener)
    yield listener
    for manager, plugins in zip(managers, saved, strict=True):
        manager.clear()
        for plugin in plugins:
            manager.add_listener(plugin)


def call_hook(manager: Any, name: str, **kwargs: Any) -> Any:
    """Call hook ``name`` the way Airflow does: by keyword, every argument of its spec."""
    caller = getattr(manager.hook, name)
    spec = getattr(caller, "spec", None)
    if spec is not None:
        for arg in spec.argnames:
            kwargs.setdefault(arg, None)
    return caller(**kwargs)


def task_manager() -> Any:
    """The manager that fires task hooks in a task process on this version."""
    return sdk_manager() or core_manager()


# -- real Airflow objects -------------------------------------------------------------------------


def make_dag() -> Any:
    """extract >> load (with iolets), and a branch target never run."""
    if AIRFLOW_3:
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG
    else:
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator
    with DAG("etl", start_date=T0, schedule=None) as dag:
        extract = EmptyOperator(
            task_id="extract",
            inlets=["urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.src,PROD)"],
        )
        load = EmptyOperator(
            task_id="load",
            outlets=["urn:li:dataset:(urn:li:dataPlatform:s3,bucket/out,PROD)"],
        )
        skipped = EmptyOperator(task_id="skipped")
        extract >> [load, skipped]
    return dag


def make_dag_run(
    *, state: str = "running", run_id: str = "scheduled__2024-01-01T00:00:00+00:00", **kw: Any
) -> Any:
    from airflow.models.dagrun import DagRun

    values: dict[str, Any] = {
        "dag_id": "etl",
        "run_id": run_id,
        "run_type": run_id.split("__", 1)[0],
        "start_date": T0 + timedelta(minutes=1),
        "state": state,
        "conf": {"secret_value": "never sent", "limit": 5},
    }
    if AIRFLOW_3:
        values.update(logical_date=T0, run_after=T0)
    else:
        values.update(execution_date=T0)
    values.update(kw)
    dag_run = DagRun(**values)
    if state in {"success", "failed"}:  # setting the state stamped "now"
        dag_run.end_date = kw.get("end_date", T0 + timedelta(minutes=5))
    return dag_run


def make_orm_ti(
    task: Any, *, run_id: str = "scheduled__2024-01-01T00:00:00+00:00", **kw: Any
) -> Any:
    """An ORM TaskInstance as the scheduler / API server (or 2.x task process) sees it."""
    from airflow.models.taskinstance import TaskInstance

    extra = {"dag_version_id": uuid.uuid4()} if AIRFLOW_3 else {}
    ti = TaskInstance(task=task, run_id=run_id, **extra)
    ti.try_number = 1
    for name, value in kw.items():
        setattr(ti, name, value)
    return ti


def make_runtime_ti(task: Any, *, try_number: int = 1, **kw: Any) -> Any:
    """Airflow 3's task-SDK RuntimeTaskInstance, as a task process's hooks receive it."""
    from airflow.sdk.api.datamodels._generated import DagRun as SDKDagRun
    from airflow.sdk.api.datamodels._generated import TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    # model_construct: the generated models gain fields release by release (extra="forbid").
    sdk_run = SDKDagRun.model_construct(
        dag_id="etl",
        run_id="scheduled__2024-01-01T00:00:00+00:00",
        logical_date=T0,
        data_interval_start=T0,
        data_interval_end=T0,
        run_after=T0,
        start_date=T0 + timedelta(minutes=1),
        end_date=None,
        run_type="scheduled",
        state="running",
        conf={},
        consumed_asset_events=[],
        partition_key=None,
    )
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "task_id": task.task_id,
        "dag_id": "etl",
        "run_id": "scheduled__2024-01-01T00:00:00+00:00",
        "try_number": try_number,
        "dag_version_id": uuid.uuid4(),
        "map_index": -1,
        "hostname": "worker-1",
        "queue": "default",
        "task": task,
        "max_tries": 1,
        "start_date": T0 + timedelta(minutes=2),
        "state": "running",
        "_ti_context_from_server": TIRunContext.model_construct(dag_run=sdk_run, max_tries=1),
    }
    values.update(kw)
    return RuntimeTaskInstance.model_construct(**values)


@pytest.fixture
def dag() -> Any:
    return make_dag()


@pytest.fixture
def in_task_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Pretend to be an Airflow 3 task runner: SUPERVISOR_COMMS is set.

    The file connection comes from an AIRFLOW_CONN_* variable, which the task SDK's secrets
    chain reads before it would ask the supervisor.
    """
    if not AIRFLOW_3:
        pytest.skip("the task SDK exists on Airflow 3 only")
    from airflow.sdk.execution_time import task_runner

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", object(), raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAHUB_REST_DEFAULT",
        f'{{"conn_type": "datahub-file", "host": "{tmp_path / "out.json"}"}}',
    )
    yield


@pytest.fixture
def listener_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="datahub_airflow_listener")
    return caplog
