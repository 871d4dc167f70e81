"""Scenario: the DAG run is marked failed (UI / REST API) while a task runs.

Airflow 2 fires no DAG-run hook for that; Airflow 3 fires it in the API server. ``sleeper`` is
running when the test marks the run (Airflow fails it); ``after`` never runs (skipped).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.operators.python import PythonOperator


def sleep_long() -> None:
    time.sleep(300)


with DAG(
    dag_id="scenario_marked_failed",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 0},
    tags=["scenario"],
):
    PythonOperator(task_id="sleeper", python_callable=sleep_long) >> PythonOperator(
        task_id="after", python_callable=lambda: None
    )
