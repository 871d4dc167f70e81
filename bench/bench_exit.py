"""How long the plugin keeps a task process alive after its try ends, DataHub healthy, slow, down.

Each case runs ``--tasks`` short-lived processes one after the other on one outbox, as the task
processes of one worker do. Each builds the sender as a task process does (short-lived, the
configured exit wait), submits the MCPs a try's end may send (its run-time lineage), notes the
time the try ended, then runs ``before_stopping``'s flush and exits (the exit handler too). The
parent notes when the process is gone. Printed: the exit path (from the try's end to the end
of the plugin's exit handlers, measured in the process), the process's life after its try
against a process without the plugin's sender (the interpreter's own exit adds noise of a few
tens of ms on a loaded machine), and the MCPs the stand-in GMS received per distinct MCP (a
storm of re-sends shows there). Figures only, no asserts.

    PYTHONPATH=. python bench/bench_exit.py [--tasks 20] [--exit-wait-ms 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fake_gms import FakeGms  # noqa: E402

CHILD = textwrap.dedent(
    """
    import atexit, sys, time
    # Registered first, so it runs last, after the plugin's exit handler: the exit path's end.
    atexit.register(lambda: print(time.time() - ended, flush=True))
    plugin = sys.argv[1] == "1"
    # Both kinds of process load the same modules (a task process has them preloaded by
    # on_starting): the difference is what the plugin does at exit.
    import datahub_airflow_listener.transport.rest
    from datahub_airflow_listener.transport import (
        DispatcherConfig, build_dispatcher, transport_factory)
    from tests.support.fake_gms import StubMcp
    if plugin:
        factory = transport_factory("datahub-rest", {"server": sys.argv[2], "timeout_sec": 30})
        d = build_dispatcher([("rest", factory)], sys.argv[3],
                             config=DispatcherConfig(exit_wait_sec=float(sys.argv[5])))
        d.short_lived = True
        first = int(sys.argv[4])
        d.submit([StubMcp(entity_urn=f"urn:li:dataProcessInstance:t{first}", seq=i)
                  for i in range(2)])
        time.sleep(0.2)  # the rest of the task's work
    ended = time.time()
    print(ended, flush=True)  # the try ended
    if plugin:
        d.submit([StubMcp(entity_urn=f"urn:li:dataProcessInstance:t{first}e", seq=2)])
        d.flush(float(sys.argv[5]), only_own=True)  # before_stopping; the exit handler follows
    """
)


def one(plugin: bool, url: str, outbox: Path, n: int, wait: float = 0.05) -> tuple[float, float]:
    """(seconds from the try's end to the end of the exit handlers, to the process gone)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, "1" if plugin else "0", url, str(outbox), str(n), str(wait)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ended = float(proc.stdout.readline())
    exit_path = float(proc.stdout.readline())
    proc.wait(timeout=60)
    return exit_path, time.time() - ended


def case(name: str, gms: FakeGms, tasks: int, baseline: float, wait: float) -> None:
    gms.reset()
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Path(tmp) / "outbox.sqlite"
        runs = [one(True, gms.url, outbox, n, wait) for n in range(tasks)]
    paths = sorted(x[0] * 1000 for x in runs)
    lives = [x[1] - baseline for x in runs]
    time.sleep(gms.delay_sec + 0.5)  # requests still being answered
    mcps = gms.accepted()
    distinct = len({json.dumps(m, sort_keys=True) for m in mcps})
    lives_ms = sorted(x * 1000 for x in lives)
    p95 = int(0.95 * (len(paths) - 1))
    print(
        f"{name:8s} exit path: p50 {statistics.median(paths):5.1f} p95 {paths[p95]:5.1f} "
        f"max {paths[-1]:5.1f} ms | process life vs baseline: p50 "
        f"{statistics.median(lives_ms):+5.1f} max {lives_ms[-1]:+5.1f} ms | GMS received "
        f"{len(mcps)} MCPs for {distinct} distinct"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--exit-wait-ms", type=float, default=40.0)
    args = parser.parse_args()
    with FakeGms() as gms:
        bases = sorted(one(False, gms.url, Path("/nonexistent"), 0)[1] for _ in range(args.tasks))
        base = statistics.median(bases)
        print(
            f"a process without the plugin's sender is gone {base * 1000:.1f} ms after its try "
            f"(p95 {bases[int(0.95 * (len(bases) - 1))] * 1000:.1f} ms: the interpreter's exit)"
        )
        wait = args.exit_wait_ms / 1000.0
        case("healthy", gms, args.tasks, base, wait)
        gms.delay_sec = 5.0
        case("slow 5 s", gms, args.tasks, base, wait)
        gms.delay_sec = 0.0
        gms.stop()
        case("down", gms, args.tasks, base, wait)


if __name__ == "__main__":
    main()
