"""TaskFlow with dynamic task mapping: one ``process_region`` task instance per region.

The listener records each mapped index as its own task run (a distinct process instance per
map index), all children of the one DAG-run instance.
"""

from __future__ import annotations

from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.10 / 2.11
    from airflow.decorators import dag, task


@dag(
    dag_id="taskflow_mapping",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["example", "datahub"],
)
def taskflow_mapping() -> None:
    @task
    def list_regions() -> list[str]:
        return ["emea", "apac", "amer"]

    @task
    def process_region(region: str) -> dict[str, int]:
        return {"region_len": len(region), "rows": 10 * len(region)}

    @task
    def summarize(results: list[dict[str, int]]) -> int:
        return sum(r["rows"] for r in results)

    summarize(process_region.expand(region=list_regions()))


taskflow_mapping()
