"""Many machines and a degraded DataHub: no loss, no storm, no manual flush.

A real distributed deployment: PostgreSQL as the metadata DB, CeleryExecutor on Redis (both
servers from Debian's packages, started on free loopback ports for the module and always
stopped), api-server, dag-processor and scheduler with one outbox (the scheduler's machine),
and two Celery workers, each with its own outbox directory (two other machines). The example
DAGs run in four scenarios, each checked against Airflow's own rows (every run and try
recorded with its links, nothing open), with the MCPs the stand-in GMS received counted
against the distinct ones:

* healthy;
* DataHub down for the whole run, back only after the workers stopped (a scale-in);
* the same, with one worker's outbox directory deleted after it stopped (its pod is gone);
* DataHub answering every request after 5 s;
* two schedulers (HA), the second on another machine.

Airflow 3 only (on Airflow 2 every process reads the metadata DB; the scheduler's watch is the
same). Skips with the reason when PostgreSQL, Redis or the Celery provider is missing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.airflow_env import (
    EXAMPLE_DAGS,
    AirflowEnv,
    Deployment,
    airflow_version,
    datahub_env,
)
from tests.integration.dbcheck import check_against_airflow, read_airflow_run, summary
from tests.integration.records import Recorded
from tests.support.fake_gms import FakeGms
from tests.support.servers import Postgres, Redis, postgres_bin, redis_bin

pytestmark = pytest.mark.scheduler

DAGS = ("etl_orders", "taskflow_mapping", "flaky_retry", "branching")
WORKERS = ("worker-a", "worker-b")
RUN_DEADLINE = 300.0
RECORD_DEADLINE = 90.0
MAX_RESENT = 1.1  # MCPs received per distinct MCP


class Cluster:
    def __init__(self, dep: Deployment, root: Path, gms: FakeGms, db_url: str) -> None:
        self.dep = dep
        self.root = root
        self.gms = gms
        self.db_url = db_url
        self.generation = 0

    def outbox(self, worker: str) -> Path:
        return self.root / f"{worker}-{self.generation}" / "datahub"

    def start_workers(self) -> None:
        self.generation += 1
        for worker in WORKERS:
            self.dep.add_component(
                worker,
                "celery",
                "worker",
                "--concurrency",
                "2",
                "--celery-hostname",
                f"{worker}-{self.generation}@%h",
                env={"AIRFLOW__DATAHUB__OUTBOX_PATH": str(self.outbox(worker))},
            )

    def stop_workers(self) -> None:
        for worker in WORKERS:
            self.dep.stop_component(worker)

    def run_with_workers(self) -> list[str]:
        """Workers up, every DAG run once, workers down; the record's problems."""
        self.start_workers()
        try:
            return self.check(self.run_all())
        finally:
            self.stop_workers()

    def run_all(self) -> dict[str, str]:
        run_ids = {dag_id: self.dep.trigger(dag_id) for dag_id in DAGS}
        for dag_id, run_id in run_ids.items():
            assert self.dep.wait_for_run(dag_id, run_id, timeout=RUN_DEADLINE) in (
                "success",
                "failed",
            )
        return run_ids

    def check(self, run_ids: dict[str, str]) -> list[str]:
        """Until every run's record matches Airflow's (or the deadline)."""
        deadline = time.monotonic() + RECORD_DEADLINE
        while True:
            recorded = Recorded(self.gms.accepted())
            problems = []
            for dag_id, run_id in run_ids.items():
                airflow = read_airflow_run(self.db_url, dag_id, run_id)
                found = check_against_airflow(recorded, airflow)
                if found:
                    problems += [*found, f"Airflow's rows: {summary(airflow)}"]
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(2)


def resent_ratio(mcps: list[dict[str, object]]) -> float:
    keys = [json.dumps(m, sort_keys=True) for m in mcps]
    return len(keys) / max(len(set(keys)), 1)


def assert_recorded_once(cluster: Cluster, problems: list[str]) -> None:
    """Nothing lost or open (``problems`` from :meth:`Cluster.check`), and no storm."""
    assert not problems, "\n".join(problems)
    ratio = resent_ratio(cluster.gms.accepted())
    assert ratio <= MAX_RESENT, f"{ratio:.2f} MCPs received per distinct one"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if airflow_version()[0] < 3:
        pytest.skip("the distributed scenarios run on Airflow 3 (see the module docstring)")
    if postgres_bin() is None or redis_bin() is None:
        pytest.skip("PostgreSQL or redis-server is not installed (apt-get install both)")
    if importlib.util.find_spec("airflow.providers.celery") is None:
        pytest.skip("apache-airflow-providers-celery is not installed")
    pytest.importorskip("psycopg2", reason="the Airflow environment lacks psycopg2-binary")
    root = tmp_path_factory.mktemp("distributed")
    with Postgres() as pg, Redis() as redis, FakeGms() as gms:
        backend = "db+" + pg.url  # celery keeps task results in the same database
        home = AirflowEnv(
            root / "home",
            EXAMPLE_DAGS,
            env={
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg.url,
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": backend,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            },
        )
        home.migrate()
        env = datahub_env(
            gms_url=gms.url,
            extra={
                "AIRFLOW__DATAHUB__RECONCILE_INTERVAL_SEC": "2",
                "AIRFLOW__DATAHUB__OUTBOX_PATH": str(root / "scheduler-machine" / "datahub"),
            },
        )
        with home.deployment(env=env) as dep:
            for dag_id in DAGS:
                dep.wait_for_dag(dag_id)
            yield Cluster(dep, root, gms, pg.url)


def test_healthy(cluster: Cluster) -> None:
    cluster.gms.reset()
    assert_recorded_once(cluster, cluster.run_with_workers())


@pytest.mark.parametrize("lose_a_disk", [False, True], ids=["scale-in", "disk-gone"])
def test_datahub_down_for_the_run_and_back_after_the_workers_left(
    cluster: Cluster, lose_a_disk: bool
) -> None:
    cluster.gms.reset()
    cluster.gms.stop()
    try:
        cluster.start_workers()
        run_ids = cluster.run_all()
        cluster.stop_workers()
        if lose_a_disk:
            shutil.rmtree(cluster.outbox("worker-a").parent, ignore_errors=True)
    finally:
        cluster.gms.start()
    problems = cluster.check(run_ids)  # no flush by hand: the long-lived processes deliver
    assert_recorded_once(cluster, problems)


def test_a_slow_datahub_gets_no_storm(cluster: Cluster) -> None:
    cluster.gms.reset()
    cluster.gms.delay_sec = 5.0
    try:
        cluster.start_workers()
        try:
            run_ids = cluster.run_all()
        finally:
            cluster.stop_workers()
        problems = cluster.check(run_ids)
    finally:
        cluster.gms.delay_sec = 0.0
    assert_recorded_once(cluster, problems)


def test_two_schedulers_record_every_run_once(cluster: Cluster) -> None:
    """HA: a second scheduler on another machine (its own outbox). Each run's end is recorded
    by the scheduler that ended it, the tries by the one that watches: once, or identically."""
    cluster.gms.reset()
    cluster.dep.add_component(
        "scheduler-2",
        "scheduler",
        env={"AIRFLOW__DATAHUB__OUTBOX_PATH": str(cluster.root / "scheduler-2" / "datahub")},
    )
    try:
        problems = cluster.run_with_workers()
    finally:
        cluster.dep.stop_component("scheduler-2")
    assert_recorded_once(cluster, problems)
