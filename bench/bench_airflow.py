"""What the plugin costs a real Airflow, and how much it sends. Prints figures, asserts nothing.

Three parts (``--part``; default all), each against the Airflow of this interpreter's venv:

``counts``     MCPs emitted per task try and per DAG run for the example DAGs, from
               ``airflow dags test`` with a ``datahub-file`` connection (target: <= 8 per try).
``import``     time and resident memory that loading the plugin adds to an Airflow process:
               a fresh interpreter does ``import airflow``, loads the plugins and registers the
               listeners, with the plugin and without it (target: <= 30 ms, <= 5 MB); medians
               of ``--import-reps`` alternating runs, plus ``-X importtime`` of the plugin's
               own modules.
``scheduler``  wall time of one run of a ``--tasks``-task DAG (one start task, a fan-out, one
               end task; every task a real task process) through LocalExecutor, with the plugin
               (sending to the loopback fake GMS) against without it (target: <= 2 % slower).
               Measured as the DAG run's end_date - start_date from the REST API.
``hooks``      time spent inside the plugin's listener hooks in each process of one run of
               that DAG (a ``sitecustomize`` times every hook of the listener class): per
               task process the sum of its hooks (on_starting, running, success,
               before_stopping with its flush), and per hook; the scheduler's hooks too.

"Without the plugin" is the same installation with the distribution hidden from
``importlib.metadata`` (a ``sitecustomize`` on PYTHONPATH filters it out of
``distributions()``), so Airflow finds neither its ``airflow.plugins`` nor its provider entry
point -- exactly what uninstalling it would do, without a second venv.

Usage: ``PYTHONPATH=. python bench/bench_airflow.py [--part counts|import|scheduler|hooks]
[--tasks 100] [--repeat 1] [--import-reps 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.airflow_env import (  # noqa: E402
    EXAMPLE_DAGS,
    AirflowEnv,
    airflow_version,
    datahub_env,
)
from tests.integration.records import Recorded  # noqa: E402
from tests.support.fake_gms import FakeGms  # noqa: E402

DIST_NAME = "datahub-airflow-listener"
# its metadata folder: <name>-<version>.dist-info, or <name>.egg-info in a source checkout
DIST_DIR_PREFIXES = ("datahub_airflow_listener-", "datahub_airflow_listener.egg-info")
EXAMPLES = ("etl_orders", "taskflow_mapping", "flaky_retry", "branching")

HIDE_PLUGIN_SITECUSTOMIZE = f"""\
# Written by bench/bench_airflow.py: hide the {DIST_NAME} distribution from importlib.metadata
# and its backport (Airflow 3 uses the backport on Python < 3.12), so Airflow loads neither its
# plugin nor its provider entry point ("without the plugin").
import importlib.metadata as _md


def _hiding(real):
    # By the dist-info folder's name: reading every distribution's METADATA would itself cost
    # tens of milliseconds and flatter the plugin.
    def distributions(**kwargs):
        for dist in real(**kwargs):
            path = getattr(dist, "_path", None)
            if path is None or not path.name.lower().startswith({DIST_DIR_PREFIXES!r}):
                yield dist

    return distributions


_md.distributions = _hiding(_md.distributions)
try:
    import importlib_metadata as _backport
except ImportError:
    pass
else:
    _backport.distributions = _hiding(_backport.distributions)
"""

# Runs in a fresh interpreter: import Airflow, load plugins, register listeners; print JSON.
LOAD_PROBE = textwrap.dedent(
    """
    import json, time
    t0, c0 = time.perf_counter(), time.process_time()
    import airflow
    from airflow import plugins_manager
    from airflow.listeners.listener import get_listener_manager
    t1, c1 = time.perf_counter(), time.process_time()
    plugins_manager.ensure_plugins_loaded()
    plugins_manager.integrate_listener_plugins(get_listener_manager())
    t2, c2 = time.perf_counter(), time.process_time()
    rss_kb = 0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    names = [p.name for p in plugins_manager._get_plugins()[0]] if hasattr(
        plugins_manager, "_get_plugins") else [p.name for p in plugins_manager.plugins or []]
    print(json.dumps({"import_airflow_s": t1 - t0, "load_plugins_s": t2 - t1,
                      "load_plugins_cpu_s": c2 - c1, "total_cpu_s": c2 - c0,
                      "total_s": t2 - t0, "rss_kb": rss_kb, "plugins": names,
                      "listeners": len(get_listener_manager().pm.get_plugins())}))
    """
)


TIME_HOOKS_SITECUSTOMIZE = """\
# Written by bench/bench_airflow.py: time every listener hook of datahub-airflow-listener in
# this process and append one JSON line per call to $DHAL_BENCH_TIMINGS/<pid>.jsonl.
import functools, json, os, time

def _timed(name, func):
    @functools.wraps(func)  # keeps pluggy's marker and the signature it reads
    def hook(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            ms = (time.perf_counter() - start) * 1000
            path = os.path.join(os.environ["DHAL_BENCH_TIMINGS"], f"{os.getpid()}.jsonl")
            with open(path, "a") as out:
                out.write(json.dumps({"hook": name, "ms": ms}) + "\\n")
    return hook

try:
    from datahub_airflow_listener.adapter.listener import DatahubListener as _L
except Exception:
    pass
else:
    for _name, _func in list(vars(_L).items()):
        if _name.startswith(("on_", "before_")) and callable(_func):
            setattr(_L, _name, _timed(_name, _func))
"""


def hide_plugin_env(workdir: Path) -> dict[str, str]:
    """Environment additions that make every Airflow process start without the plugin."""
    site = workdir / "hide-plugin"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(HIDE_PLUGIN_SITECUSTOMIZE)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


# -- counts -----------------------------------------------------------------------------------


def part_counts(base: AirflowEnv, work: Path) -> None:
    print("\n== MCPs emitted (airflow dags test, datahub-file connection)")
    print(
        f"{'dag':<18} {'run MCPs':>8} {'tries':>6} {'task MCPs':>9} {'per try':>8} {'max/try':>8}"
    )
    for dag_id in EXAMPLES:
        env = base.clone(work / f"counts-{dag_id}")
        out = env.home / "out.json"
        result = env.dags_test(dag_id, env=datahub_env(file_path=out))
        rec = Recorded.from_file(out)
        flows = [i for i in rec.instances.values() if i.is_flow_run]
        if result.returncode or len(flows) != 1:
            print(f"{dag_id:<18} failed (exit {result.returncode}); see {result.log_path}")
            continue
        tasks = rec.task_runs(flows[0])
        tries = [max(len(t.result_by_attempt()), 1) for t in tasks]
        per_try = [t.mcp_count / n for t, n in zip(tasks, tries, strict=True)]
        task_mcps = sum(t.mcp_count for t in tasks)
        print(
            f"{dag_id:<18} {flows[0].mcp_count:>8} {sum(tries):>6} {task_mcps:>9} "
            f"{task_mcps / sum(tries):>8.2f} {max(per_try):>8.2f}"
        )
        print(
            f"{'':<18} whole DAG run: {len(rec)} MCPs ({len(rec.other)} on non-instance entities)"
        )


# -- import -----------------------------------------------------------------------------------


def _probe(env: Mapping[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_PROBE],
        env=dict(env),
        cwd=env["AIRFLOW_HOME"],  # not the repo: its .egg-info would be found through sys.path
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def part_import(base: AirflowEnv, work: Path, reps: int) -> None:
    print(f"\n== Import time and memory the plugin adds (medians of {reps} fresh interpreters)")
    with_env = base.env()
    without_env = base.env(hide_plugin_env(work))
    runs: dict[str, list[dict[str, float]]] = {"with": [], "without": []}
    _probe(with_env)  # warm the page cache: the first interpreter pays for the disk
    for _ in range(reps):
        runs["without"].append(_probe(without_env))
        runs["with"].append(_probe(with_env))
    first_with, first_without = runs["with"][0], runs["without"][0]
    print(f"plugins loaded with: {first_with['plugins']}, without: {first_without['plugins']}")
    print(
        f"listeners registered with: {first_with['listeners']}, "
        f"without: {first_without['listeners']}"
    )
    labels = {
        "load_plugins_s": "plugin load + listener registration",
        "load_plugins_cpu_s": "  the same, CPU time",
        "total_s": "import airflow + plugins",
        "total_cpu_s": "  the same, CPU time",
        "rss_kb": "RSS after loading",
    }
    for key, unit, scale in (
        ("load_plugins_s", "ms", 1000.0),
        ("load_plugins_cpu_s", "ms", 1000.0),
        ("total_s", "ms", 1000.0),
        ("total_cpu_s", "ms", 1000.0),
        ("rss_kb", "MB", 1 / 1024),
    ):
        w = statistics.median(r[key] for r in runs["with"]) * scale
        wo = statistics.median(r[key] for r in runs["without"]) * scale
        print(
            f"{labels[key]:<38} with {w:9.2f} {unit}  without {wo:9.2f} {unit}  "
            f"added {w - wo:+8.2f} {unit}"
        )

    # The plugin's own modules, as Python's import profiler sees them (Airflow imported first).
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            # Airflow's plugin machinery first: what it imports lazily is not the plugin's cost
            "import airflow; from airflow import plugins_manager; "
            "import datahub_airflow_listener.adapter.plugin",
        ],
        env=with_env,
        cwd=with_env["AIRFLOW_HOME"],
        capture_output=True,
        text=True,
        check=True,
    )
    # Lines come in completion order: a top-level module's subtree is printed just before it.
    subtree: list[str] = []
    plugin_us, plugin_modules = 0, []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        subtree.append(name.strip())
        if len(name) - len(name.lstrip()) == 1:  # top level
            if name.strip().startswith("datahub_airflow_listener"):
                plugin_us += int(parts[1])
                plugin_modules += subtree
            subtree = []
    foreign = sorted({n.split(".")[0] for n in plugin_modules} - {"datahub_airflow_listener"})
    print(
        f"-X importtime: the plugin module imports in {plugin_us / 1000:.1f} ms "
        f"({len(plugin_modules)} modules; beyond its own: {foreign or 'none'})"
    )


# -- scheduler --------------------------------------------------------------------------------


def _fanout_dag(dags: Path, n_tasks: int) -> str:
    dag_id = f"bench_fanout_{n_tasks}"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / f"{dag_id}.py").write_text(
        textwrap.dedent(
            f'''
            """Benchmark: start >> {n_tasks - 2} parallel tasks >> end, each a task process."""
            from datetime import datetime, timezone

            try:
                from airflow.providers.standard.operators.python import PythonOperator
                from airflow.sdk import DAG
            except ImportError:
                from airflow import DAG
                from airflow.operators.python import PythonOperator


            def work(**_):
                return None


            with DAG(dag_id="{dag_id}", schedule=None, catchup=False,
                     start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
                start = PythonOperator(task_id="start", python_callable=work)
                end = PythonOperator(task_id="end", python_callable=work)
                for i in range({n_tasks - 2}):
                    start >> PythonOperator(task_id=f"work_{{i:03d}}", python_callable=work) >> end
            '''
        )
    )
    return dag_id


def _iso(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _one_scheduler_run(
    base: AirflowEnv,
    work: Path,
    dags: Path,
    dag_id: str,
    *,
    with_plugin: bool,
    tag: str,
) -> tuple[float, float, int]:
    env = base.clone(work / f"sched-{tag}", dags_folder=dags)
    if with_plugin:
        gms = FakeGms(keep_mcps=False).start()
        extra = datahub_env(gms_url=gms.url)
    else:
        gms = None
        extra = hide_plugin_env(work)
    try:
        with env.deployment(env=extra) as dep:
            run_id = dep.trigger(dag_id)
            t0 = time.monotonic()
            state = dep.wait_for_run(dag_id, run_id, timeout=1800)
            polled = time.monotonic() - t0
            quoted = run_id.replace("+", "%2B").replace(":", "%3A")
            run = dep.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}")
            wall = (_iso(run["end_date"]) - _iso(run["start_date"])).total_seconds()
            if state != "success":
                print(f"  run {tag} ended {state}; logs in {env.home}")
            time.sleep(3)  # the scheduler's end-of-run events
            sent = gms.accepted_count if gms is not None else 0
    finally:
        if gms is not None:
            gms.stop()
    return wall, polled, sent


def part_scheduler(base: AirflowEnv, work: Path, n_tasks: int, repeat: int) -> None:
    print(f"\n== {n_tasks}-task DAG through the scheduler (LocalExecutor, SQLite, parallelism 4)")
    dags = work / "bench-dags"
    dag_id = _fanout_dag(dags, n_tasks)
    walls: dict[bool, list[float]] = {True: [], False: []}
    for i in range(repeat):
        for with_plugin in (False, True):
            tag = f"{'with' if with_plugin else 'without'}-{i}"
            wall, polled, sent = _one_scheduler_run(
                base, work, dags, dag_id, with_plugin=with_plugin, tag=tag
            )
            walls[with_plugin].append(wall)
            extra = (
                f", GMS accepted {sent} MCPs ({sent / n_tasks:.1f} per task)" if with_plugin else ""
            )
            print(f"  {tag:<10} run wall time {wall:7.1f} s (polled {polled:6.1f} s){extra}")
    w, wo = statistics.median(walls[True]), statistics.median(walls[False])
    print(f"  median: with {w:.1f} s, without {wo:.1f} s, difference {100 * (w - wo) / wo:+.1f} %")


def time_hooks_env(workdir: Path, timings: Path) -> dict[str, str]:
    """Environment additions that time the plugin's hooks in every Airflow process."""
    site = workdir / "time-hooks"
    site.mkdir(parents=True, exist_ok=True)
    timings.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(TIME_HOOKS_SITECUSTOMIZE)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "DHAL_BENCH_TIMINGS": str(timings)}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def part_hooks(base: AirflowEnv, work: Path, n_tasks: int) -> None:
    print(f"\n== time inside the plugin's hooks, one run of a {n_tasks}-task DAG (LocalExecutor)")
    dags = work / "hooks-dags"
    dag_id = _fanout_dag(dags, n_tasks)
    env = base.clone(work / "hooks", dags_folder=dags)
    timings = work / "hook-timings"
    gms = FakeGms(keep_mcps=False).start()
    try:
        extra = {**datahub_env(gms_url=gms.url), **time_hooks_env(work, timings)}
        with env.deployment(env=extra) as dep:
            run_id = dep.trigger(dag_id)
            state = dep.wait_for_run(dag_id, run_id, timeout=1800)
            time.sleep(3)  # the scheduler's end-of-run events
    finally:
        gms.stop()
    per_process = {
        path.stem: [json.loads(line) for line in path.read_text().splitlines()]
        for path in timings.glob("*.jsonl")
    }
    tasks = [
        calls
        for calls in per_process.values()
        if any(c["hook"] == "on_task_instance_running" for c in calls)
    ]
    totals = [sum(c["ms"] for c in calls) for calls in tasks]
    print(f"  run {state}; {len(tasks)} task processes, GMS accepted {gms.accepted_count} MCPs")
    if totals:
        print(
            f"  per task process, all hooks: p50 {_pct(totals, 0.5):6.1f} ms   "
            f"p90 {_pct(totals, 0.9):6.1f} ms   max {max(totals):6.1f} ms"
        )
    by_hook: dict[str, list[float]] = {}
    for calls in tasks:
        for call in calls:
            by_hook.setdefault(call["hook"], []).append(call["ms"])
    for hook, values in sorted(by_hook.items()):
        print(f"    {hook:<26} p50 {_pct(values, 0.5):6.1f} ms   p90 {_pct(values, 0.9):6.1f} ms")
    others = [calls for calls in per_process.values() if calls not in tasks]
    for calls in others:
        summary = ", ".join(f"{c['hook']} {c['ms']:.1f} ms" for c in calls[:6])
        print(f"  other process: {summary}{' ...' if len(calls) > 6 else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=("counts", "import", "scheduler", "hooks", "all"), default="all"
    )
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--import-reps", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    print(
        f"Airflow {'.'.join(map(str, airflow_version()))}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    base = AirflowEnv(work / "base", EXAMPLE_DAGS)
    if args.part in ("counts", "scheduler", "hooks", "all"):
        base.migrate()
    if args.part in ("counts", "all"):
        part_counts(base, work)
    if args.part in ("import", "all"):
        part_import(base, work, args.import_reps)
    if args.part in ("hooks", "all"):
        part_hooks(base, work, min(args.tasks, 30))
    if args.part in ("scheduler", "all"):
        part_scheduler(base, work, args.tasks, args.repeat)
    if args.keep:
        print(f"work directory kept: {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
