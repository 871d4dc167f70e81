"""What reading an operator's lineage adds to a task process, on a real SQL task.

Each sample is a fresh interpreter, as each try is a fresh task process: it builds common.sql's
``SQLExecuteQueryOperator`` on a real SQLite file, runs the try's start step of the plugin
(which starts importing the OpenLineage provider in the background when the task will need
it), runs ``execute()`` (the real SQL), then times the try's end step: reading the lineage
(declared, set at run time, reported by the operator) and building the MCPs it sends.

Printed, p50 and p90 over ``--samples`` processes:

* ``end step``: the lineage step at the try's end for a task whose ``execute()`` took
  ``--work-ms`` (default 800: the provider's import, about 0.6 s of CPU, runs meanwhile);
* ``end step, instant task``: the same with no time between start and end (the import is
  not hidden at all: the worst case);
* ``no lineage methods``: the same step for a task without lineage methods (a PythonOperator);
* ``plugin import``: importing the plugin once Airflow is imported (what every process pays).

Needs the OpenLineage, common.sql and sqlite providers; figures only, no asserts.

    PYTHONPATH=. python bench/bench_lineage.py [--samples 15] [--work-ms 800]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import json, sys, time
    kind, work_ms, db = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    import os
    os.environ["AIRFLOW_CONN_SHOP"] = json.dumps({"conn_type": "sqlite", "host": db})
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from datahub_airflow_listener.adapter import try_lineage
    from datahub_airflow_listener.adapter.config import DatahubConfig
    from datahub_airflow_listener.domain.runs import RunMapper, TaskRunFacts
    config = DatahubConfig()
    if kind == "python":
        task = PythonOperator(task_id="p", python_callable=lambda: None)
    else:
        task = SQLExecuteQueryOperator(
            task_id="q", conn_id="shop",
            sql="INSERT INTO revenue (customer, total) SELECT c.name AS customer, "
                "SUM(o.amount) AS total FROM orders o JOIN customers c "
                "ON o.customer_id = c.id GROUP BY c.name")
    class Runtime:
        mapper = RunMapper()
        base_url = None
    Runtime.config = config
    facts = TaskRunFacts(dag_id="d", task_id=task.task_id, run_id="r", start_ms=1)
    start = try_lineage.declared(task, config)
    try_lineage.prepare(task, config)
    began = time.perf_counter()
    if kind == "sql":
        task.execute({})
    rest = work_ms / 1000 - (time.perf_counter() - began)
    if rest > 0:
        time.sleep(rest)
    t0 = time.perf_counter()
    end = try_lineage.at_end(task, None, config=config, succeeded=True)
    mcps = try_lineage.end_mcps(Runtime, task, facts, start=start, end=end)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"ms": elapsed * 1000, "mcps": len(mcps), "outlets": list(end.outlets)}))
    """
)

# Airflow is imported first: every process that loads the plugin has it already.
IMPORT_CHILD = (
    "import time, airflow.plugins_manager; t = time.perf_counter(); "
    "import datahub_airflow_listener.adapter.plugin; print((time.perf_counter() - t) * 1000)"
)


def _shop(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE orders (id INTEGER, customer_id INTEGER, amount NUMERIC);"
            "CREATE TABLE customers (id INTEGER, name TEXT);"
            "CREATE TABLE revenue (customer TEXT, total NUMERIC);"
            "INSERT INTO customers VALUES (1, 'ada');"
            "INSERT INTO orders VALUES (1, 1, 12.5);"
        )


def _sample(kind: str, work_ms: float, db: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(work_ms), str(db)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=_env(),
    )
    if out.returncode != 0:
        raise SystemExit(f"sample failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _env() -> dict[str, str]:
    home = tempfile.mkdtemp(prefix="bench-lineage-home-")
    return {
        "PYTHONPATH": str(ROOT),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def _line(label: str, values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    return f"{label:<28} p50 {statistics.median(values):8.2f} ms   p90 {p90:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--work-ms", type=float, default=800.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shop.db"
        _shop(db)
        cases = {
            f"end step ({args.work_ms:g} ms task)": ("sql", args.work_ms),
            "end step, instant task": ("sql", 0.0),
            "no lineage methods": ("python", 0.0),
        }
        for label, (kind, work) in cases.items():
            samples = [_sample(kind, work, db) for _ in range(args.samples)]
            print(
                _line(label, [float(s["ms"]) for s in samples]), f"outlets {samples[0]['outlets']}"
            )
        imports = [
            float(
                subprocess.run(
                    [sys.executable, "-c", IMPORT_CHILD],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=_env(),
                ).stdout.strip()
            )
            for _ in range(args.samples)
        ]
        print(_line("plugin import", imports))


if __name__ == "__main__":
    main()
