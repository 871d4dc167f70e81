"""Task lifecycles production DAGs go through, one small DAG each (the lifecycle suite).

* ``life_trigger_end``: a deferred task the triggerer ends (no task end hook anywhere);
* ``life_resume``: a deferred task that resumes on a worker (a second task process);
* ``life_reschedule``: a sensor in reschedule mode that succeeds on its third poke;
* ``life_kill_early``: a task that SIGKILLs itself right after starting, on both tries;
* ``life_exec_timeout``: an execution_timeout, with a retry;
* ``life_setup_teardown``: setup and teardown around a failing body;
* ``life_group_rules``: a task group with a failure and downstream trigger rules;
* ``life_mapped_fail``: a mapped task with one failing index;
* ``life_two_steps``: two quick tasks (the suite clears one after the run succeeded);
* ``life_mark``: a long task the suite marks success through the REST API while it runs.

State shared between tries (poke counters, pids) lives under ``$SCENARIO_STATE_DIR``.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.providers.standard.sensors.python import PythonSensor
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.sdk import DAG, BaseOperator, TaskGroup
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.models.baseoperator import BaseOperator
    from airflow.operators.python import PythonOperator
    from airflow.sensors.python import PythonSensor
    from airflow.triggers.temporal import DateTimeTrigger
    from airflow.utils.task_group import TaskGroup

START = datetime(2024, 1, 1, tzinfo=UTC)
WAIT = timedelta(seconds=3)


def _state_file(context: dict[str, Any], name: str) -> Path:
    state_dir = Path(os.environ.get("SCENARIO_STATE_DIR", "/tmp"))
    state_dir.mkdir(parents=True, exist_ok=True)
    run = str(context["run_id"]).replace(":", "_").replace("+", "_")
    return state_dir / f"{context['dag'].dag_id}.{run}.{name}"


class WaitInTriggerer(BaseOperator):
    """Defers for a few seconds; with ``ends_in_triggerer`` the trigger ends the task.

    Airflow 3 refuses to load an operator whose ``end_from_trigger`` attribute is true while
    any listener is installed; an operator that passes the flag only to its trigger (as this
    one does, under another attribute name) loads, and its task ends in the triggerer.
    """

    def __init__(self, *, ends_in_triggerer: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ends_in_triggerer = ends_in_triggerer

    def execute(self, context: Any) -> None:
        moment = datetime.now(UTC) + WAIT
        self.defer(
            trigger=DateTimeTrigger(moment=moment, end_from_trigger=self.ends_in_triggerer),
            method_name="resume",
        )

    def resume(self, context: Any, event: Any = None) -> str:
        return "resumed on a worker"


def third_poke(**context: Any) -> bool:
    counter = _state_file(context, "pokes")
    pokes = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(pokes))
    return pokes >= 3


def kill_myself(**_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_long(**_: Any) -> None:
    time.sleep(60)


def sleep_until_marked(**_: Any) -> None:
    time.sleep(600)  # the suite marks it success long before


def fail(**_: Any) -> None:
    raise RuntimeError("this task fails on purpose")


def ok(**_: Any) -> None:
    return None


def fail_on_two(value: int) -> int:
    if value == 2:
        raise ValueError("index 1 fails on purpose")
    return value


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["lifecycle"])


with _dag("life_trigger_end"):
    WaitInTriggerer(task_id="wait", ends_in_triggerer=True) >> PythonOperator(
        task_id="after", python_callable=ok
    )

with _dag("life_resume"):
    WaitInTriggerer(task_id="wait", ends_in_triggerer=False)

with _dag("life_reschedule"):
    PythonSensor(task_id="sense", python_callable=third_poke, mode="reschedule", poke_interval=2)

with _dag("life_kill_early"):
    PythonOperator(
        task_id="killed",
        python_callable=kill_myself,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

with _dag("life_exec_timeout"):
    PythonOperator(
        task_id="slow",
        python_callable=sleep_long,
        execution_timeout=timedelta(seconds=2),
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

with _dag("life_setup_teardown"):
    setup = PythonOperator(task_id="setup", python_callable=ok)
    body = PythonOperator(task_id="body", python_callable=fail)
    teardown = PythonOperator(task_id="teardown", python_callable=ok).as_teardown(setups=setup)
    setup >> body >> teardown

with _dag("life_group_rules"):
    with TaskGroup("grp") as grp:
        PythonOperator(task_id="good", python_callable=ok)
        PythonOperator(task_id="bad", python_callable=fail)
    grp >> PythonOperator(task_id="cleanup", python_callable=ok, trigger_rule="all_done")
    grp >> PythonOperator(task_id="alert", python_callable=ok, trigger_rule="one_failed")
    grp >> PythonOperator(task_id="never", python_callable=ok)

with _dag("life_mapped_fail"):
    PythonOperator.partial(task_id="each", python_callable=fail_on_two).expand(
        op_args=[[1], [2], [3]]
    ) >> PythonOperator(task_id="after", python_callable=ok)

with _dag("life_two_steps"):
    PythonOperator(task_id="first", python_callable=ok) >> PythonOperator(
        task_id="second", python_callable=ok
    )

with _dag("life_mark"):
    PythonOperator(task_id="sleeper", python_callable=sleep_until_marked) >> PythonOperator(
        task_id="after", python_callable=ok
    )
