"""A branch picks one of two paths; the join runs when at least one path succeeded.

The path not taken is skipped by Airflow without any task hook firing; the listener closes its
run as SKIPPED when the DAG run ends.
"""

from __future__ import annotations

from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import BranchPythonOperator, PythonOperator


def choose_path(**_: object) -> str:
    """Always the full refresh: deterministic, so the example's output is too."""
    return "full_refresh"


def refresh(**_: object) -> None:
    print("refreshing")


with DAG(
    dag_id="branching",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["example", "datahub"],
):
    branch = BranchPythonOperator(task_id="choose_path", python_callable=choose_path)
    full = PythonOperator(task_id="full_refresh", python_callable=refresh)
    incremental = PythonOperator(task_id="incremental_refresh", python_callable=refresh)
    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    branch >> [full, incremental] >> join
