"""Links between runs, the adapter's side, with real Airflow objects and no database: what a
sensor records of its target, which run may have been triggered by an operator, how the
triggering try is picked among candidates, how consumed events become links and inputs, and
which map indexes of an upstream task a task run follows.

The database reads themselves run under a real scheduler in tests/integration/test_run_links.py.
"""

from __future__ import annotations

import logging
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from datahub_airflow_listener.adapter import compat, metadb, run_links
from datahub_airflow_listener.adapter.logs import forget_said
from datahub_airflow_listener.domain.links import RunLinks, RunRef
from datahub_airflow_listener.domain.runs import DagRunFacts, RunMapper, TaskRunFacts
from tests.airflow.conftest import AIRFLOW_3, T0, call_hook, core_manager

if AIRFLOW_3:
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
    from airflow.sdk import DAG, task, task_group
else:
    from airflow import DAG
    from airflow.decorators import task, task_group
    from airflow.sensors.external_task import ExternalTaskSensor

ORDERS_URI = "postgresql://db.example:5432/shop/public/orders"
ORDERS = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.orders,PROD)"


class _Ti:
    """What the sensor's process hands the hook: a try with its template context."""

    dag_id, task_id, run_id, map_index = "waiting", "wait", "manual__1", -1

    def __init__(self, logical_date: datetime) -> None:
        self._context = {"logical_date": logical_date, "execution_date": logical_date}

    def get_template_context(self) -> dict[str, Any]:
        return self._context


def _sensor(**kwargs: Any) -> Any:
    with DAG("waiting", schedule=None, start_date=T0):
        return ExternalTaskSensor(task_id="wait", external_dag_id="other", **kwargs)


# -- what a sensor waits for ----------------------------------------------------------------------


def test_a_sensor_with_a_delta_waits_for_the_earlier_run_of_a_task() -> None:
    sensor = _sensor(external_task_id="load", execution_delta=timedelta(hours=1))
    target = compat.sensor_target(sensor, _Ti(datetime(2025, 6, 1, 12, tzinfo=UTC)))
    assert target == {
        "dag_id": "other",
        "task_ids": ["load"],
        "task_group_id": None,
        "logical_dates": ["2025-06-01T11:00:00+00:00"],
    }


def test_a_sensor_with_a_date_function_waits_for_what_it_returns() -> None:
    def two_days(logical_date: datetime, **_: Any) -> list[datetime]:
        return [logical_date - timedelta(days=2), logical_date - timedelta(days=1)]

    sensor = _sensor(external_task_id=None, execution_date_fn=two_days)
    target = compat.sensor_target(sensor, _Ti(datetime(2025, 6, 3, tzinfo=UTC)))
    assert target is not None
    assert target["task_ids"] is None  # the whole DAG run
    assert target["logical_dates"] == ["2025-06-01T00:00:00+00:00", "2025-06-02T00:00:00+00:00"]


def test_only_sensors_record_a_target(monkeypatch: pytest.MonkeyPatch) -> None:
    pushed: list[tuple[str, Any]] = []
    monkeypatch.setattr(compat, "push_xcom", lambda ti, key, value: pushed.append((key, value)))
    plain = types.SimpleNamespace(task_id="plain", external_task_id="x")  # no external_dag_id
    run_links.record_sensor_target(plain, _Ti(T0))
    run_links.record_sensor_target(None, _Ti(T0))
    assert pushed == []
    run_links.record_sensor_target(_sensor(external_task_id="load"), _Ti(T0))
    assert [key for key, _ in pushed] == [run_links.SENSOR_XCOM_KEY]


def test_a_failing_push_is_one_warning_not_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_: Any) -> None:
        raise RuntimeError("the supervisor is gone")

    monkeypatch.setattr(compat, "push_xcom", refuse)
    forget_said()
    with caplog.at_level(logging.WARNING):
        run_links.record_sensor_target(_sensor(external_task_id="load"), _Ti(T0))  # no raise
        run_links.record_sensor_target(_sensor(external_task_id="load"), _Ti(T0))
    said = [r.getMessage() for r in caplog.records if "sensor waits for" in r.getMessage()]
    assert len(said) == 1
    assert "the supervisor is gone" in said[0]


def test_a_target_resolves_to_the_runs_found_by_logical_date(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: dict[str, Any] = {}

    def read(dag_id: str, dates: list[datetime], **kw: Any) -> list[metadb.ExternalRow]:
        asked.update(dag_id=dag_id, dates=dates, **kw)
        return [metadb.ExternalRow(run_id="scheduled__x", task_id="load", map_index=-1)]

    monkeypatch.setattr(metadb, "read_external_runs", read)
    target = {
        "dag_id": "other",
        "task_ids": ["load"],
        "task_group_id": None,
        "logical_dates": ["2025-06-01T11:00:00+00:00"],
    }
    refs = run_links._resolve_target(target)
    assert refs == [RunRef(dag_id="other", run_id="scheduled__x", task_id="load")]
    assert asked["dates"] == [datetime(2025, 6, 1, 11, tzinfo=UTC)]
    assert asked["task_ids"] == ["load"]
    group = {**target, "task_ids": None, "task_group_id": "grp"}
    run_links._resolve_target(group)
    assert asked["task_prefix"] == "grp."
    assert run_links._resolve_target({**target, "logical_dates": ["not a date"]}) == []


# -- who triggered a run --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_type", "triggered_by", "airflow_3", "expected"),
    [
        ("operator_triggered", None, True, True),
        ("manual", "operator", True, True),
        ("manual", "ui", True, False),
        ("scheduled", "timetable", True, False),
        ("manual", None, False, None),  # Airflow 2 cannot tell
        ("scheduled", None, False, False),
    ],
)
def test_which_runs_an_operator_may_have_triggered(
    run_type: str, triggered_by: str | None, airflow_3: bool, expected: bool | None
) -> None:
    if airflow_3 != AIRFLOW_3:
        pytest.skip("the other Airflow major")
    run = types.SimpleNamespace(triggered_by=triggered_by)
    assert compat.may_be_operator_triggered(run, run_type) is expected


def _candidate(task_id: str, value: Any, target: str | None) -> metadb.TriggerRow:
    return metadb.TriggerRow(
        dag_id="parent",
        task_id=task_id,
        run_id="manual__p",
        map_index=-1,
        value=value,
        trigger_dag_id=target,
    )


def _triggered_by(monkeypatch: pytest.MonkeyPatch, rows: list[metadb.TriggerRow]) -> Any:
    monkeypatch.setattr(metadb, "read_trigger_candidates", lambda anchors: rows)
    run = types.SimpleNamespace(created_at=T0, queued_at=T0, execution_date=T0)
    facts = DagRunFacts(dag_id="child", run_id="manual__p", run_type="manual")
    return run_links._triggered_by(run, facts)


def test_the_triggering_try_is_the_one_that_named_this_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        _candidate("trigger_a", "manual__p", "child"),
        _candidate("trigger_b", "manual__p", "child_b"),  # same run id, another DAG
        _candidate("trigger_c", "manual__other", "child"),  # another run
    ]
    assert _triggered_by(monkeypatch, rows) == (
        RunRef(dag_id="parent", run_id="manual__p", task_id="trigger_a"),
    )


def test_a_run_nobody_triggered_yet_is_looked_at_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadb, "read_trigger_candidates", lambda anchors: [])
    run = types.SimpleNamespace(
        triggered_by="operator", created_at=T0, queued_at=T0, execution_date=T0
    )
    facts = DagRunFacts(dag_id="child", run_id="r", run_type="manual")
    found = run_links.dag_run_links(run, facts)
    assert found.links.empty
    assert not found.complete
    monkeypatch.setattr(
        metadb, "read_trigger_candidates", lambda anchors: [_candidate("t", "r", "child")]
    )
    found = run_links.dag_run_links(run, facts)
    assert found.complete
    assert [r.task_id for r in found.links.triggered_by] == ["t"]


def test_a_sole_candidate_without_rendered_fields_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    only = [_candidate("trigger", "manual__p", None)]
    assert [r.task_id for r in _triggered_by(monkeypatch, only)] == ["trigger"]
    two = [_candidate("a", "manual__p", None), _candidate("b", "manual__p", None)]
    assert _triggered_by(monkeypatch, two) == ()


def test_a_failed_read_leaves_the_link_to_the_runs_end(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(anchors: Any) -> list[metadb.TriggerRow]:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(metadb, "read_trigger_candidates", fail)
    run = types.SimpleNamespace(triggered_by="operator", created_at=T0, queued_at=T0)
    facts = DagRunFacts(dag_id="child", run_id="r", run_type="operator_triggered")
    found = run_links.dag_run_links(run, facts)
    assert found.links.empty
    assert not found.complete  # the run's end looks again


def test_no_read_for_runs_nothing_can_link(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_: Any) -> Any:
        raise AssertionError("read")

    monkeypatch.setattr(metadb, "read_trigger_candidates", never)
    monkeypatch.setattr(metadb, "read_consumed_events", never)
    run = types.SimpleNamespace(triggered_by="timetable")
    found = run_links.dag_run_links(run, DagRunFacts(dag_id="d", run_id="r", run_type="scheduled"))
    assert found == run_links.FlowLinks()


def test_an_xcom_value_reads_as_airflow_stored_it() -> None:
    model = compat.xcom_model()
    stored = model.serialize_value("manual__2025-06-01T00:00:00+00:00")
    assert compat.decode_xcom_value(stored) == "manual__2025-06-01T00:00:00+00:00"
    assert compat.decode_xcom_value(None) is None


# -- what an asset-triggered run consumed -------------------------------------------------------


def _event(event_id: int, uri: str, when: datetime, **source: Any) -> metadb.ConsumedRow:
    return metadb.ConsumedRow(
        event_id=event_id,
        uri=uri,
        name=None,
        timestamp=when,
        extra={"rows": 1} if event_id == 2 else {},
        source_dag_id=source.get("dag_id"),
        source_task_id=source.get("task_id"),
        source_run_id=source.get("run_id"),
        source_map_index=source.get("map_index"),
    )


def test_consumed_events_become_producers_and_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        _event(2, ORDERS_URI, T0 + timedelta(seconds=2), dag_id="p", task_id="t", run_id="r"),
        _event(1, ORDERS_URI, T0, dag_id="p", task_id="m", run_id="r", map_index=3),
        _event(3, "s3://bucket/users", T0),  # from the REST API: no producer
    ]
    monkeypatch.setattr(metadb, "read_consumed_events", lambda dag_id, run_id: rows)
    facts = DagRunFacts(dag_id="c", run_id="asset_triggered__x", run_type="asset_triggered")
    found = run_links.dag_run_links(types.SimpleNamespace(), facts)
    assert found.complete
    assert found.links.upstream() == (
        RunRef(dag_id="p", run_id="r", task_id="m", map_index=3),
        RunRef(dag_id="p", run_id="r", task_id="t"),
    )
    orders = next(i for i in found.links.inputs() if i.dataset_urn == ORDERS)
    assert orders.timestamp_ms == compat.to_ms(T0 + timedelta(seconds=2))
    assert dict(orders.properties) == {"rows": "1"}


def test_assets_not_captured_are_no_inputs_but_their_producers_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [_event(1, ORDERS_URI, T0, dag_id="p", task_id="t", run_id="r")]
    monkeypatch.setattr(metadb, "read_consumed_events", lambda dag_id, run_id: rows)
    config = types.SimpleNamespace(capture_airflow_assets=False)
    facts = DagRunFacts(dag_id="c", run_id="x", run_type="asset_triggered")
    found = run_links.dag_run_links(types.SimpleNamespace(), facts, config)
    assert found.links.inputs() == ()
    assert found.links.upstream() == (RunRef(dag_id="p", run_id="r", task_id="t"),)


# -- mapped upstream tasks ------------------------------------------------------------------------


def _mapped_dag() -> Any:
    with DAG("mapped", schedule=None, start_date=T0) as dag:

        @task
        def make() -> list[int]:
            return [1, 2]

        @task
        def each(value: int) -> int:
            return value

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        @task
        def first(value: int) -> int:
            return value

        @task
        def second(value: int) -> int:
            return value

        @task_group
        def group(value: int) -> None:
            second(first(value))

        total(each.expand(value=make()))
        group.expand(value=[1, 2])
    return dag


def _row(task_id: str, map_index: int) -> Any:
    return types.SimpleNamespace(task_id=task_id, map_index=map_index)


def test_a_task_follows_every_index_of_its_mapped_upstream() -> None:
    rows = [_row("make", -1), _row("each", 0), _row("each", 1), _row("total", -1)]
    links = run_links.TaskLinks("mapped", "r", _mapped_dag(), rows=rows)
    total = TaskRunFacts(dag_id="mapped", task_id="total", run_id="r")
    assert links.upstream_runs(total) == (
        RunRef(dag_id="mapped", run_id="r", task_id="each", map_index=0),
        RunRef(dag_id="mapped", run_id="r", task_id="each", map_index=1),
    )
    each = TaskRunFacts(dag_id="mapped", task_id="each", run_id="r", map_index=1)
    assert links.upstream_runs(each) == ()  # its upstream is unmapped: the mapper links it


def test_inside_a_mapped_group_index_i_follows_index_i() -> None:
    rows = [_row("group.first", 0), _row("group.first", 1)]
    links = run_links.TaskLinks("mapped", "r", _mapped_dag(), rows=rows)
    second = TaskRunFacts(dag_id="mapped", task_id="group.second", run_id="r", map_index=1)
    assert links.upstream_runs(second) == (
        RunRef(dag_id="mapped", run_id="r", task_id="group.first", map_index=1),
    )


def test_map_indexes_not_in_hand_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[list[str]] = []

    def read(dag_id: str, run_id: str, task_ids: list[str]) -> dict[str, list[int]]:
        reads.append(list(task_ids))
        return {"each": [0, 1, 2]}

    monkeypatch.setattr(metadb, "read_map_indexes", read)
    links = run_links.TaskLinks("mapped", "r", _mapped_dag())
    total = TaskRunFacts(dag_id="mapped", task_id="total", run_id="r")
    assert len(links.upstream_runs(total)) == 3
    assert len(links.upstream_runs(total)) == 3
    assert reads == [["each"]]


# -- the recorder: links sent with the run's STARTED, and again at its end when they changed ------


def _dag_run(state: str) -> Any:
    from airflow.models.dagrun import DagRun

    run = DagRun(dag_id="child", run_id="manual__c", run_type="manual", state=state)
    run.start_date = T0 + timedelta(minutes=1)
    run.end_date = T0 + timedelta(minutes=2) if state == "success" else None
    return run


def test_a_trigger_found_only_at_the_runs_end_is_sent_then(
    registered: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = RunRef(dag_id="parent", run_id="manual__p", task_id="trigger")
    answers = iter(
        [
            run_links.FlowLinks(complete=False),  # the XCom is not there yet
            run_links.FlowLinks(links=RunLinks(triggered_by=[parent])),
        ]
    )
    monkeypatch.setattr(run_links, "dag_run_links", lambda *_a, **_k: next(answers))
    call_hook(core_manager(), "on_dag_run_running", dag_run=_dag_run("running"), msg="")
    call_hook(core_manager(), "on_dag_run_success", dag_run=_dag_run("success"), msg="success")
    mapper = RunMapper()
    urn = mapper.dag_run_urn("child", "manual__c")
    sent = recorder.aspects(urn, "dataProcessInstanceRelationships")
    assert [r["upstreamInstances"] for r in sent] == [[], [mapper.ref_urn(parent)]]
    assert next(answers, None) is None  # asked twice: at the start and at the end


def test_links_complete_at_the_start_are_not_read_again(
    registered: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def links(dag_run: Any, facts: DagRunFacts, config: Any = None) -> run_links.FlowLinks:
        calls.append(facts.run_id)
        return run_links.FlowLinks()

    monkeypatch.setattr(run_links, "dag_run_links", links)
    call_hook(core_manager(), "on_dag_run_running", dag_run=_dag_run("running"), msg="")
    call_hook(core_manager(), "on_dag_run_success", dag_run=_dag_run("success"), msg="success")
    assert calls == ["manual__c"]
