"""The example and scenario DAGs through a real LocalExecutor deployment with the plugin on.

One deployment per module (start-up is the expensive part: 35-60 s on 2 cores). Every DAG is
triggered up front, so they run concurrently; each test then waits for its own run. Records
come from the scheduler, the task processes and (Airflow 3) the API server, each flushing in
the background, so the checks poll until the record is complete or a deadline passes.

Scenarios (Airflow fires no task end hook in any of them):

* ``scenario_kill9``: the task process is SIGKILLed on its last attempt;
* ``scenario_dagrun_timeout``: the run times out while a task runs;
* ``scenario_upstream_failed``: a failure makes the rest of its chain upstream_failed;
* ``scenario_marked_failed``: the run is marked failed through the REST API while a task runs
  (Airflow 2 fires no hook: the scheduler's reconciler, every 2 s here, records its end).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.airflow_env import (
    EXAMPLE_DAGS,
    SCENARIO_DAGS,
    AirflowEnv,
    Deployment,
    combined_dags_folder,
    datahub_env,
)
from tests.integration.dbcheck import check_against_airflow, read_airflow_run, stored_events
from tests.integration.expectations import EXPECTED, check_dag_run
from tests.integration.records import Recorded, golden_form
from tests.support.fake_gms import FakeGms
from tests.support.waiting import wait_until

pytestmark = pytest.mark.scheduler

EXAMPLES = ("etl_orders", "taskflow_mapping", "flaky_retry", "branching")
SCENARIOS = (
    "scenario_kill9",
    "scenario_dagrun_timeout",
    "scenario_upstream_failed",
    "scenario_marked_failed",
)
RECORD_DEADLINE = 45.0  # after the run ended: background flush in the scheduler and tasks


class Running:
    """The module's deployment, its triggered runs and where the plugin writes."""

    def __init__(self, dep: Deployment, out: Path, fake_gms: FakeGms) -> None:
        self.dep = dep
        self.out = out
        self.fake_gms = fake_gms
        self.run_ids: dict[str, str] = {}
        self.victim_killed = False

    def recorded(self) -> Recorded:
        return Recorded.from_file(self.out)

    def wait_recorded(self, dag_id: str) -> tuple[Recorded, list[str]]:
        """Poll the output until the run's record satisfies every rule and matches Airflow's
        own rows (or the deadline)."""
        deadline = time.monotonic() + RECORD_DEADLINE
        while True:
            rec = self.recorded()
            run_id = self.run_ids[dag_id]
            tries = {
                (ti["task_id"], ti["map_index"]): ti["try_number"]
                for ti in self.dep.task_instances(dag_id, run_id)
            }
            problems = check_dag_run(rec, dag_id, run_id, "manual", tries, results=False)
            airflow = read_airflow_run(self.dep.af.db_url, dag_id, run_id)
            problems += check_against_airflow(rec, airflow)
            if not problems or time.monotonic() > deadline:
                return rec, problems
            time.sleep(1)

    def wait_started(self, dag_id: str, task_id: str, attempt: int) -> bool:
        """Until the record holds the STARTED of the task's try ``attempt`` (or the deadline):
        a try killed or marked after it is one the record knows was running."""

        def started() -> bool:
            rec = self.recorded()
            return any(
                int(event.get("attempt", 0)) == attempt
                for flow in rec.flow_runs(dag_id, self.run_ids[dag_id])
                for task in rec.task_runs(flow, task_id)
                for event in task.started()
            )

        return wait_until(started, timeout=RECORD_DEADLINE, interval=0.5)


@pytest.fixture(scope="module")
def running(
    migrated_home: AirflowEnv, tmp_path_factory: pytest.TempPathFactory, fake_gms: FakeGms
) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("scheduler")
    dags = combined_dags_folder(root / "dags", EXAMPLE_DAGS, SCENARIO_DAGS)
    home = migrated_home.clone(root / "home", dags_folder=dags)
    out = root / "datahub-out.json"
    env = datahub_env(
        file_path=out,
        gms_url=fake_gms.url,
        extra={"AIRFLOW__DATAHUB__RECONCILE_INTERVAL_SEC": "2"},
    )
    with home.deployment(env=env) as dep:
        state = Running(dep, out, fake_gms)
        # scenarios first: their slow tasks then overlap the examples instead of following them
        for dag_id in (*SCENARIOS, *EXAMPLES):
            state.run_ids[dag_id] = dep.trigger(dag_id)
        yield state


@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_example_dag_under_scheduler(running: Running, dag_id: str) -> None:
    state = running.dep.wait_for_run(dag_id, running.run_ids[dag_id])
    assert state == "success"
    _, problems = running.wait_recorded(dag_id)
    assert not problems, "\n".join(problems)


def test_cleared_run_reuses_its_instances(running: Running) -> None:
    """Clearing a finished run: same urns, attempts climb, clear_number + 1, nothing open."""
    dag_id = "etl_orders"
    run_id = running.run_ids[dag_id]
    assert running.dep.wait_for_run(dag_id, run_id) == "success"
    before = running.wait_recorded(dag_id)[0]
    urns = {i.urn for i in before.task_runs(before.flow_run(dag_id, run_id))}
    first = {t["task_id"]: t["try_number"] for t in running.dep.task_instances(dag_id, run_id)}
    running.dep.clear_run(dag_id, run_id)
    deadline = time.monotonic() + 180
    while True:  # every task ran again (a higher try_number) and succeeded
        tis = running.dep.task_instances(dag_id, run_id)
        if all(t["try_number"] > first[t["task_id"]] and t["state"] == "success" for t in tis):
            break
        assert time.monotonic() < deadline, f"cleared run did not re-run: {tis}"
        time.sleep(1)
    assert running.dep.wait_for_run(dag_id, run_id) == "success"
    tries = {t["task_id"]: t["try_number"] for t in tis}
    deadline = time.monotonic() + RECORD_DEADLINE
    while True:
        rec = running.recorded()
        flow = rec.flow_run(dag_id, run_id)  # still exactly one instance for the run
        tasks = {t.urn: t for t in rec.task_runs(flow)}
        done = (
            flow.custom.get("clear_number") == "1"
            and not flow.open_attempts()
            and all(
                max(t.result_by_attempt(), default=0) == tries[t.custom["task_id"]]
                and not t.open_attempts()
                for t in tasks.values()
            )
        )
        if done or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(tasks) == urns
    assert flow.custom.get("clear_number") == "1"
    assert not flow.open_attempts()
    assert len(flow.completed()) >= 2, "the second end of the run was not recorded"
    for task in tasks.values():
        results = task.result_by_attempt()
        assert set(results.values()) == {"SUCCESS"}, (task.custom["task_id"], results)
        assert max(results) == tries[task.custom["task_id"]] > first[task.custom["task_id"]]
        assert not task.open_attempts()


def kill_victim(running: Running) -> None:
    """Wait for ``victim``'s second (last) try, then SIGKILL its task process; idempotent."""
    if running.victim_killed:
        return
    pid_file = running.dep.af.home / "scenario-state" / "scenario_kill9.victim.pid"
    deadline = time.monotonic() + 120
    while True:
        text = pid_file.read_text() if pid_file.exists() else ""
        if text.endswith("\n") and text.split()[1] == "2":
            break
        assert time.monotonic() < deadline, "victim's second try never started"
        time.sleep(0.5)
    recorded = running.wait_started("scenario_kill9", "victim", 2)
    os.kill(int(text.split()[0]), signal.SIGKILL)
    running.victim_killed = True
    assert recorded, "victim's second try was not recorded as started before the kill"


def test_kill9_on_last_attempt_is_closed(running: Running) -> None:
    dag_id = "scenario_kill9"
    run_id = running.run_ids[dag_id]
    kill_victim(running)
    assert running.dep.wait_for_run(dag_id, run_id) == "failed"
    rec, problems = running.wait_recorded(dag_id)
    assert not problems, "\n".join(problems)
    victim = rec.task_run(rec.flow_run(dag_id, run_id), "victim")
    started = [e for e in stored_events(victim) if e["status"] == "STARTED"]
    attempts = [int(e.get("attempt", 0)) for e in started]
    assert attempts == [1, 2], attempts


def test_dagrun_timeout_is_closed(running: Running) -> None:
    dag_id = "scenario_dagrun_timeout"
    run_id = running.run_ids[dag_id]
    assert running.dep.wait_for_run(dag_id, run_id) == "failed"
    tis = {t["task_id"]: t for t in running.dep.task_instances(dag_id, run_id)}
    # the scenario needs `slow` running when the timeout hits (45 s after the run started)
    assert tis["slow"]["start_date"], "slow never started before the timeout: machine too loaded?"
    assert {k: t["state"] for k, t in tis.items()} == {"quick": "success", "slow": "skipped"}
    _, problems = running.wait_recorded(dag_id)
    assert not problems, "\n".join(problems)


def test_upstream_failed_chain_is_closed(running: Running) -> None:
    dag_id = "scenario_upstream_failed"
    assert running.dep.wait_for_run(dag_id, running.run_ids[dag_id]) == "failed"
    tis = {
        t["task_id"]: t["state"]
        for t in running.dep.task_instances(dag_id, running.run_ids[dag_id])
    }
    assert tis == {
        "boom": "failed",
        "middle": "upstream_failed",
        "last": "upstream_failed",
        "sibling": "success",
    }
    _, problems = running.wait_recorded(dag_id)
    assert not problems, "\n".join(problems)


def test_run_marked_failed_through_the_api_is_closed(running: Running) -> None:
    dag_id = "scenario_marked_failed"
    run_id = running.run_ids[dag_id]
    running.dep.wait_for_task(dag_id, run_id, "sleeper", lambda ti: ti["state"] == "running")
    assert running.wait_started(dag_id, "sleeper", 1), "sleeper's try was not recorded as started"
    running.dep.mark_run(dag_id, run_id, "failed")
    assert running.dep.wait_for_run(dag_id, run_id) == "failed"
    rec, problems = running.wait_recorded(dag_id)
    assert not problems, "\n".join(problems)
    assert not rec.flow_run(dag_id, run_id).open_attempts()


def test_nothing_left_open_after_all_runs(running: Running) -> None:
    """Runs last: every triggered run has ended, so no instance may still be open."""
    kill_victim(running)  # in case the kill test was deselected
    for dag_id, run_id in running.run_ids.items():
        running.dep.wait_for_run(dag_id, run_id, timeout=240)
    deadline = time.monotonic() + RECORD_DEADLINE
    while (open_ := running.recorded().open_instances()) and time.monotonic() < deadline:
        time.sleep(1)
    assert open_ == []
    assert set(EXPECTED) >= set(running.run_ids)


def test_gms_received_what_the_file_got(running: Running) -> None:
    """Every process delivered to both connections; the GMS saw no protocol violation."""
    deadline = time.monotonic() + RECORD_DEADLINE
    while True:
        file_form = golden_form(running.recorded().mcps)
        gms_form = golden_form(running.fake_gms.accepted())
        if file_form == gms_form or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert running.fake_gms.violations == []
    assert gms_form == file_form


def test_runs_marked_around_a_scheduler_restart_are_closed(running: Running) -> None:
    """A deploy restarts the scheduler: one run is marked failed while no scheduler runs, one
    after the restart. Airflow 2 fires no hook for either, and the new scheduler never saw
    them start; it finds them in the database when it starts. Runs last: it stops the
    scheduler, which would kill the other scenarios' task processes."""
    dep = running.dep
    kill_victim(running)  # in case the tests that end those runs were deselected
    if dep.run_state("scenario_marked_failed", running.run_ids["scenario_marked_failed"]) not in (
        "success",
        "failed",
    ):
        dep.mark_run("scenario_marked_failed", running.run_ids["scenario_marked_failed"], "failed")
    for dag_id, run_id in running.run_ids.items():
        dep.wait_for_run(dag_id, run_id, timeout=240)
    dag_id = "scenario_blocked"
    marked_while_down, marked_after = dep.trigger(dag_id), dep.trigger(dag_id)
    for run_id in (marked_while_down, marked_after):
        dep.wait_for_task(dag_id, run_id, "waiting", lambda ti: ti["state"] == "scheduled")

    def started_by_the_first_scheduler() -> bool:
        rec = running.recorded()
        runs = [rec.flow_runs(dag_id, r) for r in (marked_while_down, marked_after)]
        return all(len(found) == 1 and found[0].open_attempts() for found in runs)

    deadline = time.monotonic() + RECORD_DEADLINE
    while not started_by_the_first_scheduler() and time.monotonic() < deadline:
        time.sleep(1)
    assert started_by_the_first_scheduler()
    scheduler_log = dep.logs()["scheduler"]
    dep.stop_scheduler()
    dep.mark_run(dag_id, marked_while_down, "failed")
    log_size = scheduler_log.stat().st_size
    dep.start_scheduler()
    if dep.version[0] < 3:  # give the new scheduler time to read what to watch (its log says)
        deadline = time.monotonic() + 60
        while "watching" not in scheduler_log.read_text(errors="replace")[log_size:]:
            if time.monotonic() > deadline:
                break  # the checks below tell what it missed
            time.sleep(0.5)
    dep.mark_run(dag_id, marked_after, "failed")
    for run_id in (marked_while_down, marked_after):
        running.run_ids[dag_id] = run_id
        rec, problems = running.wait_recorded(dag_id)
        assert not problems, "\n".join(problems)
        assert not rec.flow_run(dag_id, run_id).open_attempts()
    assert running.recorded().open_instances() == []
