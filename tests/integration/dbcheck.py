"""What was recorded for a DAG run, checked against what Airflow recorded in its metadata DB.

The truth is Airflow's own rows: ``dag_run``, ``task_instance`` and ``task_instance_history``
(earlier tries). Run events are reduced the way DataHub stores them (one per urn and
timestamp: a later event with the same timestamp overwrites). Then, for the DAG run and for
every try Airflow knows, the checker fails on:

* a missing instance, or one without its properties, parent instance or template;
* a missing or extra STARTED or COMPLETE (exactly one of each per try);
* an attempt Airflow does not know, or a result that does not follow the try's state;
* a STARTED not at the try's ``start_date``, a COMPLETE not at its ``end_date``, a duration
  off by more than 1 s from Airflow's (end - start);
* anything left open.

This module reimplements the expected mapping from Airflow's states on purpose instead of
importing the package's rule: the test must be able to disagree with the code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from tests.integration.records import Instance, Recorded

CLUSTER: Final = "prod"
TOLERANCE_MS: Final = 1000
# An ended try's DataHub result for each state Airflow can leave it in.
RESULT_OF_STATE: Final = {
    "success": "SUCCESS",
    "failed": "FAILURE",
    "up_for_retry": "UP_FOR_RETRY",
    "skipped": "SKIPPED",
    "upstream_failed": "SKIPPED",
    "removed": "SKIPPED",
}


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@attrs.frozen
class Try:
    task_id: str
    map_index: int
    try_number: int
    state: str | None
    start_ms: int | None
    end_ms: int | None
    hostname: str | None
    rescheduled: bool = False

    @property
    def ran(self) -> bool:
        return bool(self.hostname) and self.start_ms is not None


@attrs.frozen
class AirflowRun:
    dag_id: str
    run_id: str
    state: str
    start_ms: int | None
    end_ms: int | None
    clear_number: int
    tries: tuple[Try, ...]


def read_airflow_run(db_url: str, dag_id: str, run_id: str) -> AirflowRun:
    """The run's rows, read with SQLAlchemy (the same for SQLite and PostgreSQL)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            run = conn.execute(
                text(
                    "SELECT state, start_date, end_date, clear_number FROM dag_run"
                    " WHERE dag_id = :d AND run_id = :r"
                ),
                {"d": dag_id, "r": run_id},
            ).one()
            tries = []
            for table in ("task_instance_history", "task_instance"):
                rows = conn.execute(
                    text(
                        "SELECT task_id, map_index, try_number, state, start_date, end_date,"
                        f" hostname, max_tries FROM {table} WHERE dag_id = :d AND run_id = :r"
                    ),
                    {"d": dag_id, "r": run_id},
                )
                for task_id, map_index, try_number, raw, start, end, host, max_tries in rows:
                    state = raw
                    if table == "task_instance_history":
                        state = _archived_state(raw, end, try_number, max_tries)
                    tries.append(
                        Try(
                            task_id=task_id,
                            map_index=map_index,
                            try_number=max(int(try_number or 0), 1),
                            state=state,
                            start_ms=_ms(start),
                            end_ms=_ms(end),
                            hostname=host,
                        )
                    )
            rescheduled = _rescheduled(conn, dag_id, run_id)
    finally:
        engine.dispose()
    return AirflowRun(
        dag_id=dag_id,
        run_id=run_id,
        state=run[0],
        start_ms=_ms(run[1]),
        end_ms=_ms(run[2]),
        clear_number=int(run[3] or 0),
        tries=tuple(
            attrs.evolve(t, rescheduled=(t.task_id, t.map_index) in rescheduled) for t in tries
        ),
    )


def _archived_state(state: str, end: Any, try_number: int, max_tries: int | None) -> str:
    """How an archived (earlier) try ended. Airflow archives a try it retries as ``failed``
    (3.x) or still ``running`` with its end date (2.x); it was retried if it was eligible for
    a retry, ``try_number <= max_tries``, when archived."""
    if state not in ("failed", "running") or (state == "running" and end is None):
        return state
    if max_tries is not None and try_number <= max_tries:
        return "up_for_retry"
    return "failed"


def _rescheduled(conn: Any, dag_id: str, run_id: str) -> set[tuple[str, int]]:
    """(task_id, map_index) of the tasks that were rescheduled (a sensor in reschedule mode)."""
    from sqlalchemy import inspect, text

    columns = {c["name"] for c in inspect(conn).get_columns("task_reschedule")}
    if "ti_id" in columns:  # Airflow 3: rows keyed by the try's id
        query = (
            "SELECT ti.task_id, ti.map_index FROM task_reschedule tr"
            " JOIN task_instance ti ON ti.id = tr.ti_id"
            " WHERE ti.dag_id = :d AND ti.run_id = :r"
        )
    else:
        query = "SELECT task_id, map_index FROM task_reschedule WHERE dag_id = :d AND run_id = :r"
    return {(t, m) for t, m in conn.execute(text(query), {"d": dag_id, "r": run_id})}


def dpi_urn(instance_id: str) -> str:
    key = json.dumps(
        {"cluster": CLUSTER, "id": instance_id, "orchestrator": "airflow"},
        separators=(",", ":"),
        sort_keys=True,
    )
    return "urn:li:dataProcessInstance:" + hashlib.md5(key.encode()).hexdigest()


def stored_events(inst: Instance) -> list[dict[str, Any]]:
    """The instance's run events as DataHub keeps them: the last one per timestamp."""
    by_ts: dict[int, dict[str, Any]] = {}
    for event in inst.events:
        by_ts[int(event["timestampMillis"])] = event
    return [by_ts[ts] for ts in sorted(by_ts)]


def check_against_airflow(
    recorded: Recorded,
    run: AirflowRun,
    *,
    check_run_start: bool = True,
    unarchived_retries: bool = False,
) -> list[str]:
    """Every violation of the rules in the module docstring (empty: all good).

    ``unarchived_retries``: Airflow keeps no row of a try it retried (Airflow 2's ``dags
    test``); recorded attempts below a try Airflow has are then allowed."""
    problems: list[str] = []
    flows = recorded.flow_runs(run.dag_id, run.run_id)
    if len(flows) != 1:
        return [f"{run.dag_id}: {len(flows)} DAG-run instances for {run.run_id}"]
    flow = flows[0]
    problems += _check_flow(flow, run, check_run_start)
    by_task: dict[tuple[str, int], list[Try]] = {}
    for t in run.tries:
        by_task.setdefault((t.task_id, t.map_index), []).append(t)
    instances = {
        (
            inst.custom.get("task_id") or "",
            int(inst.custom.get("map_index", -1)),
        ): inst
        for inst in recorded.task_runs(flow)
    }
    for key, tries in sorted(by_task.items()):
        inst = instances.get(key)
        label = f"{key[0]}[{key[1]}]"
        if inst is None:
            problems.append(f"{label}: no instance recorded")
            continue
        problems += _check_instance(inst, run, key, label)
        events = stored_events(inst)
        known = {t.try_number for t in tries}
        attempts = {int(e.get("attempt", 0)) for e in events}
        if unarchived_retries:
            attempts = {a for a in attempts if a >= min(known)}
        if attempts - known:
            problems.append(f"{label}: attempts {sorted(attempts - known)} Airflow has no try for")
        for t in sorted(tries, key=lambda x: x.try_number):
            problems += _check_try(t, events, run, f"{label} try {t.try_number}")
    extra = set(instances) - set(by_task)
    if extra:
        problems.append(f"instances for tasks Airflow has no try of: {sorted(extra)}")
    return problems


def _check_flow(flow: Instance, run: AirflowRun, check_start: bool) -> list[str]:
    problems: list[str] = []
    label = f"{run.dag_id} run"
    if flow.parent_template != f"urn:li:dataFlow:(airflow,{run.dag_id},{CLUSTER})":
        problems.append(f"{label}: parentTemplate {flow.parent_template}")
    events = stored_events(flow)
    attempt = run.clear_number + 1
    mine = [e for e in events if int(e.get("attempt", 0)) == attempt]
    started = [e for e in mine if e["status"] == "STARTED"]
    complete = [e for e in mine if e["status"] == "COMPLETE"]
    if len(started) != 1 or len(complete) != 1:
        problems.append(
            f"{label}: attempt {attempt} has {len(started)} STARTED and {len(complete)} COMPLETE"
        )
        return problems
    if check_start and started[0]["timestampMillis"] != run.start_ms:
        problems.append(f"{label}: STARTED at {started[0]['timestampMillis']} != {run.start_ms}")
    if complete[0]["timestampMillis"] != run.end_ms:
        problems.append(f"{label}: COMPLETE at {complete[0]['timestampMillis']} != {run.end_ms}")
    want = "SUCCESS" if run.state == "success" else "FAILURE"
    if complete[0].get("result", {}).get("type") != want:
        problems.append(f"{label}: result {complete[0].get('result')} for state {run.state}")
    return problems


def _check_instance(inst: Instance, run: AirflowRun, key: tuple[str, int], label: str) -> list[str]:
    problems: list[str] = []
    task_id, map_index = key
    if not inst.properties:
        problems.append(f"{label}: no dataProcessInstanceProperties")
    flow_urn = dpi_urn(f"@dag_run:{run.dag_id}:{run.run_id}")
    if inst.parent_instance != flow_urn:
        problems.append(f"{label}: parentInstance {inst.parent_instance} != the DAG run's")
    job = f"urn:li:dataJob:(urn:li:dataFlow:(airflow,{run.dag_id},{CLUSTER}),{task_id})"
    if inst.parent_template != job:
        problems.append(f"{label}: parentTemplate {inst.parent_template} != {job}")
    if map_index < 0 and inst.urn != dpi_urn(f"{run.dag_id}_{task_id}_{run.run_id}"):
        problems.append(f"{label}: urn is not the official plugin's id rule")
    return problems


def _check_try(t: Try, events: list[dict[str, Any]], run: AirflowRun, label: str) -> list[str]:
    problems: list[str] = []
    mine = [e for e in events if int(e.get("attempt", 0)) == t.try_number]
    started = [e for e in mine if e["status"] == "STARTED"]
    complete = [e for e in mine if e["status"] == "COMPLETE"]
    if len(started) != 1 or len(complete) != 1:
        return [f"{label} ({t.state}): {len(started)} STARTED and {len(complete)} COMPLETE"]
    s_ts, c_ts = started[0]["timestampMillis"], complete[0]["timestampMillis"]
    end = t.end_ms if t.state in RESULT_OF_STATE and t.end_ms is not None else run.end_ms
    if t.state in RESULT_OF_STATE:
        want = RESULT_OF_STATE[t.state]
    else:  # left in another state when the run ended
        want = "FAILURE" if t.ran else "SKIPPED"
    got = complete[0].get("result", {})
    if got.get("type") != want or got.get("nativeResultType") != (t.state or "none"):
        problems.append(f"{label}: result {got} for Airflow state {t.state}")
    if t.ran:
        if t.rescheduled:
            if t.start_ms is not None and s_ts > t.start_ms:
                problems.append(f"{label}: STARTED {s_ts} after the try's last poke {t.start_ms}")
        elif s_ts != t.start_ms:
            problems.append(f"{label}: STARTED at {s_ts} != start_date {t.start_ms}")
    if end is not None and abs(c_ts - end) > 1:  # +1: a COMPLETE never shares STARTED's ms
        problems.append(f"{label}: COMPLETE at {c_ts} != end_date {end}")
    duration = complete[0].get("durationMillis")
    measurable = t.ran and not t.rescheduled and end is not None and t.start_ms is not None
    if measurable and (duration is None or abs(duration - (end - t.start_ms)) > TOLERANCE_MS):
        problems.append(f"{label}: duration {duration} != Airflow's {end - t.start_ms} ms")
    return problems


def summary(run: AirflowRun) -> Mapping[str, Any]:
    """A short description of the run for assertion messages."""
    return {
        "state": run.state,
        "tries": sorted((t.task_id, t.map_index, t.try_number, t.state) for t in run.tries),
    }
