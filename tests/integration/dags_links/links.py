"""Links between runs (the links suite), one small DAG per kind of link.

* ``link_producer`` updates two assets (2.x: datasets): two map indexes of ``publish_part``
  the users, then ``publish`` the orders with an ``extra``; ``link_consumer`` is scheduled on
  both, so the scheduler starts it from those three events;
* ``link_trigger_parent`` starts ``link_trigger_child`` and ``link_trigger_child_b`` with
  ``TriggerDagRunOperator``, both runs under the parent's own run id (only what each operator
  triggered tells them apart);
* ``link_sensor`` waits with ``ExternalTaskSensor`` for ``link_sensor_target``'s run an hour
  earlier: for its ``produce`` task (``execution_delta``) and for the whole run
  (``execution_date_fn``). Poke mode: in reschedule mode Airflow 3.3 itself sometimes fails
  the sensor (see the lifecycle suite), which is not what this suite is about;
* ``link_mapped``: an unmapped task after a mapped one, and a mapped task group whose second
  task follows the first at the same map index.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
    from airflow.sdk import DAG, Asset, task, task_group
except ImportError:  # Airflow 2.10 / 2.11
    from airflow import DAG
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import task, task_group
    from airflow.operators.python import PythonOperator
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sensors.external_task import ExternalTaskSensor

START = datetime(2024, 1, 1, tzinfo=UTC)
ORDERS = Asset("postgresql://db.example:5432/shop/public/orders")
USERS = Asset("postgresql://db.example:5432/shop/public/users")


def _dag(dag_id: str, schedule: Any = None) -> DAG:
    return DAG(dag_id=dag_id, schedule=schedule, start_date=START, catchup=False, tags=["links"])


def ok(*_: Any, **__: Any) -> None:
    return None


def publish_orders(**context: Any) -> None:
    context["outlet_events"][ORDERS].extra = {"rows": 42, "batch": "b-1", "checked": True}


with _dag("link_producer"):
    # the users first (two map indexes), then the orders: the consumer starts on the orders
    PythonOperator.partial(task_id="publish_part", python_callable=ok, outlets=[USERS]).expand(
        op_args=[[0], [1]]
    ) >> PythonOperator(task_id="publish", python_callable=publish_orders, outlets=[ORDERS])

with _dag("link_consumer", schedule=[ORDERS, USERS]):
    PythonOperator(task_id="consume", python_callable=ok)

with _dag("link_trigger_parent"):
    TriggerDagRunOperator(
        task_id="trigger_a", trigger_dag_id="link_trigger_child", trigger_run_id="{{ run_id }}"
    )
    TriggerDagRunOperator(
        task_id="trigger_b",
        trigger_dag_id="{{ 'link_trigger_child_b' }}",  # rendered: the DAG says which
        trigger_run_id="{{ run_id }}",
    )

with _dag("link_trigger_child"):
    PythonOperator(task_id="work", python_callable=ok)

with _dag("link_trigger_child_b"):
    PythonOperator(task_id="work", python_callable=ok)

with _dag("link_sensor_target"):
    PythonOperator(task_id="produce", python_callable=ok)


def an_hour_earlier(logical_date: datetime, **_: Any) -> datetime:
    return logical_date - timedelta(hours=1)


with _dag("link_sensor"):
    ExternalTaskSensor(
        task_id="wait_task",
        external_dag_id="link_sensor_target",
        external_task_id="produce",
        execution_delta=timedelta(hours=1),
        poke_interval=2,
        timeout=600,
    )
    ExternalTaskSensor(
        task_id="wait_dag",
        external_dag_id="link_sensor_target",
        external_task_id=None,
        execution_date_fn=an_hour_earlier,
        poke_interval=2,
        timeout=600,
    )

with _dag("link_mapped"):

    @task
    def make() -> list[int]:
        return [1, 2, 3]

    @task
    def each(value: int) -> int:
        return value

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @task
    def first(value: int) -> int:
        return value

    @task
    def second(value: int) -> int:
        return value

    @task_group
    def per_value(value: int) -> None:
        second(first(value))

    total(each.expand(value=make()))
    per_value.expand(value=[10, 20])
