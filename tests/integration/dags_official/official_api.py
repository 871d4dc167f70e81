"""A DAG written against the official DataHub Airflow plugin's public API, as its users write
them: lineage with ``datahub_airflow_plugin.entities``, an Airflow Asset, a task emitting its
own metadata with ``DatahubEmitterOperator`` (Jinja inside the MCPs) and one calling
``DatahubRestHook`` itself. Only the plugin installed changed; not a line of this file.

The MCPs are in their wire form: what ``to_obj()`` of acryl-datahub's objects gives (the
operator takes those objects themselves, duck-typed, when acryl-datahub is installed; the
test environment does not have it).
"""

from __future__ import annotations

import datetime as dt

from airflow.operators.bash import BashOperator  # deprecated on Airflow 3; still there
from airflow.operators.python import PythonOperator
from datahub_airflow_plugin.entities import Dataset, Urn
from datahub_airflow_plugin.hooks.datahub import DatahubRestHook
from datahub_airflow_plugin.operators.datahub import DatahubEmitterOperator

try:
    from airflow.sdk import DAG, Asset

    # Airflow 2 renders Jinja in outlets (inside execute()); Airflow 3 does not at all.
    TEMPLATED_OUTLETS: list[str] = []
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.datasets import Dataset as Asset

    TEMPLATED_OUTLETS = ["s3://bucket/{{ ds }}/export"]

UPSTREAM = "urn:li:dataset:(urn:li:dataPlatform:snowflake,mydb.schema.tablea,PROD)"


def _lineage_mce(day: str) -> dict[str, object]:
    """What ``make_lineage_mce([tableA], tableD_<day>).to_obj()`` gives."""
    downstream = f"urn:li:dataset:(urn:li:dataPlatform:snowflake,mydb.schema.tabled_{day},PROD)"
    return {
        "proposedSnapshot": {
            "com.linkedin.pegasus2avro.metadata.snapshot.DatasetSnapshot": {
                "urn": downstream,
                "aspects": [
                    {
                        "com.linkedin.pegasus2avro.dataset.UpstreamLineage": {
                            "upstreams": [
                                {
                                    "auditStamp": {"time": 0, "actor": "urn:li:corpuser:unknown"},
                                    "dataset": UPSTREAM,
                                    "type": "TRANSFORMED",
                                }
                            ]
                        }
                    }
                ],
            }
        }
    }


def _emit_with_the_hook() -> None:
    hook = DatahubRestHook("datahub_rest_it")
    hook.emit_mcps(
        [
            {
                "entityType": "dataset",
                "entityUrn": UPSTREAM,
                "changeType": "UPSERT",
                "aspectName": "status",
                "aspect": {"value": '{"removed": false}', "contentType": "application/json"},
            }
        ]
    )


with DAG(
    dag_id="official_api",
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    schedule=None,
    catchup=False,
    tags=["example_tag", "finance"],
    default_args={"owner": "alice"},
) as dag:
    run_data_task = BashOperator(
        task_id="run_data_task",
        bash_command="echo 'This is where you might run your data tooling.'",
        inlets=[
            Dataset(platform="snowflake", name="mydb.schema.tableA"),
            Dataset(platform="snowflake", name="mydb.schema.tableB", env="DEV"),
            Urn("urn:li:dataJob:(urn:li:dataFlow:(airflow,dag1,prod),task1)"),
        ],
        outlets=[
            Dataset("snowflake", "mydb.schema.tableD"),
            Asset("postgres://db-host:5432/shop/public/orders"),
            *TEMPLATED_OUTLETS,
        ],
    )
    emit_lineage = DatahubEmitterOperator(
        task_id="emit_lineage",
        datahub_conn_id="datahub_rest_it",
        mces=[_lineage_mce("{{ ds_nodash }}")],
    )
    emit_with_hook = PythonOperator(task_id="emit_with_hook", python_callable=_emit_with_the_hook)
    run_data_task >> emit_lineage >> emit_with_hook
