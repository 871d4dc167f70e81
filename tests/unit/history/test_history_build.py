"""Rebuilding run history from MCPs: the tree, attempts, filters and statistics."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.domain import history
from datahub_airflow_listener.domain.aspects import Status
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.stats import dag_stats, percentile, task_stats
from tests.unit.history.history_data import (
    EXAMPLE_DAGS,
    MAPPER,
    T0,
    dag_run,
    example_mcps,
    example_wire,
    wire,
)

# -- real example-DAG runs -----------------------------------------------------------------------


def test_real_runs_rebuild_into_one_tree_per_dag_run() -> None:
    runs = history.build_history(example_mcps())
    counts = {dag: sum(1 for r in runs if r.dag_id == dag) for dag in EXAMPLE_DAGS}
    assert counts == EXAMPLE_DAGS
    assert all(r.recorded and r.result == "SUCCESS" for r in runs)
    starts = [r.start_ms for r in runs]
    assert starts == sorted(starts, reverse=True)  # newest first
    etl = next(r for r in runs if r.dag_id == "etl_orders")
    assert [t.task_id for t in etl.task_runs] == [
        "extract_orders",
        "transform_orders",
        "load_revenue",
    ]
    assert etl.task_runs[0].outputs == (
        "urn:li:dataset:(urn:li:dataPlatform:file,etl_orders/orders_raw.csv,PROD)",
    )
    assert "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.orders,PROD)" in (
        etl.task_runs[0].inputs
    )


def test_real_retry_is_two_attempts_of_one_task_run() -> None:
    runs = [r for r in history.build_history(example_mcps()) if r.dag_id == "flaky_retry"]
    for run in runs:
        flaky = next(t for t in run.task_runs if t.task_id == "flaky")
        assert [a.outcome for a in flaky.attempts] == ["UP_FOR_RETRY", "SUCCESS"]
        assert flaky.result == "SUCCESS"
        assert flaky.duration_ms == flaky.attempts[1].duration_ms
        assert flaky.attempts[0].start_ms < flaky.attempts[1].start_ms


def test_real_mapped_task_has_one_run_per_index_and_skips_are_kept() -> None:
    runs = history.build_history(example_mcps())
    mapping = next(r for r in runs if r.dag_id == "taskflow_mapping")
    labels = sorted(t.label for t in mapping.task_runs if t.task_id == "process_region")
    assert labels == ["process_region[0]", "process_region[1]", "process_region[2]"]
    branching = next(r for r in runs if r.dag_id == "branching")
    assert {t.task_id: t.result for t in branching.task_runs}["incremental_refresh"] == "SKIPPED"


def test_wire_and_file_form_give_the_same_history() -> None:
    assert history.build_history(example_wire()) == history.build_history(example_mcps())


def test_real_stats_per_task() -> None:
    runs = history.select_runs(history.build_history(example_mcps()), dag_id="flaky_retry")
    stats = {s.task_id: s for s in task_stats(runs)}
    assert stats["flaky"].runs == 3
    assert stats["flaky"].retried == 3
    assert stats["flaky"].success_rate == 1.0
    durations = sorted(t.duration_ms for r in runs for t in r.task_runs if t.task_id == "flaky")
    assert stats["flaky"].p50_ms == durations[1]
    assert stats["flaky"].p99_ms == durations[2]
    branching = history.select_runs(history.build_history(example_mcps()), dag_id="branching")
    skipped = {s.task_id: s for s in task_stats(branching)}["incremental_refresh"]
    assert (skipped.skipped, skipped.success_rate, skipped.p50_ms) == (3, None, None)


# -- synthetic scenarios -------------------------------------------------------------------------


def test_running_attempt_and_running_dag_run() -> None:
    mcps = dag_run("d", "r1", T0, [("a", [(T0 + 1, T0 + 5, "")])], result=None)
    (run,) = history.build_history(wire(mcps))
    assert run.result == "RUNNING"
    assert run.task_runs[0].result == "RUNNING"
    assert run.task_runs[0].attempts[0].status == "STARTED"
    assert run.duration_ms is None


def test_failure_after_retry_and_durations() -> None:
    mcps = dag_run(
        "d",
        "r1",
        T0,
        [("a", [(T0 + 10, T0 + 110, "UP_FOR_RETRY"), (T0 + 200, T0 + 250, "FAILURE")])],
        result="FAILURE",
    )
    (run,) = history.build_history(wire(mcps))
    task = run.task_runs[0]
    assert [(a.number, a.result, a.duration_ms) for a in task.attempts] == [
        (1, "UP_FOR_RETRY", 100),
        (2, "FAILURE", 50),
    ]
    assert (task.result, task.start_ms, task.end_ms) == ("FAILURE", T0 + 10, T0 + 250)
    assert run.result == "FAILURE"


def test_redelivered_events_count_once() -> None:
    mcps = wire(dag_run("d", "r1", T0, [("a", [(T0 + 1, T0 + 9, "SUCCESS")])]))
    (run,) = history.build_history(mcps + mcps)
    assert len(run.task_runs) == 1
    assert len(run.task_runs[0].attempts) == 1


def test_a_cleared_dag_run_restarting_is_running_again() -> None:
    first = dag_run("d", "r1", T0, [("a", [(T0 + 1, T0 + 9, "FAILURE")])], result="FAILURE")
    again = dag_run("d", "r1", T0 + 1000, result=None)  # cleared: STARTED again, same urn
    (run,) = history.build_history(wire(first + again))
    assert run.result == "RUNNING"
    assert run.start_ms == T0 + 1000


def test_task_runs_without_a_dag_run_record_get_a_placeholder() -> None:
    mcps = [
        m
        for m in dag_run("d", "r1", T0, [("a", [(T0 + 1, T0 + 9, "SUCCESS")])])
        if m.entity_urn != MAPPER.dag_run_urn("d", "r1")
    ]
    (run,) = history.build_history(wire(mcps))
    assert not run.recorded
    assert (run.dag_id, run.run_id, run.result) == ("d", "r1", "SUCCESS")
    assert run.urn == MAPPER.dag_run_urn("d", "r1")  # the parent the task runs name
    assert dag_stats([run]).runs == 0  # placeholders are not DAG-run statistics


def test_soft_deleted_instances_are_hidden_unless_asked() -> None:
    mcps = dag_run("d", "r1", T0, [("a", [(T0 + 1, T0 + 9, "SUCCESS")])])
    mcps += dag_run("d", "r2", T0 + 100, [("a", [(T0 + 101, T0 + 109, "SUCCESS")])])
    removed = MetadataChangeProposal(
        entity_urn=MAPPER.dag_run_urn("d", "r1"), aspect=Status(removed=True)
    )
    runs = history.build_history(wire([*mcps, removed]))
    assert [r.run_id for r in history.select_runs(runs)] == ["r2"]
    assert [r.run_id for r in history.select_runs(runs, include_removed=True)] == ["r2", "r1"]


def test_platform_instance_is_stripped_from_the_dag_id() -> None:
    mapper = type(MAPPER)(platform_instance="eu")
    mcps = dag_run("d", "r1", T0, [("a", [(T0 + 1, T0 + 9, "SUCCESS")])], mapper=mapper)
    # the task run carries dag_id in its properties; the DAG run only has the flow urn
    (run,) = history.build_history(wire(mcps), platform_instance="eu")
    assert run.dag_id == "d"
    assert run.flow_urn == "urn:li:dataFlow:(airflow,eu.d,prod)"


def _three_runs() -> list[history.DagRun]:
    mcps = []
    for n, result in enumerate(["SUCCESS", "FAILURE", "SUCCESS"]):
        start = T0 + n * 1000
        mcps += dag_run(
            "d",
            f"r{n}",
            start,
            [
                ("a", [(start + 1, start + 10 * (n + 1), "SUCCESS")]),
                ("b", [(start + 100, start + 150, result)]),
            ],
            result=result,
        )
    mcps += dag_run("other", "x", T0, [("a", [(T0 + 1, T0 + 2, "SUCCESS")])])
    return history.build_history(wire(mcps))


def test_select_by_dag_result_task_window_and_limit() -> None:
    runs = _three_runs()
    assert [r.run_id for r in history.select_runs(runs, dag_id="d")] == ["r2", "r1", "r0"]
    assert [r.run_id for r in history.select_runs(runs, dag_id="d", result="failure")] == ["r1"]
    assert [r.run_id for r in history.select_runs(runs, dag_id="d", limit=2)] == ["r2", "r1"]
    window = history.select_runs(runs, dag_id="d", since_ms=T0 + 1000, until_ms=T0 + 2000)
    assert [r.run_id for r in window] == ["r1"]
    only_b = history.select_runs(runs, dag_id="d", task_id="b", result="SUCCESS")
    assert [(r.run_id, [t.task_id for t in r.task_runs]) for r in only_b] == [
        ("r2", ["b"]),
        ("r0", ["b"]),
    ]
    assert history.select_runs(runs, dag_id="d", result="RUNNING") == []


def test_stats_success_rate_and_percentiles() -> None:
    runs = history.select_runs(_three_runs(), dag_id="d")
    stats = {s.task_id: s for s in task_stats(runs)}
    assert stats["a"].success_rate == 1.0
    assert (stats["a"].p50_ms, stats["a"].p90_ms, stats["a"].p99_ms) == (19, 29, 29)
    assert stats["b"].success_rate == pytest.approx(2 / 3)
    assert (stats["b"].succeeded, stats["b"].failed) == (2, 1)
    dag = dag_stats(runs)
    assert (dag.runs, dag.succeeded, dag.failed) == (3, 2, 1)


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=200))
def test_percentile_is_a_member_and_grows_with_q(values: list[int]) -> None:
    p50, p90, p99 = (percentile(values, q) for q in (50, 90, 99))
    assert p50 in values and p90 in values and p99 in values
    assert p50 <= p90 <= p99 <= max(values)
    assert percentile(values, 100) == max(values)


def test_percentile_nearest_rank() -> None:
    assert percentile(list(range(1, 101)), 90) == 90
    assert percentile([5], 99) == 5
    assert percentile([], 50) is None


def test_mcps_of_other_entities_are_ignored() -> None:
    flow = {
        "entityType": "dataFlow",
        "entityUrn": "urn:li:dataFlow:(airflow,d,prod)",
        "aspectName": "status",
        "aspect": {"value": json.dumps({"removed": True}), "contentType": "application/json"},
    }
    assert history.collect_instances([flow]) == {}
