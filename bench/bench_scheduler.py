"""The scheduler's cost of the plugin at scale: CPU time and makespan, plugin on against off.

A real deployment (api-server, dag-processor, scheduler; PostgreSQL metadata DB from Debian's
package, or SQLite with ``--sqlite``) runs ``--runs`` concurrent DAG runs of a DAG of
``--tasks`` EmptyOperator tasks (the scheduler completes those itself: no task processes, so
what is measured is the scheduler alone, the plugin's worst case), or with ``--python`` of
PythonOperator tasks that run in task processes (LocalExecutor), in interleaved rounds with
the plugin emitting to a loopback GMS and with it disabled. Printed per round and as medians:
the scheduler process's CPU time (user + system, from /proc) from the first trigger to the
last run's end, the makespan, and the ratios on/off; with the watch in its own process (the
default), that process's CPU too. ``--profile`` writes py-spy's stacks of the scheduler.
Figures only, no asserts.

    PYTHONPATH=. python bench/bench_scheduler.py [--runs 50] [--tasks 20] [--rounds 2]
                                                 [--python] [--sqlite]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import statistics
import subprocess
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


with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
         catchup=False, max_active_runs={runs}, max_active_tasks=1000):
    task("start") >> [task(f"t{{i}}") for i in range({middle})] >> task("end")
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch_processes(pid: int) -> list[int]:
    """The plugin's watch process(es) started by the scheduler ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == pid and b"watch_process" in cmdline:
            found.append(int(entry.name))
    return found


def one_round(
    dep: Deployment, runs: int, plugin: bool, gms_url: str, profile: Path | None = None
) -> tuple[float, float]:
    dep.stop_scheduler()
    dep.add_component(
        "scheduler",
        "scheduler",
        env={"AIRFLOW__DATAHUB__ENABLED": "True" if plugin else "False"},
    )
    time.sleep(12)  # its start-up (and first look at the database) is not what is measured
    pid = dep.pids()["scheduler"]
    spy = None
    if profile is not None and plugin:  # where the scheduler's time goes, plugin on
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(pid),
                "--rate",
                "50",
                "--format",
                "raw",
                "--output",
                str(profile),
                "--nonblocking",
                "--threads",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    watchers = watch_processes(pid)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    watch0 = sum(cpu_seconds(w) for w in watchers)
    # Each side runs its own copy of the DAG, and the plugin records only the "on" copy: a
    # scheduler with the plugin would otherwise also record the runs of the round before it
    # (a scheduler that starts records what ended while none did), doubling its work.
    dag_id = "bench_on" if plugin else "bench_off"
    run_ids = [dep.trigger(dag_id) for _ in range(runs)]
    for run_id in run_ids:
        dep.wait_for_run(dag_id, run_id, timeout=1800)
    result = cpu_seconds(pid) - cpu0, time.monotonic() - t0
    watch = sum(cpu_seconds(w) for w in watchers) - watch0
    if watchers:
        print(f"  the plugin's watch process: CPU {watch:.1f} s", flush=True)
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--python", action="store_true", help="PythonOperator tasks")
    parser.add_argument(
        "--profile", type=Path, help="py-spy's stacks of the scheduler, plugin on (collapsed)"
    )
    parser.add_argument("--dump", type=Path, help="write the MCPs the GMS received (JSON)")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dags = root / "dags"
        dags.mkdir()
        for dag_id in ("bench_on", "bench_off"):
            (dags / f"{dag_id}.py").write_text(
                DAG_FILE.format(
                    dag_id=dag_id,
                    runs=args.runs,
                    middle=max(args.tasks - 2, 1),
                    python=args.python,
                )
            )
        env: dict[str, str] = {}
        if not args.sqlite:
            pg = stack.enter_context(Postgres())
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = pg.url
        home = AirflowEnv(root / "home", dags, env=env)
        home.migrate()
        gms = stack.enter_context(FakeGms())
        plugin_env = datahub_env(
            gms_url=gms.url,
            extra={"AIRFLOW__DATAHUB__DAG_FILTER_PATTERN": '{"allow": ["bench_on$"]}'},
        )
        dep = stack.enter_context(home.deployment(env=plugin_env))
        for dag_id in ("bench_on", "bench_off"):  # a first run warms every component's caches
            dep.wait_for_run(dag_id, dep.trigger(dag_id), timeout=600)
        results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for n in range(args.rounds):
            for plugin in (False, True) if n % 2 == 0 else (True, False):
                cpu, makespan = one_round(dep, args.runs, plugin, gms.url, args.profile)
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
        received = gms.accepted()
        if args.dump is not None:
            args.dump.write_text(json.dumps(received))
        distinct = {json.dumps(m, sort_keys=True) for m in received}
        by_aspect = collections.Counter(m["aspectName"] for m in received)
        print(f"distinct MCPs {len(distinct)}; by aspect: {dict(by_aspect.most_common())}")


if __name__ == "__main__":
    main()
