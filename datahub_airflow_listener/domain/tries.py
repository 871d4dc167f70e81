"""Which run events a task try still needs: one STARTED and one COMPLETE, at Airflow's times.

DataHub keys a run event by (instance urn, timestamp): a re-sent identical event overwrites
itself, an event with another timestamp is a second event. So every process that sends events
for a try builds them from the same facts, the ones Airflow records for the try in its
metadata database (``start_date``, ``end_date``, ``state``, ``try_number``), and remembers what
it sent so that it sends each event once. A process that knows nothing (a restarted scheduler,
an API server) re-sends identical events, which is harmless.

:func:`plan_try` is that rule, pure: from a try's recorded facts, what this process already
sent for it and, when the DAG run has ended, the run's end time, it returns the events to send
now. It never looks at which process reported the end: a try ended by its worker, by the
triggerer, by the scheduler (heartbeat timeout), by a mark in the UI or by nothing (a killed
process, a DAG-run timeout) reads the same in the database.
"""

from __future__ import annotations

from typing import Final

import attrs

from datahub_airflow_listener.domain.runs import TaskRunFacts

__all__ = [
    "FINAL_STATES",
    "Completion",
    "Sent",
    "TryPlan",
    "plan_try",
    "result_for_state",
]

# DataHub result for each final Airflow task state. upstream_failed and removed tasks never
# ran, so they are SKIPPED (nativeResultType keeps Airflow's exact state).
_RESULTS: Final = {
    "success": "SUCCESS",
    "failed": "FAILURE",
    "up_for_retry": "UP_FOR_RETRY",
    "skipped": "SKIPPED",
    "upstream_failed": "SKIPPED",
    "removed": "SKIPPED",
}
FINAL_STATES: Final = frozenset(_RESULTS)

# A try in one of these states has started (its start_date is set) and has not ended.
_IN_PROGRESS: Final = frozenset(
    {"running", "deferred", "up_for_reschedule", "restarting", "awaiting_input"}
)


def result_for_state(state: str | None, *, ran: bool = True) -> tuple[str, str]:
    """(DataHub result, native result) for a task's state when its try is over.

    A state that is not final when the DAG run ends (running, queued, deferred, none...) means
    the try was abandoned: FAILURE if it had started running (``ran``), else SKIPPED.
    """
    native = state or "none"
    result = _RESULTS.get(native)
    if result is None:
        result = "FAILURE" if ran else "SKIPPED"
    return result, native


@attrs.frozen(kw_only=True)
class Sent:
    """What a process already sent for one try."""

    started_ms: int | None = None  # the STARTED event's timestamp
    completed: bool = False


@attrs.frozen(kw_only=True)
class Completion:
    end_ms: int
    result: str
    native: str


@attrs.frozen(kw_only=True)
class TryPlan:
    """The events to send now for one try (``send_started`` / ``completion``), and the try's
    STARTED time (sent now or earlier) that a COMPLETE's duration counts from."""

    started_ms: int | None = None
    send_started: bool = False
    completion: Completion | None = None

    @property
    def empty(self) -> bool:
        return not self.send_started and self.completion is None

    def remembered(self, before: Sent | None) -> Sent:
        """What the sender knows once this plan is sent."""
        return Sent(
            started_ms=self.started_ms,
            completed=self.completion is not None or (before is not None and before.completed),
        )


def ran_on_a_worker(facts: TaskRunFacts) -> bool:
    """A worker picked the try up: it has a hostname and a start. A task that never ran
    (upstream_failed, skipped by a branch, EmptyOperator under the scheduler, marked in the
    UI before it ran) has no hostname."""
    return bool(facts.hostname) and facts.start_ms is not None


def plan_try(
    facts: TaskRunFacts,
    sent: Sent | None = None,
    *,
    run_end_ms: int | None = None,
    now_ms: int,
) -> TryPlan:
    """The events ``facts``' try needs now, given what was ``sent`` already.

    * STARTED, once, at the try's ``start_date``. The first STARTED sent is kept: a sensor
      in reschedule mode restarts its try at every poke (a new ``start_date`` in the database),
      and the try still has one STARTED, at its first poke. A try that never ran on a worker
      starts when it ends.
    * COMPLETE, once, when the try's state is final, at its ``end_date``; with
      ``run_end_ms`` (the DAG run has ended), also for a try left in any other state, at the
      run's end: FAILURE if it had started, SKIPPED if it never did.
    """
    state = facts.state or "none"
    ran = ran_on_a_worker(facts)
    started_before = sent.started_ms if sent is not None else None
    final = state in FINAL_STATES
    if not final and run_end_ms is None:
        if state in _IN_PROGRESS and facts.start_ms is not None and started_before is None:
            return TryPlan(started_ms=facts.start_ms, send_started=True)
        return TryPlan(started_ms=started_before)
    if final:
        result, native = result_for_state(state)
        end = facts.end_ms if facts.end_ms is not None else run_end_ms
    else:
        result, native = result_for_state(state, ran=ran or started_before is not None)
        end = run_end_ms
    if end is None:
        end = now_ms
    if started_before is not None:
        started, send_started = started_before, False
    else:
        started = facts.start_ms if ran and facts.start_ms is not None else end
        send_started = True
    completion = None
    if sent is None or not sent.completed:
        completion = Completion(end_ms=end, result=result, native=native)
    return TryPlan(started_ms=started, send_started=send_started, completion=completion)
