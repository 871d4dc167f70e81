"""Scenario: a final failure makes the tasks after it upstream_failed.

``boom`` fails (no retries); ``middle`` and ``last`` never run (upstream_failed) and fire no
task hook; ``sibling`` runs in parallel and succeeds.
"""

from __future__ import annotations

from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.operators.python import PythonOperator


def boom() -> None:
    raise RuntimeError("boom: a final failure")


with DAG(
    dag_id="scenario_upstream_failed",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 0},
    tags=["scenario"],
):
    failing = PythonOperator(task_id="boom", python_callable=boom)
    middle = PythonOperator(task_id="middle", python_callable=lambda: None)
    last = PythonOperator(task_id="last", python_callable=lambda: None)
    PythonOperator(task_id="sibling", python_callable=lambda: None)
    failing >> middle >> last
