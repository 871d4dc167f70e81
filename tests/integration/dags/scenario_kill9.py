"""Scenario: the task process is killed with SIGKILL on its last attempt.

``victim`` fails fast on try 1 (so its retry is the last attempt), then on try 2 writes its pid
to ``$SCENARIO_STATE_DIR/<dag_id>.<task_id>.pid`` and sleeps until the test kills it. No task
end hook can fire in a dead process; the DAG run's end must close the run. ``after`` is then
upstream_failed.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.operators.python import PythonOperator


def victim(ti: Any, **_: object) -> None:
    if ti.try_number < 2:
        raise RuntimeError("first try fails so that the retry is the last attempt")
    state_dir = Path(os.environ.get("SCENARIO_STATE_DIR", "/tmp"))
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file = state_dir / f"{ti.dag_id}.{ti.task_id}.pid"
    pid_file.write_text(f"{os.getpid()} {ti.try_number}\n")
    time.sleep(600)


with DAG(
    dag_id="scenario_kill9",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["scenario"],
):
    PythonOperator(
        task_id="victim",
        python_callable=victim,
        retries=1,
        retry_delay=timedelta(seconds=1),
    ) >> PythonOperator(task_id="after", python_callable=lambda: None)
