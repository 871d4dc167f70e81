"""Which events a try needs, decided from its recorded facts and what was sent (no Airflow)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.domain.runs import TaskRunFacts
from datahub_airflow_listener.domain.tries import (
    FINAL_STATES,
    Completion,
    Sent,
    TryPlan,
    plan_try,
)

START, END, RUN_END, NOW = 1_000_000, 1_005_000, 1_009_000, 2_000_000


def facts(state: str | None, *, host: str | None = "w1", start=START, end=END) -> TaskRunFacts:
    return TaskRunFacts(
        dag_id="d",
        task_id="t",
        run_id="r",
        state=state,
        hostname=host,
        start_ms=start,
        end_ms=end if state in FINAL_STATES else None,
    )


def plan(f: TaskRunFacts, sent: Sent | None = None, run_end: int | None = None) -> TryPlan:
    return plan_try(f, sent, run_end_ms=run_end, now_ms=NOW)


@pytest.mark.parametrize(
    ("state", "result"),
    [
        ("success", "SUCCESS"),
        ("failed", "FAILURE"),
        ("up_for_retry", "UP_FOR_RETRY"),
        ("skipped", "SKIPPED"),
    ],
)
def test_an_ended_try_seen_first_gets_both_events_at_its_recorded_times(
    state: str, result: str
) -> None:
    got = plan(facts(state))
    assert got == TryPlan(
        started_ms=START,
        send_started=True,
        completion=Completion(end_ms=END, result=result, native=state),
    )


@pytest.mark.parametrize("state", ["running", "deferred", "up_for_reschedule", "restarting"])
def test_a_try_in_progress_gets_its_started_once(state: str) -> None:
    first = plan(facts(state))
    assert (first.send_started, first.started_ms, first.completion) == (True, START, None)
    again = plan(facts(state), first.remembered(None))
    assert again.empty


def test_a_reschedule_sensor_keeps_its_first_pokes_start() -> None:
    """Every poke restarts the try in the database; the try still starts at the first poke."""
    poke1 = plan(facts("running"))
    sent = poke1.remembered(None)
    assert plan(facts("up_for_reschedule"), sent).empty
    assert plan(facts("running", start=START + 60_000), sent).empty
    done = plan(facts("success", start=START + 120_000, end=START + 121_000), sent)
    assert not done.send_started
    assert done.started_ms == START
    assert done.completion == Completion(end_ms=START + 121_000, result="SUCCESS", native="success")


@pytest.mark.parametrize("state", [None, "scheduled", "queued"])
def test_a_try_not_started_needs_nothing_while_the_run_goes_on(state: str | None) -> None:
    assert plan(facts(state, host=None, start=None)).empty


def test_a_completed_try_is_not_completed_again() -> None:
    sent = plan(facts("failed")).remembered(None)
    assert plan(facts("failed"), sent).empty
    assert plan(facts("failed"), sent, run_end=RUN_END).empty


def test_a_started_try_is_completed_without_a_second_started() -> None:
    sent = Sent(started_ms=START)
    got = plan(facts("success"), sent)
    assert not got.send_started
    assert got.completion is not None and got.completion.end_ms == END


@pytest.mark.parametrize(
    ("state", "host", "start", "result"),
    [
        ("running", "w1", START, "FAILURE"),  # abandoned when the run ended
        ("queued", None, None, "SKIPPED"),
        (None, None, None, "SKIPPED"),  # never scheduled
        ("deferred", "w1", START, "FAILURE"),
    ],
)
def test_the_runs_end_closes_a_try_in_any_other_state_at_the_runs_end(
    state: str | None, host: str | None, start: int | None, result: str
) -> None:
    got = plan(facts(state, host=host, start=start), run_end=RUN_END)
    assert got.completion == Completion(end_ms=RUN_END, result=result, native=state or "none")
    assert got.send_started
    assert got.started_ms == (START if start is not None else RUN_END)


@pytest.mark.parametrize("state", ["upstream_failed", "skipped", "success", "removed"])
def test_a_try_that_never_ran_starts_when_it_ends(state: str) -> None:
    """upstream_failed, skipped by a branch, EmptyOperator under the scheduler, marked in the
    UI: no worker, so no start of its own."""
    got = plan(facts(state, host=None, start=None, end=END), run_end=RUN_END)
    assert got.started_ms == END
    assert got.completion is not None and got.completion.end_ms == END


def test_a_final_try_without_an_end_date_ends_with_the_run() -> None:
    """A DAG-run timeout sets a running task to skipped without an end_date."""
    f = TaskRunFacts(
        dag_id="d", task_id="t", run_id="r", state="skipped", hostname="w1", start_ms=START
    )
    got = plan(f, run_end=RUN_END)
    assert got.completion == Completion(end_ms=RUN_END, result="SKIPPED", native="skipped")


states = st.sampled_from(
    [None, "scheduled", "queued", "running", "deferred", "up_for_reschedule", *FINAL_STATES]
)


@given(seen=st.lists(st.tuples(states, st.booleans()), min_size=1, max_size=12))
def test_whatever_a_process_sees_it_sends_at_most_one_started_and_one_complete(
    seen: list[tuple[str | None, bool]],
) -> None:
    """A process seeing a try in any sequence of states (and run ends) sends each event at
    most once, and a COMPLETE only after (or with) a STARTED."""
    sent: Sent | None = None
    started = completed = 0
    for state, run_ended in seen:
        p = plan(facts(state), sent, run_end=RUN_END if run_ended else None)
        started += p.send_started
        if p.completion is not None:
            assert started == 1
            completed += 1
        sent = p.remembered(sent)
    assert started <= 1 and completed <= 1


@given(
    final=st.sampled_from(sorted(FINAL_STATES)),
    start=st.integers(0, 10**13),
    length=st.integers(0, 10**9),
    host=st.sampled_from([None, "", "w1"]),
    watched=st.booleans(),
    run_ended=st.booleans(),
)
def test_a_process_that_knows_nothing_sends_the_events_of_one_that_saw_it_all(  # noqa: PLR0917
    final: str, start: int, length: int, host: str | None, watched: bool, run_ended: bool
) -> None:
    """A scheduler that watched the try run, and one that only reads its end (a restart, an
    API server, HA), send events with the same timestamps: a re-send overwrites itself."""
    run_end = start + length + 5 if run_ended else None
    sent = None
    events = []
    if watched and host:
        running = plan(facts("running", host=host, start=start))
        events.append(("STARTED", running.started_ms))
        sent = running.remembered(None)
    ended = plan(facts(final, host=host, start=start, end=start + length), sent, run_end=run_end)
    if ended.send_started:
        events.append(("STARTED", ended.started_ms))
    assert ended.completion is not None
    events.append(("COMPLETE", ended.completion.end_ms))

    fresh = plan(facts(final, host=host, start=start, end=start + length), run_end=run_end)
    assert fresh.completion is not None
    assert [("STARTED", fresh.started_ms), ("COMPLETE", fresh.completion.end_ms)] == events
