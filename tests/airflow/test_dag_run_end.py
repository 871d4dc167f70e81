"""No run left open: the DAG-run end hook transcribes every try, inside the scheduler's transaction.

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
LOAD_TRY1_END = START + timedelta(seconds=50)


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
    from airflow.models.taskinstancehistory import TaskInstanceHistory

    tables = [
        LogTemplate.__table__,
        DagRun.__table__,
        TaskInstance.__table__,
        TaskInstanceHistory.__table__,
    ]
    Base.metadata.create_all(eng, tables=tables)
    return eng


@pytest.fixture
def session(engine: Any) -> Iterator[Session]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory

    with engine.begin() as conn:
        conn.execute(TaskInstanceHistory.__table__.delete())
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
            if task_id == "load":  # its first try, killed and retried: an earlier try
                first = dict(row, try_number=1, state="up_for_retry", end_date=LOAD_TRY1_END)
                first["start_date"] = START + timedelta(seconds=30)
                if AIRFLOW_3:
                    first["task_instance_id"] = first.pop("id")
                    first["dag_version_id"] = row["dag_version_id"]
                if not _has_column(TaskInstanceHistory, "task_display_name"):
                    first.pop("task_display_name", None)
                conn.execute(insert(TaskInstanceHistory.__table__).values(**first))
    with Session(bind=engine) as s:
        yield s


def _has_column(model: Any, name: str) -> bool:
    return name in model.__table__.c


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


def test_end_hook_transcribes_every_try_from_the_database(
    registered: Any, recorder: Any, session: Session
) -> None:
    """Every try gets one STARTED and one COMPLETE at the times the database records, whoever
    ended it; earlier tries too. Nothing is flushed or committed."""
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

    def outcome(task_id: str) -> list[tuple[str, int, int, str | None]]:
        urn = MAPPER.task_run_urn("etl", task_id, RUN_ID)
        return [
            (s, b["attempt"], b["timestampMillis"], (b.get("result") or {}).get("type"))
            for s, b in by_urn.get(urn, [])
        ]

    s, e = _ms(START), _ms(END)
    assert outcome("extract") == [("STARTED", 1, s, None), ("COMPLETE", 1, s + 60_000, "SUCCESS")]
    assert outcome("load") == [
        ("STARTED", 1, s + 30_000, None),
        ("COMPLETE", 1, _ms(LOAD_TRY1_END), "UP_FOR_RETRY"),
        ("STARTED", 2, s + 120_000, None),
        ("COMPLETE", 2, e, "FAILURE"),
    ]
    # never ran: starts when it ends (the COMPLETE 1 ms later, or they would overwrite)
    for task_id, result in [("report", "SKIPPED"), ("left", "SUCCESS"), ("right", "SKIPPED")]:
        assert outcome(task_id) == [("STARTED", 1, e, None), ("COMPLETE", 1, e + 1, result)]
    assert outcome("slow") == [("STARTED", 1, s, None), ("COMPLETE", 1, e, "FAILURE")]
    assert outcome("later") == [("STARTED", 1, e, None), ("COMPLETE", 1, e + 1, "SKIPPED")]

    load_urn = MAPPER.task_run_urn("etl", "load", RUN_ID)
    assert by_urn[load_urn][-1][1]["durationMillis"] == e - _ms(START + timedelta(minutes=2))
    assert by_urn[load_urn][-1][1]["result"]["nativeResultType"] == "failed"
    slow = by_urn[MAPPER.task_run_urn("etl", "slow", RUN_ID)][-1][1]
    assert slow["result"]["nativeResultType"] == "running"
    (rel,) = recorder.aspects(
        MAPPER.task_run_urn("etl", "report", RUN_ID), "dataProcessInstanceRelationships"
    )
    assert rel["upstreamInstances"] == [load_urn]
    assert rel["parentInstance"] == MAPPER.dag_run_urn("etl", RUN_ID)

    # The DAG run closes last, after its tasks.
    dag_urn = MAPPER.dag_run_urn("etl", RUN_ID)
    last_urn, last_status, last_body = recorder.events()[-1]
    assert (last_urn, last_status) == (dag_urn, "COMPLETE")
    assert last_body["result"]["type"] == "FAILURE"
    assert last_body["durationMillis"] == e - s


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

    def instances() -> list[Any]:  # the templates are sent once per DAG version, not per run
        return [
            m.to_file_form(last_observed=0)
            for m in recorder.mcps
            if m.entity_type == "dataProcessInstance"
        ]

    dag_run = _load_run(session)
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    first = instances()
    recorder.mcps.clear()
    # A new process knows nothing of what the old one sent.
    core_manager().clear()
    core_manager().add_listener(DatahubListener())
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    assert instances() == first
    assert first


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


def test_tries_this_process_recorded_are_not_sent_again(
    registered: Any, recorder: Any, session: Session
) -> None:
    """The watch recorded a try's STARTED while it ran: the end hook sends only its COMPLETE,
    with the duration counted from that STARTED."""
    from airflow.models.taskinstance import TaskInstance

    dag_run = _load_run(session)
    slow = session.scalar(select(TaskInstance).where(TaskInstance.task_id == "slow"))
    registered._get_recorder().transcribe_running(dag_run, [slow])
    urn = MAPPER.task_run_urn("etl", "slow", RUN_ID)
    assert [s for u, s, _ in recorder.events() if u == urn] == ["STARTED"]
    call_hook(core_manager(), "on_dag_run_failed", dag_run=dag_run, msg="task_failure")
    events = [(s, b) for u, s, b in recorder.events() if u == urn]
    assert [s for s, _ in events] == ["STARTED", "COMPLETE"]
    assert events[1][1]["durationMillis"] == _ms(END) - _ms(START)


def test_the_watch_reads_changed_tries_of_running_runs_in_few_queries(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's watch: one query for the running runs, two per 500 of them (current and
    earlier tries changed since the last look), one for the runs that ended."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance

    from datahub_airflow_listener.adapter import metadb

    states = ("running", "success", "failed")
    runs, tis = [], []
    for dag_id in ("a", "b"):  # the same run ids in two DAGs
        for i in range(1600 if dag_id == "a" else 50):
            logical = T0 + timedelta(seconds=i)
            state = states[(i + len(dag_id)) % 3] if dag_id == "b" else states[i % 3]
            row = {
                "dag_id": dag_id,
                "run_id": f"manual__{i}",
                "run_type": "manual",
                "state": state,
                "clear_number": 0,
                "queued_at": T0,
                "end_date": None if state == "running" else END,
                "updated_at": END,
            }
            row.update({"logical_date": logical, "run_after": logical} if AIRFLOW_3 else {})
            row.update({} if AIRFLOW_3 else {"execution_date": logical})
            runs.append(row)
            ti = {
                "task_id": "t",
                "dag_id": dag_id,
                "run_id": f"manual__{i}",
                "map_index": -1,
                "state": "running",
                "try_number": 1,
                "max_tries": 0,
                "hostname": "w",
                "start_date": START,
                "pool": "default_pool",
                "pool_slots": 1,
                "queue": "default",
                "priority_weight": 1,
                "operator": "EmptyOperator",
                # half the tries changed before the last look
                "updated_at": START if i % 2 else END,
            }
            if AIRFLOW_3:
                table = TaskInstance.__table__
                ti.update(
                    id=_uuid_for(table.c.id),
                    dag_version_id=_uuid_for(table.c.dag_version_id),
                    task_display_name="t",
                )
            tis.append(ti)
    with engine.begin() as conn:
        conn.execute(TaskInstance.__table__.delete())
        conn.execute(DagRun.__table__.delete())
        conn.execute(insert(DagRun.__table__), runs)
        conn.execute(insert(TaskInstance.__table__), tis)
    monkeypatch.setattr(settings, "engine", engine)
    selects: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        activity = metadb.read_activity(END - timedelta(seconds=1), ended_since=START)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    running = {(r["dag_id"], r["run_id"]) for r in runs if r["state"] == "running"}
    changed = {
        (t["dag_id"], t["run_id"])
        for t in tis
        if (t["dag_id"], t["run_id"]) in running and t["updated_at"] == END
    }
    got = {(run.dag_id, run.run_id) for run, rows in activity.running for _ in rows}
    assert got == changed
    assert all(len(rows) == 1 for _, rows in activity.running)
    assert {(d, r) for d, r, _ in activity.ended} == {
        (r["dag_id"], r["run_id"]) for r in runs if r["state"] != "running"
    }
    # runs, 2 x (current + earlier tries) for 2 chunks of running runs, ended runs
    assert len(selects) == 1 + 2 * 2 + 1, selects


@pytest.mark.parametrize(
    ("state", "try_number", "max_tries", "end", "want"),
    [
        ("failed", 1, 1, END, "up_for_retry"),  # archived when its retry was scheduled
        ("failed", 2, 1, END, "failed"),  # a final failure, cleared later
        ("success", 1, 1, END, "success"),  # a success, cleared later
        ("running", 1, 1, END, "up_for_retry" if not AIRFLOW_3 else "running"),
        ("running", 1, 1, None, "running"),
    ],
)
def test_an_earlier_try_reads_as_it_ended(
    state: str, try_number: int, max_tries: int, end: Any, want: str
) -> None:
    from airflow.models.taskinstancehistory import TaskInstanceHistory

    from datahub_airflow_listener.adapter import compat

    row = TaskInstanceHistory.__new__(TaskInstanceHistory)
    vars(row).update(state=state, try_number=try_number, max_tries=max_tries, end_date=end)
    assert compat.earlier_try_state(row) == want
