"""Extract -> transform -> load of shop orders, with declared lineage.

Every task declares the datasets it reads (inlets) and writes (outlets); the DataHub listener
records them as the inputs and outputs of each task run. The tasks do real, small work on the
local disk so the example runs anywhere:

* ``extract_orders`` stands in for a query against the shop's Postgres database: it writes the
  day's orders to ``orders_raw.csv``;
* ``transform_orders`` aggregates them into revenue per customer country (``daily_revenue.csv``);
* ``load_revenue`` upserts the aggregate into a SQLite "warehouse" (``warehouse.db``).

Files go under ``$ETL_ORDERS_DATA_DIR`` (default: ``<tmp>/etl_orders``), one folder per run.
"""

from __future__ import annotations

import csv
import os
import re
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.operators.python import PythonOperator

from datahub_airflow_listener.entities import Dataset

ORDERS = Dataset("postgres", "shop.public.orders")
CUSTOMERS = Dataset("postgres", "shop.public.customers")
RAW_ORDERS = Dataset("file", "etl_orders/orders_raw.csv")
DAILY_REVENUE_FILE = Dataset("file", "etl_orders/daily_revenue.csv")
DAILY_REVENUE_TABLE = Dataset("sqlite", "warehouse.reporting.daily_revenue")

COUNTRIES = ("DE", "FR", "NL", "US")


def run_dir(run_id: str) -> Path:
    """The folder of one DAG run's files (run ids contain ':' and '+', unsafe in paths)."""
    base = os.environ.get("ETL_ORDERS_DATA_DIR") or os.path.join(
        tempfile.gettempdir(), "etl_orders"
    )
    path = Path(base) / re.sub(r"[^\w.-]", "_", run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def extract_orders(run_id: str, **_: object) -> int:
    """Write the day's orders (deterministic sample data) as CSV; return the row count."""
    rows = [
        {
            "order_id": i,
            "customer_id": 100 + i % 7,
            "country": COUNTRIES[i % 4],
            "amount": 10 + i * 3,
        }
        for i in range(1, 25)
    ]
    with (run_dir(run_id) / "orders_raw.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def transform_orders(run_id: str, **_: object) -> int:
    """Aggregate revenue per country; return the number of output rows."""
    revenue: dict[str, int] = {}
    with (run_dir(run_id) / "orders_raw.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            revenue[row["country"]] = revenue.get(row["country"], 0) + int(row["amount"])
    with (run_dir(run_id) / "daily_revenue.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["country", "revenue"])
        writer.writerows(sorted(revenue.items()))
    return len(revenue)


def load_revenue(run_id: str, **_: object) -> int:
    """Upsert the aggregate into the SQLite warehouse; return the table's row count."""
    with (run_dir(run_id) / "daily_revenue.csv").open(newline="") as fh:
        rows = [(r["country"], int(r["revenue"])) for r in csv.DictReader(fh)]
    con = sqlite3.connect(run_dir(run_id) / "warehouse.db")
    try:
        with con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS daily_revenue"
                " (country TEXT PRIMARY KEY, revenue INTEGER)"
            )
            con.executemany("INSERT OR REPLACE INTO daily_revenue VALUES (?, ?)", rows)
        (count,) = con.execute("SELECT COUNT(*) FROM daily_revenue").fetchone()
    finally:
        con.close()
    return int(count)


with DAG(
    dag_id="etl_orders",
    description="Orders from the shop database to the revenue report",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 0, "retry_delay": timedelta(seconds=5)},
    tags=["example", "datahub"],
):
    extract = PythonOperator(
        task_id="extract_orders",
        python_callable=extract_orders,
        inlets=[ORDERS, CUSTOMERS],
        outlets=[RAW_ORDERS],
    )
    transform = PythonOperator(
        task_id="transform_orders",
        python_callable=transform_orders,
        inlets=[RAW_ORDERS],
        outlets=[DAILY_REVENUE_FILE],
    )
    load = PythonOperator(
        task_id="load_revenue",
        python_callable=load_revenue,
        inlets=[DAILY_REVENUE_FILE],
        outlets=[DAILY_REVENUE_TABLE],
    )
    extract >> transform >> load
