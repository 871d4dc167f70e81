"""A task that fails on its first try and succeeds on its retry, then a downstream task.

The listener records one instance for ``flaky`` with two attempts: attempt 1 ends
UP_FOR_RETRY (a retry follows, so it is not a FAILURE), attempt 2 ends SUCCESS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.operators.python import PythonOperator


def flaky(ti: Any, **_: object) -> str:
    """Fail on the first try only; the decision is the try number Airflow gives this try."""
    if ti.try_number < 2:
        raise RuntimeError(f"transient failure on try {ti.try_number}, a retry will follow")
    return f"succeeded on try {ti.try_number}"


def report(**_: object) -> None:
    print("flaky task recovered")


with DAG(
    dag_id="flaky_retry",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["example", "datahub"],
):
    flaky_task = PythonOperator(
        task_id="flaky",
        python_callable=flaky,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
    report_task = PythonOperator(task_id="report", python_callable=report)
    flaky_task >> report_task
