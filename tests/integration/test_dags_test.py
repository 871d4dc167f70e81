"""The example DAGs under ``airflow dags test`` (one process per DAG run) with the plugin on.

Each DAG runs once per module, in parallel (``IT_PARALLEL``, default two at a time, each in its
own clone of the migrated home), with the plugin writing to a ``datahub-file`` connection and to
a ``datahub-rest`` connection (a loopback fake GMS, one per run) at the same time. Then: every
rule of the issue (:func:`expectations.check_dag_run`), the golden file (``UPDATE_GOLDEN=1``
rewrites it), both sinks agreeing, and every MCP passing the acryl-datahub oracle.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest

from tests.integration.airflow_env import AirflowEnv, CommandResult, datahub_env
from tests.integration.dbcheck import check_against_airflow, read_airflow_run
from tests.integration.expectations import check_dag_run, oracle_errors
from tests.integration.records import Recorded, dump_golden, golden_form
from tests.support.fake_gms import FakeGms

EXAMPLES = ("etl_orders", "taskflow_mapping", "flaky_retry", "branching")
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
MAX_MCPS_PER_TRY = 8


@attrs.frozen
class DagsTestRun:
    dag_id: str
    result: CommandResult
    recorded: Recorded
    gms: FakeGms
    home: Path

    @property
    def run_id(self) -> str:
        flows = [i for i in self.recorded.instances.values() if i.is_flow_run]
        assert len(flows) == 1, f"{self.dag_id}: {len(flows)} DAG-run instances"
        return flows[0].custom["run_id"]


@pytest.fixture(scope="module")
def runs(
    migrated_home: AirflowEnv,
    tmp_path_factory: pytest.TempPathFactory,
    gms_factory: Callable[[], FakeGms],
) -> dict[str, DagsTestRun]:
    def one(dag_id: str) -> DagsTestRun:
        home = migrated_home.clone(tmp_path_factory.mktemp(f"dags-test-{dag_id}"))
        out = home.home / "datahub-out.json"
        gms = gms_factory()
        result = home.dags_test(dag_id, env=datahub_env(file_path=out, gms_url=gms.url))
        return DagsTestRun(
            dag_id=dag_id,
            result=result,
            recorded=Recorded.from_file(out),
            gms=gms,
            home=home.home,
        )

    with ThreadPoolExecutor(max_workers=int(os.environ.get("IT_PARALLEL", "2"))) as pool:
        return dict(zip(EXAMPLES, pool.map(one, EXAMPLES), strict=True))


@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_dags_test_succeeds_and_records(runs: dict[str, DagsTestRun], dag_id: str) -> None:
    run = runs[dag_id]
    run.result.check()
    assert len(run.recorded) > 0, f"nothing recorded; see {run.result.log_path}"
    problems = check_dag_run(run.recorded, dag_id, run.run_id, "manual", results=False)
    assert not problems, "\n".join(problems) + f"\n(log: {run.result.log_path})"


@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_record_matches_airflows_own(
    runs: dict[str, DagsTestRun], dag_id: str, airflow_major: int
) -> None:
    """Every try in the metadata DB: one STARTED and one COMPLETE at its recorded times.

    ``dags test`` stamps its run's start_date with the logical date: the run is recorded as
    starting with its first task, so the run's start is not compared here.
    """
    run = runs[dag_id]
    airflow = read_airflow_run(f"sqlite:///{run.home / 'airflow.db'}", dag_id, run.run_id)
    problems = check_against_airflow(
        run.recorded, airflow, check_run_start=False, unarchived_retries=airflow_major < 3
    )
    assert not problems, "\n".join(problems) + f"\n(log: {run.result.log_path})"


@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_nothing_left_open(runs: dict[str, DagsTestRun], dag_id: str) -> None:
    assert runs[dag_id].recorded.open_instances() == []


def test_flaky_retry_shares_one_instance_across_attempts(runs: dict[str, DagsTestRun]) -> None:
    """Both tries are attempts of the one instance, in order, the first UP_FOR_RETRY.

    ``dags test`` keeps the first try as failed in ``task_instance_history`` on Airflow 3 and
    keeps no row of it on Airflow 2: there the try is recorded from its end hook's instance.
    """
    run = runs["flaky_retry"]
    rec = run.recorded
    flaky = rec.task_run(rec.flow_run("flaky_retry"), "flaky")
    airflow = read_airflow_run(f"sqlite:///{run.home / 'airflow.db'}", "flaky_retry", run.run_id)
    tries = sorted(t.try_number for t in airflow.tries if t.task_id == "flaky")
    assert tries[-1] == 2
    assert [(e["status"], e.get("attempt")) for e in flaky.events] == [
        (status, n) for n in (1, 2) for status in ("STARTED", "COMPLETE")
    ]
    assert flaky.result_by_attempt() == {1: "UP_FOR_RETRY", 2: "SUCCESS"}


def test_dag_run_started_before_its_first_task(runs: dict[str, DagsTestRun]) -> None:
    """``dags test`` fires no on_dag_run_running: STARTED must come no later than the first task."""
    for dag_id, run in runs.items():
        flow = run.recorded.flow_run(dag_id)
        tasks = run.recorded.task_runs(flow)
        first_task = min(e["timestampMillis"] for t in tasks for e in t.started())
        assert flow.started(), f"{dag_id}: no STARTED for the DAG run"
        assert flow.started()[0]["timestampMillis"] <= first_task, dag_id


def test_mcps_per_task_try_within_budget(runs: dict[str, DagsTestRun]) -> None:
    for dag_id, run in runs.items():
        flow = run.recorded.flow_run(dag_id)
        for inst in run.recorded.task_runs(flow):
            tries = max(len(inst.result_by_attempt()), 1)
            assert inst.mcp_count / tries <= MAX_MCPS_PER_TRY, (dag_id, inst.custom, inst.mcp_count)


@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_golden(
    runs: dict[str, DagsTestRun], dag_id: str, airflow_major: int, update_golden: bool
) -> None:
    """Normalised output equals the golden file (``UPDATE_GOLDEN=1`` rewrites it).

    One file per DAG (``golden/<dag>.json``) for every Airflow version; a version whose
    record differs keeps its own (``golden/af<major>/<dag>.json``)."""
    import socket

    got = dump_golden(golden_form(runs[dag_id].recorded.mcps, volatile=[socket.gethostname()]))
    shared = GOLDEN_DIR / f"{dag_id}.json"
    own = GOLDEN_DIR / f"af{airflow_major}" / f"{dag_id}.json"
    if update_golden:
        if not shared.exists() or (airflow_major >= 3 and not own.exists()):
            shared.write_text(got)
        elif got != shared.read_text():
            own.parent.mkdir(parents=True, exist_ok=True)
            own.write_text(got)
        elif own.exists():
            own.unlink()
    path = own if own.exists() else shared
    assert path.exists(), f"no golden file {path}; UPDATE_GOLDEN=1 writes it"
    assert got == path.read_text(), f"differs from {path}; UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_gms_received_what_the_file_got(runs: dict[str, DagsTestRun], dag_id: str) -> None:
    """Both connections of ``conn_id`` got every event; the GMS saw no protocol violation."""
    run = runs[dag_id]
    assert run.gms.violations == []
    assert golden_form(run.gms.accepted()) == golden_form(run.recorded.mcps)


def test_every_recorded_mcp_passes_the_acryl_datahub_oracle(runs: dict[str, DagsTestRun]) -> None:
    """Each MCP a real Airflow produced parses, validates and round-trips in acryl-datahub."""
    mcps = [m for run in runs.values() for m in run.recorded.mcps]
    mcps += [m for run in runs.values() for m in run.gms.accepted()]  # the wire form too
    errors = oracle_errors(mcps)
    if errors is None:
        pytest.skip("no acryl-datahub interpreter (set DHAL_ORACLE_PYTHON)")
    assert errors == [], "\n".join(errors[:20])
    assert len(mcps) > 0
