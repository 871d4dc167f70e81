"""Retention decisions (``plan_cleanup``) and the sampling decision (``sampled_in``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.domain import history
from datahub_airflow_listener.domain.aspects import Status
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.retention import plan_cleanup
from datahub_airflow_listener.domain.sampling import sampled_in
from tests.unit.history.history_data import (
    DAY_MS,
    MAPPER,
    T0,
    dag_run,
    daily_runs,
    example_mcps,
    rebased,
    wire,
)

ROOT = Path(__file__).resolve().parents[3]


def _records(mcps: list[MetadataChangeProposal]) -> list[history.InstanceRecord]:
    return list(history.collect_instances(wire(mcps)).values())


def test_older_than_takes_old_dag_runs_and_their_task_runs() -> None:
    records = _records(daily_runs("d", 10))
    now = T0 + 10 * DAY_MS
    plan = plan_cleanup(records, now_ms=now, older_than_days=3.5)
    runs = sorted({i.run_id for i in plan})
    assert runs == [f"scheduled__day{d:03d}" for d in range(7)]  # day 7 is 3 days old: kept
    assert {i.kind for i in plan} == {"dag_run", "task_run"}
    assert len(plan) == 7 * 3
    assert [i.start_ms for i in plan] == sorted(i.start_ms for i in plan)  # oldest first


def test_task_runs_go_with_their_dag_run_even_when_younger() -> None:
    start = T0
    late = T0 + 2 * DAY_MS  # a long DAG run: its last task started two days later
    mcps = dag_run(
        "d",
        "r",
        start,
        [("a", [(start + 1, start + 9, "SUCCESS")]), ("b", [(late, late + 9, "SUCCESS")])],
    )
    plan = plan_cleanup(_records(mcps), now_ms=T0 + 8 * DAY_MS, older_than_days=7)
    reasons = {(i.kind, i.task_id): i.reason for i in plan}
    assert reasons == {
        ("dag_run", None): "older than 7 days",
        ("task_run", "a"): "older than 7 days",
        ("task_run", "b"): "its DAG run goes",
    }


def test_keep_last_per_flow_and_per_job() -> None:
    records = _records(daily_runs("d", 5))
    plan = plan_cleanup(records, now_ms=T0, keep_last=2)
    kept_runs = {r.run_id for r in records} - {i.run_id for i in plan}
    assert kept_runs == {"scheduled__day003", "scheduled__day004"}
    reasons = {i.reason for i in plan}
    assert reasons == {
        "beyond the newest 2 runs of its DAG",
        "beyond the newest 2 runs of its task",
    }


def test_keep_last_counts_a_mapped_run_once() -> None:
    mcps = []
    for n in range(3):
        start = T0 + n * 1000
        tries = [(f"m[{i}]", [(start + 10 + i, start + 20 + i, "SUCCESS")]) for i in range(4)]
        mcps += dag_run("d", f"r{n}", start, tries)
    plan = plan_cleanup(_records(mcps), now_ms=T0, keep_last=2)
    assert {i.run_id for i in plan} == {"r0"}
    assert sum(1 for i in plan if i.task_id == "m") == 4  # all four indexes of the old run


def test_keep_last_zero_takes_everything_and_both_rules_combine() -> None:
    records = _records(daily_runs("d", 4))
    assert len(plan_cleanup(records, now_ms=T0, keep_last=0)) == 12
    both = plan_cleanup(records, now_ms=T0 + 4 * DAY_MS, older_than_days=3.5, keep_last=3)
    assert {i.run_id for i in both} == {"scheduled__day000"}


def test_templates_and_other_entities_are_never_candidates() -> None:
    records = _records(daily_runs("d", 3))
    flow = history.InstanceRecord(
        urn="urn:li:dataFlow:(airflow,d,prod)", kind="dag_run", created_ms=T0
    )
    job = history.InstanceRecord(
        urn="urn:li:dataJob:(urn:li:dataFlow:(airflow,d,prod),extract)",
        kind="task_run",
        created_ms=T0,
    )
    plan = plan_cleanup([*records, flow, job], now_ms=T0 + 99 * DAY_MS, keep_last=0)
    assert plan
    assert all(i.urn.startswith("urn:li:dataProcessInstance:") for i in plan)


def test_soft_deleted_are_skipped_unless_hard() -> None:
    mcps = daily_runs("d", 2)
    gone = MetadataChangeProposal(
        entity_urn=MAPPER.dag_run_urn("d", "scheduled__day000"), aspect=Status(removed=True)
    )
    records = _records([*mcps, gone])
    soft = plan_cleanup(records, now_ms=T0 + 9 * DAY_MS, older_than_days=1)
    assert MAPPER.dag_run_urn("d", "scheduled__day000") not in {i.urn for i in soft}
    hard = plan_cleanup(records, now_ms=T0 + 9 * DAY_MS, older_than_days=1, include_removed=True)
    assert MAPPER.dag_run_urn("d", "scheduled__day000") in {i.urn for i in hard}


def test_dag_filter_and_unknown_times() -> None:
    mcps = daily_runs("d", 2) + daily_runs("e", 2)
    records = _records(mcps)
    plan = plan_cleanup(records, now_ms=T0 + 9 * DAY_MS, older_than_days=1, dag_id="e")
    assert {i.dag_id for i in plan} == {"e"}
    timeless = history.InstanceRecord(
        urn="urn:li:dataProcessInstance:x", kind="dag_run", template_urn="urn:li:dataFlow:(a,b,c)"
    )
    assert plan_cleanup([timeless], now_ms=T0, older_than_days=0, keep_last=0) == []


def test_plan_needs_a_rule() -> None:
    with pytest.raises(ValueError, match="older_than_days"):
        plan_cleanup([], now_ms=T0)


def test_real_runs_keep_last_one_per_dag() -> None:
    mcps = rebased(example_mcps(), T0)
    records = list(history.collect_instances(mcps).values())
    plan = plan_cleanup(records, now_ms=T0, keep_last=1)
    runs = history.build_history(mcps)
    newest = {}
    for run in runs:  # newest first
        newest.setdefault(run.dag_id, run.urn)
    doomed = {i.urn for i in plan}
    assert not doomed & set(newest.values())
    assert sum(1 for i in plan if i.kind == "dag_run") == len(runs) - len(newest)
    kept = [r for r in records if r.urn not in doomed]
    assert {r.run_id for r in kept if r.kind == "task_run"} == {
        r.run_id for r in kept if r.kind == "dag_run"
    }


# -- sampling ------------------------------------------------------------------------------------


def test_sampling_every_1_or_less_records_everything() -> None:
    assert all(sampled_in("d", f"r{i}", n) for i in range(50) for n in (0, 1))


def test_sampling_is_pinned() -> None:
    """The decision must never change between releases (processes of two versions coexist)."""
    chosen = [i for i in range(40) if sampled_in("hf_dag", f"scheduled__{i}", 4)]
    assert chosen == [3, 10, 16, 21, 22, 27, 31, 33, 34]


@given(st.integers(min_value=2, max_value=50))
def test_sampling_records_about_one_in_n(n: int) -> None:
    total = 4000
    kept = sum(sampled_in("dag", f"scheduled__{i}", n) for i in range(total))
    expected = total / n
    assert abs(kept - expected) < 6 * (expected**0.5) + 5


def test_sampling_agrees_across_processes_with_different_hash_seeds() -> None:
    code = (
        "import json\n"
        "from datahub_airflow_listener.domain.sampling import sampled_in\n"
        "print(json.dumps([sampled_in('dag', f'run{i}', 7) for i in range(300)]))\n"
    )
    answers = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
        answers.add(out)
    assert len(answers) == 1
    decisions = json.loads(answers.pop())
    assert decisions == [sampled_in("dag", f"run{i}", 7) for i in range(300)]
    assert 0 < sum(decisions) < 300
