"""Scenario: a run that stays running, its task never scheduled (its pool does not exist).

The scheduler-restart test marks such runs failed, one while no scheduler runs and one after
the restart: Airflow 2 fires no hook for either, so the restarted scheduler must find them.
"""

from __future__ import annotations

from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.operators.python import PythonOperator


with DAG(
    dag_id="scenario_blocked",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["scenario"],
):
    # not an EmptyOperator: the scheduler marks those success without a pool slot
    PythonOperator(
        task_id="waiting",
        python_callable=lambda: None,
        pool="datahub_test_pool_that_does_not_exist",
    )
