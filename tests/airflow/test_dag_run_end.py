"""No run left open: the DAG-run end hook closes task tries, inside the scheduler's transaction.

Real Airflow ORM rows in an in-memory SQLite database (only the tables a DagRun and its task
instances need). The scheduler's own guard against commits (``prohibit_commit``, the source
of "UNEXPECTED COMMIT - THIS WILL BREAK HA LOCKS!") is active while the hook runs, and every
flush or commit of the session is counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from datahub_airflow_listener.domain.runs import RunMapper
from tests.airflow.conftest import AIRFLOW_3, T0, call_hook, core_manager

RUN_ID = "scheduled__2024-01-01T00:00:00+00:00"
MAPPER = RunMapper(cluster="prod")
START = T0 + timedelta(minutes=1)
END = T0 + timedelta(minutes=9)


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000)


# task_id -> (state, hostname, start, end)
ROWS: dict[str, tuple[str | None, str, Any, Any]] = {
    "extract": ("success", "worker-1", START, START + timedelta(minutes=1)),  # its own hook
    "load": ("failed", "worker-1", START + timedelta(minutes=2), END),  # killed on last try
    "report": ("upstream_failed", "", None, END),
    "left": ("success", "", END, END),  # EmptyOperator under the scheduler: never ran
    "right": ("skipped", "", None, END),  # skipped by a branch
    "slow": ("running", "worker-2", START, None),  # abandoned when the run was marked failed
    "later": (None, "", None, None),  # never scheduled
}


@pytest.fixture(scope="module")
def engine() -> Any:
    import airflow.models
    from airflow.models.base import Base
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.tasklog import LogTemplate

    airflow.models.import_all_models()
    eng = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    tables = [LogTemplate.__table__, DagRun.__table__, TaskInstance.__table__]
    Base.metadata.create_all(eng, tables=tables)
    return eng


@pytest.fixture
def session(engine: Any) -> Iterator[Session]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance

    with engine.begin() as conn:
        conn.execute(TaskInstance.__table__.delete())
        conn.execute(DagRun.__table__.delete())
        run = {
            "dag_id": "etl",
            "run_id": RUN_ID,
            "run_type": "scheduled",
            "state": "failed",
            "start_date": START,
            "end_date": END,
            "clear_number": 0,
            "queued_at": T0,
        }
        run.update({"logical_date": T0, "run_after": T0} if AIRFLOW_3 else {"execution_date": T0})
        conn.execute(insert(DagRun.__table__).values(**run))
        for task_id, (state, host, start, end) in ROWS.items():
            row = {
                "task_id": task_id,
                "dag_id": "etl",
                "run_id": RUN_ID,
                "map_index": -1,
                "state": state,
                "try_number": 2 if task_id == "load" else (1 if host or state else 0),
                "max_tries": 1,
                "hostname": host,
                "start_date": start,
                "end_date": end,
                "pool": "default_pool",
                "pool_slots": 1,
                "queue": "default",
                "priority_weight": 1,
                "operator": "EmptyOperator",
            }
            if AIRFLOW_3:
                table = TaskInstance.__table__
                row.update(
                    id=_uuid_for(table.c.id),
                    dag_version_id=_uuid_for(table.c.dag_version_id),
                    task_display_name=task_id,
                )
            conn.execute(insert(TaskInstance.__table__).values(**row))
    with Session(bind=engine) as s:
        yield s


def _uuid_for(column: Any) -> Any:
    """A new id in the column's Python type (a UUID on 3.1+, its text on 3.0)."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = str
    value = uuid.uuid4()
    return value if python_type is uuid.UUID else str(value)


def _dag() -> Any:
    if AIRFLOW_3:
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG
    else:
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator
    with DAG("etl", start_date=T0, schedule=None) as dag:
        ops = {t: EmptyOperator(task_id=t) for t in ROWS}
        ops["extract"] >> ops["load"] >> ops["report"]
        ops["extract"] >> [ops["left"], ops["right"]]
    return dag


def _load_run(session: Session) -> Any:
    from airflow.models.dagrun import DagRun

    dag_run = session.scalar(select(DagRun).where(DagRun.run_id == RUN_ID))
    dag_run.dag = _dag()  # the scheduler attaches the (serialized) DAG before the hook
    return dag_run


def test_end_hook_closes_every_try_without_its_own_end(
    registered: Any, recorder: Any, session: Session
) -> None:
    from airflow.utils.sqlalchemy import prohibit_commit

    dag_run = _load_run(session)
    flushes: list[str] = []
    event.listen(session, "before_flush", lambda *a: flushes.append("flush"))
    event.listen(session, "before_commit", lambda *a: flushes.append("commit"))
    with prohibit_commit(session):
        call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    assert flushes == []

    by_urn: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for urn, status, body in recorder.events():
        by_urn.setdefault(urn, []).append((status, body))

    def outcome(task_id: str) -> list[tuple[str, Any]]:
        urn = MAPPER.task_run_urn("etl", task_id, RUN_ID)
        return [(s, b.get("result")) for s, b in by_urn.get(urn, [])]

    assert outcome("extract") == []  # ran and succeeded: its own hook closed it
    # Ran on a worker (its STARTED came from there): only closed.
    assert outcome("load") == [("COMPLETE", {"type": "FAILURE", "nativeResultType": "failed"})]
    assert outcome("report")[-1] == (
        "COMPLETE",
        {"type": "SKIPPED", "nativeResultType": "upstream_failed"},
    )
    assert outcome("left")[-1] == ("COMPLETE", {"type": "SUCCESS", "nativeResultType": "success"})
    assert outcome("right")[-1] == ("COMPLETE", {"type": "SKIPPED", "nativeResultType": "skipped"})
    assert outcome("slow") == [("COMPLETE", {"type": "FAILURE", "nativeResultType": "running"})]
    assert outcome("later")[-1] == ("COMPLETE", {"type": "SKIPPED", "nativeResultType": "none"})

    load_urn = MAPPER.task_run_urn("etl", "load", RUN_ID)
    ((_, body),) = by_urn[load_urn]
    assert body["attempt"] == 2
    assert body["durationMillis"] == _ms(END) - _ms(ROWS["load"][2])
    assert body["timestampMillis"] == _ms(END)
    report = by_urn[MAPPER.task_run_urn("etl", "report", RUN_ID)]
    assert report[0][1]["timestampMillis"] == _ms(END)  # never ran: starts when it ends
    assert report[1][1]["timestampMillis"] > report[0][1]["timestampMillis"]
    (rel,) = recorder.aspects(
        MAPPER.task_run_urn("etl", "report", RUN_ID), "dataProcessInstanceRelationships"
    )
    assert rel["upstreamInstances"] == [load_urn]

    # The DAG run closes last, after its tasks.
    dag_urn = MAPPER.dag_run_urn("etl", RUN_ID)
    last_urn, last_status, last_body = recorder.events()[-1]
    assert (last_urn, last_status) == (dag_urn, "COMPLETE")
    assert last_body["result"]["type"] == "FAILURE"
    assert last_body["durationMillis"] == _ms(END) - _ms(START)


def test_unflushed_changes_are_read_but_not_flushed(
    registered: Any, recorder: Any, session: Session
) -> None:
    """The scheduler set a state it has not flushed yet: we see it, and it stays pending."""
    from airflow.models.taskinstance import TaskInstance

    dag_run = _load_run(session)
    slow = session.scalar(select(TaskInstance).where(TaskInstance.task_id == "slow"))
    slow.state = "skipped"  # e.g. the run timed out
    assert slow in session.dirty
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="timed_out")
    assert slow in session.dirty  # still pending: nothing flushed
    urn = MAPPER.task_run_urn("etl", "slow", RUN_ID)
    results = [b["result"] for u, s, b in recorder.events() if u == urn and s == "COMPLETE"]
    assert results == [{"type": "SKIPPED", "nativeResultType": "skipped"}]


def test_end_hook_twice_sends_the_same_events(
    registered: Any, recorder: Any, session: Session, listener: Any
) -> None:
    """A scheduler restart fires the end hook again: a fresh process re-sends identical events."""
    from datahub_airflow_listener.adapter.listener import DatahubListener

    dag_run = _load_run(session)
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    first = [m.to_file_form(last_observed=0) for m in recorder.mcps]
    recorder.mcps.clear()
    # A new process knows nothing of what the old one sent.
    core_manager().clear()
    core_manager().add_listener(DatahubListener())
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    second = [m.to_file_form(last_observed=0) for m in recorder.mcps]
    assert first == second


def test_detached_dag_run_reads_through_a_private_session(
    registered: Any, recorder: Any, session: Session, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airflow dags test`` hands the end hook a DagRun without a session."""
    from airflow import settings

    monkeypatch.setattr(settings, "engine", engine)
    dag_run = _load_run(session)
    session.expunge(dag_run)
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    urns = {u for u, _, _ in recorder.events()}
    assert MAPPER.task_run_urn("etl", "report", RUN_ID) in urns


def test_a_try_that_skipped_itself_is_closed_only_without_a_skipped_hook(
    registered: Any, recorder: Any, session: Session
) -> None:
    """Skipped after running, no run timeout: 3.2+ reported it (skipped hook); before, not."""
    from airflow.models.taskinstance import TaskInstance

    from datahub_airflow_listener.adapter import compat

    dag_run = _load_run(session)
    slow = session.scalar(select(TaskInstance).where(TaskInstance.task_id == "slow"))
    slow.state = "skipped"
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    urn = MAPPER.task_run_urn("etl", "slow", RUN_ID)
    statuses = [s for u, s, _ in recorder.events() if u == urn]
    assert statuses == ([] if compat.skipped_hook_fires() else ["COMPLETE"])


def test_the_reconciler_reads_the_states_of_the_runs_it_watches_in_few_queries(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 2's reconciler watches every running run: one query per 500, not per run."""
    from airflow import settings
    from airflow.models.dagrun import DagRun

    from datahub_airflow_listener.adapter import compat

    states = ("running", "success", "failed")
    rows = []
    for dag_id in ("a", "b"):  # the same run ids in two DAGs
        for i in range(600 if dag_id == "a" else 50):
            logical = T0 + timedelta(seconds=i)
            row = {
                "dag_id": dag_id,
                "run_id": f"manual__{i}",
                "run_type": "manual",
                "state": states[(i + len(dag_id)) % 3] if dag_id == "b" else states[i % 3],
                "clear_number": 0,
                "queued_at": T0,
            }
            row.update({"logical_date": logical, "run_after": logical} if AIRFLOW_3 else {})
            row.update({} if AIRFLOW_3 else {"execution_date": logical})
            rows.append(row)
    with engine.begin() as conn:
        conn.execute(DagRun.__table__.delete())
        conn.execute(insert(DagRun.__table__), rows)
    monkeypatch.setattr(settings, "engine", engine)
    selects: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        selects.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    watched = [(r["dag_id"], r["run_id"]) for r in rows] + [("a", "deleted"), ("c", "manual__1")]
    try:
        found = compat.dag_run_states(watched)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert found == {(r["dag_id"], r["run_id"]): r["state"] for r in rows}
    assert len([q for q in selects if q.lstrip().upper().startswith("SELECT")]) == 2
