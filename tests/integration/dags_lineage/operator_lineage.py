"""DAGs whose lineage nobody wrote by hand: SQL operators, an operator reporting its own
lineage, a task setting its outlets at run time, and extractors that are slow or raise.

The SQL DAGs need ``apache-airflow-providers-common-sql`` with the sqlite / postgres
providers; their connections (``shop_sqlite``, ``shop_pg``) come from the test's environment.
The file parses without the OpenLineage provider: the operators import it only inside the
methods the plugin calls when that provider is installed.
"""

from __future__ import annotations

import datetime as dt
import os
import time

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from datahub_airflow_listener.entities import Dataset

try:
    from airflow.sdk import DAG, BaseOperator
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.models.baseoperator import BaseOperator

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

INSERT_SELECT = (
    "INSERT INTO revenue (customer, total) "
    "SELECT c.name AS customer, SUM(o.amount) AS total "
    "FROM orders o JOIN customers c ON o.customer_id = c.id "
    "GROUP BY c.name"
)
CREATE_AS = "CREATE TABLE big_orders AS SELECT id, amount FROM orders WHERE amount > 10"
MULTI = [
    "DELETE FROM daily",
    "INSERT INTO daily (customer_id, n) "
    "SELECT customer_id, COUNT(*) FROM orders GROUP BY customer_id",
]


def sql_dag(dag_id: str, conn_id: str) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        insert = SQLExecuteQueryOperator(
            task_id="insert_select", conn_id=conn_id, sql=INSERT_SELECT
        )
        create = SQLExecuteQueryOperator(task_id="create_as", conn_id=conn_id, sql=CREATE_AS)
        multi = SQLExecuteQueryOperator(
            task_id="multi_statement",
            conn_id=conn_id,
            sql=MULTI,
            # hand-written lineage is kept next to what the operator reports
            inlets=[Dataset("s3", "shop-exports/customers.csv")],
        )
        insert >> create >> multi
    return dag


lineage_sql_sqlite = sql_dag("lineage_sql_sqlite", "shop_sqlite")
lineage_sql_postgres = sql_dag("lineage_sql_postgres", "shop_pg")


class ReportingOperator(BaseOperator):
    """Reports its lineage the way provider operators do (``..._on_complete``)."""

    def __init__(self, *, delay: float = 0.0, fail_report: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.delay = delay
        self.fail_report = fail_report

    def execute(self, context: object) -> None:
        return None

    def get_openlineage_facets_on_complete(self, task_instance: object) -> object:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset as OlDataset
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        if self.delay:
            time.sleep(self.delay)
        if self.fail_report:
            raise RuntimeError("the lineage service is unreachable")
        field = cl.InputField(namespace="s3://raw-bucket", name="events/2024", field="user")
        column = cl.ColumnLineageDatasetFacet(fields={"user_id": cl.Fields(inputFields=[field])})
        return OperatorLineage(
            inputs=[OlDataset(namespace="s3://raw-bucket", name="events/2024")],
            outputs=[
                OlDataset(
                    namespace="snowflake://acme-eu1",
                    name="ANALYTICS.PUBLIC.EVENTS",
                    facets={"columnLineage": column},
                )
            ],
        )


class SetsLineageAtRunTime(BaseOperator):
    """Sets its outlets and appends an inlet inside ``execute()``."""

    def execute(self, context: dict[str, object]) -> None:
        self.outlets = [Dataset("postgres", "shop.public.runtime_out")]
        task = context["ti"].task  # type: ignore[attr-defined]
        task.inlets.append(Dataset("postgres", "shop.public.runtime_in"))


with DAG("lineage_operators", schedule=None, start_date=START, catchup=False) as lineage_operators:
    reports = ReportingOperator(task_id="reports")
    slow = ReportingOperator(task_id="slow_report", delay=float(os.environ.get("DHAL_SLOW", "30")))
    failing = ReportingOperator(task_id="failing_report", fail_report=True)
    runtime = SetsLineageAtRunTime(task_id="runtime_outlets", inlets=[Dataset("s3", "seed/x")])
    reports >> slow >> failing >> runtime
