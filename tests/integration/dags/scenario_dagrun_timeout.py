"""Scenario: the DAG run times out while a task is still running.

``quick`` succeeds; ``slow`` sleeps far longer than ``dagrun_timeout``. The scheduler fails the
run and sets the running task to skipped; no task end hook fires for ``slow``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.operators.python import PythonOperator


with DAG(
    dag_id="scenario_dagrun_timeout",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    dagrun_timeout=timedelta(seconds=45),
    tags=["scenario"],
):
    PythonOperator(task_id="quick", python_callable=lambda: None) >> PythonOperator(
        task_id="slow", python_callable=lambda: time.sleep(600)
    )
