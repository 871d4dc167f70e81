"""Hooks to disk through the real path: connection -> hook settings -> transport -> outbox.

No stand-ins: the runtime builds the transport's dispatcher, the sink's transport comes from
the connection found in AIRFLOW_CONN_*, and ``before_stopping`` flushes with the configured
deadline. What the DAG run produced is read back from the destination.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.adapter import config as config_module
from datahub_airflow_listener.adapter import runtime as runtime_module
from datahub_airflow_listener.domain.runs import RunMapper
from tests.airflow.conftest import T0, call_hook, core_manager, make_dag_run, make_orm_ti

RUN_ID = "scheduled__2024-01-01T00:00:00+00:00"
MAPPER = RunMapper(cluster="prod")
TOKEN = "tok-should-never-be-written"


@pytest.fixture
def real_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The default (transport) dispatcher with its outbox under tmp_path."""
    import os

    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "AIRFLOW__DATAHUB__")):
            monkeypatch.delenv(name)
    outbox = tmp_path / "datahub"
    monkeypatch.setenv("AIRFLOW__DATAHUB__OUTBOX_PATH", str(outbox))
    config_module.reset_config()
    runtime_module.reset_runtime()
    yield outbox
    runtime = runtime_module.get_runtime(create=False)
    if runtime is not None and runtime._dispatcher is not None:
        runtime._dispatcher.close(1.0)  # type: ignore[attr-defined]
    config_module.reset_config()
    runtime_module.reset_runtime()


def _run_a_dag(dag: Any) -> None:
    manager = core_manager()
    call_hook(manager, "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    ti = make_orm_ti(dag.get_task("extract"), state="success", start_date=T0, end_date=T0)
    ti.start_date = None  # marked success in the UI: opened and closed by this hook
    call_hook(manager, "on_task_instance_success", previous_state=None, task_instance=ti)
    call_hook(manager, "on_dag_run_success", dag_run=make_dag_run(state="success"), msg="success")
    call_hook(manager, "before_stopping", component=object())


def test_file_connection_receives_the_runs(
    registered: Any, real_runtime: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dag: Any
) -> None:
    from datahub_airflow_listener.transport.file import read_file_form

    out = tmp_path / "metadata.json"
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAHUB_REST_DEFAULT",
        json.dumps({"conn_type": "datahub-file", "host": str(out)}),
    )
    _run_a_dag(dag)
    written = read_file_form(out)
    urns = {m["entityUrn"] for m in written}
    assert MAPPER.dag_run_urn("etl", RUN_ID) in urns
    assert MAPPER.task_run_urn("etl", "extract", RUN_ID) in urns
    statuses = [
        m["aspect"]["json"]["status"]
        for m in written
        if m["aspectName"] == "dataProcessInstanceRunEvent"
    ]
    assert statuses.count("COMPLETE") == 2
    outbox = real_runtime / runtime_module.OUTBOX_FILENAME
    assert stat.S_IMODE(outbox.stat().st_mode) & 0o077 == 0  # owner only


def test_no_connection_means_the_local_store(registered: Any, real_runtime: Path, dag: Any) -> None:
    from datahub_airflow_listener.transport import LocalConfig, LocalStore

    _run_a_dag(dag)
    store = LocalStore(LocalConfig(directory=str(real_runtime)))
    try:
        urns = {m.urn for m in store.iter_mcps()}
    finally:
        store.close()
    assert MAPPER.dag_run_urn("etl", RUN_ID) in urns


def test_the_token_reaches_neither_the_outbox_nor_the_logs(
    registered: Any,
    real_runtime: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    dag: Any,
) -> None:
    """A GMS that is down: events stay in the outbox, which must not hold the token."""
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAHUB_REST_DEFAULT",
        json.dumps(
            {
                "conn_type": "datahub-rest",
                "host": "http://127.0.0.1:9",
                "password": TOKEN,
                "extra": {"timeout_sec": 0.5, "retry_max_times": 0},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW__DATAHUB__FLUSH_TIMEOUT_SEC", "0.5")
    config_module.reset_config()
    _run_a_dag(dag)
    assert TOKEN not in caplog.text
    for path in real_runtime.iterdir():
        assert TOKEN.encode() not in path.read_bytes(), path
