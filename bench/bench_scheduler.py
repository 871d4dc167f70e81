"""The scheduler's cost of the plugin at scale: CPU time and makespan, plugin on against off.

A real deployment (api-server, dag-processor, scheduler; PostgreSQL metadata DB from Debian's
package, or SQLite with ``--sqlite``) runs ``--runs`` concurrent DAG runs of a DAG of
``--tasks`` EmptyOperator tasks (the scheduler completes those itself: no task processes, so
what is measured is the scheduler alone, the plugin's worst case), or with ``--python`` of
PythonOperator tasks that run in task processes (LocalExecutor), in interleaved rounds with
the plugin emitting to a loopback GMS and with it disabled. Printed per round and as medians:
the scheduler process's CPU time (user + system, from /proc) from the first trigger to the
last run's end, the makespan, and the ratios on/off. Figures only, no asserts.

    PYTHONPATH=. python bench/bench_scheduler.py [--runs 50] [--tasks 20] [--rounds 2]
                                                 [--python] [--sqlite]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.airflow_env import AirflowEnv, Deployment, datahub_env  # noqa: E402
from tests.support.fake_gms import FakeGms  # noqa: E402
from tests.support.servers import Postgres  # noqa: E402

DAG_FILE = """
from datetime import datetime, timezone
try:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import PythonOperator


def task(task_id):
    if {python}:
        return PythonOperator(task_id=task_id, python_callable=lambda: None)
    return EmptyOperator(task_id=task_id)


with DAG("bench_scale", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
         catchup=False, max_active_runs={runs}, max_active_tasks=1000):
    task("start") >> [task(f"t{{i}}") for i in range({middle})] >> task("end")
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(dep: Deployment, runs: int, plugin: bool, gms_url: str) -> tuple[float, float]:
    dep.stop_scheduler()
    dep.add_component(
        "scheduler",
        "scheduler",
        env={"AIRFLOW__DATAHUB__ENABLED": "True" if plugin else "False"},
    )
    time.sleep(12)  # its start-up (and first look at the database) is not what is measured
    pid = dep.pids()["scheduler"]
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    run_ids = [dep.trigger("bench_scale") for _ in range(runs)]
    for run_id in run_ids:
        dep.wait_for_run("bench_scale", run_id, timeout=1800)
    return cpu_seconds(pid) - cpu0, time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--python", action="store_true", help="PythonOperator tasks")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dags = root / "dags"
        dags.mkdir()
        (dags / "bench_scale.py").write_text(
            DAG_FILE.format(runs=args.runs, middle=max(args.tasks - 2, 1), python=args.python)
        )
        env: dict[str, str] = {}
        if not args.sqlite:
            pg = stack.enter_context(Postgres())
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = pg.url
        home = AirflowEnv(root / "home", dags, env=env)
        home.migrate()
        gms = stack.enter_context(FakeGms())
        plugin_env = datahub_env(gms_url=gms.url)
        dep = stack.enter_context(home.deployment(env=plugin_env))
        dep.wait_for_dag("bench_scale")
        dep.trigger("bench_scale")  # a first run warms the caches of every component
        results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for n in range(args.rounds):
            for plugin in (False, True) if n % 2 == 0 else (True, False):
                cpu, makespan = one_round(dep, args.runs, plugin, gms.url)
                results[plugin].append((cpu, makespan))
                print(
                    f"round {n + 1} plugin {'on ' if plugin else 'off'}: scheduler CPU "
                    f"{cpu:6.1f} s, makespan {makespan:6.1f} s",
                    flush=True,
                )
        off_cpu = statistics.median(c for c, _ in results[False])
        on_cpu = statistics.median(c for c, _ in results[True])
        off_span = statistics.median(m for _, m in results[False])
        on_span = statistics.median(m for _, m in results[True])
        print(
            f"{args.runs} runs x {args.tasks} tasks, medians: scheduler CPU on/off = "
            f"{on_cpu:.1f}/{off_cpu:.1f} s = {on_cpu / off_cpu:.3f}; makespan on/off = "
            f"{on_span:.1f}/{off_span:.1f} s = {on_span / off_span:.3f}; "
            f"GMS received {len(gms.accepted())} MCPs"
        )


if __name__ == "__main__":
    main()
