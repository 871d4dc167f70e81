"""Operator lineage read in the task process: which tasks are asked, the time bound, the
conversion of what OpenLineage objects say into plain values, and nothing imported without
the provider.

Operators are real (common.sql's ``SQLExecuteQueryOperator`` on a real SQLite file, a
``BaseOperator`` reporting its own lineage); a test that needs the OpenLineage provider skips
without it, and the provider-less behaviour is checked where it is absent.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.adapter import operator_lineage as ol
from datahub_airflow_listener.adapter import try_lineage
from datahub_airflow_listener.adapter.config import DatahubConfig, parse_config
from tests.airflow.conftest import AIRFLOW_3

if AIRFLOW_3:
    from airflow.sdk import BaseOperator
else:
    from airflow.models.baseoperator import BaseOperator

OPENLINEAGE = ol.provider_installed()
needs_provider = pytest.mark.skipif(not OPENLINEAGE, reason="no OpenLineage provider here")


class Plain(BaseOperator):
    def execute(self, context: Any) -> None:
        return None


class Reporting(BaseOperator):
    def __init__(self, *, delay: float = 0.0, error: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.delay = delay
        self.error = error

    def execute(self, context: Any) -> None:
        return None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset
        from openlineage.client.facet_v2 import column_lineage_dataset as cl
        from openlineage.client.facet_v2 import sql_job

        time.sleep(self.delay)
        if self.error:
            raise ValueError("no lineage today")
        source = cl.InputField(
            namespace="postgres://db:5432", name="shop.public.orders", field="amount"
        )
        facet = cl.ColumnLineageDatasetFacet(fields={"total": cl.Fields(inputFields=[source])})
        return OperatorLineage(
            inputs=[Dataset(namespace="postgres://db:5432", name="shop.public.orders")],
            outputs=[
                Dataset(
                    namespace="postgres://db:5432",
                    name="shop.public.revenue",
                    facets={"columnLineage": facet},
                )
            ],
            job_facets={
                "sql": sql_job.SQLJobFacet(query="INSERT INTO revenue SELECT amount FROM orders")
            },
        )


def test_a_task_without_lineage_methods_is_never_asked() -> None:
    assert not ol.wanted(Plain(task_id="p"), DatahubConfig())
    assert not ol.wanted(None, DatahubConfig())


def test_extraction_can_be_turned_off_globally_and_per_operator_class() -> None:
    task = Reporting(task_id="r")
    assert ol.wanted(task, DatahubConfig()) is OPENLINEAGE
    assert not ol.wanted(task, parse_config({"enable_extractors": "false"}))
    assert not ol.wanted(task, parse_config({"disabled_for_operators": "Reporting"}))
    dotted = f"{Reporting.__module__}.{Reporting.__qualname__}"
    assert not ol.wanted(task, parse_config({"disabled_for_operators": f"x.Y; {dotted}"}))


@needs_provider
def test_what_the_operator_reports_becomes_plain_values() -> None:
    found = ol.extract(Reporting(task_id="r"), None, failed=False, timeout=30)
    assert found is not None
    orders = ("postgres://db:5432", "shop.public.orders")
    revenue = ("postgres://db:5432", "shop.public.revenue")
    assert found.inputs == (orders,) and found.outputs == (revenue,)
    assert found.columns == ((revenue, "total", ((*orders, "amount"),)),)
    assert found.sql == "INSERT INTO revenue SELECT amount FROM orders"


@needs_provider
def test_merged_into_the_tries_lineage_with_urns_and_columns() -> None:
    task = Reporting(task_id="r", inlets=["s3://bucket/hand-written"])
    end = try_lineage.at_end(task, None, config=DatahubConfig(), succeeded=True)
    orders = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.orders,PROD)"
    revenue = "urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.revenue,PROD)"
    assert end.inlets == (
        "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/hand-written,PROD)",
        orders,
    )
    assert end.outlets == (revenue,)
    (column,) = end.fine_grained
    assert column.upstreams == (f"urn:li:schemaField:({orders},amount)",)
    assert column.downstreams == (f"urn:li:schemaField:({revenue},total)",)
    assert end.sql == "INSERT INTO revenue SELECT amount FROM orders"


@needs_provider
def test_the_dataset_pattern_applies_to_reported_lineage() -> None:
    config = parse_config({"dataset_pattern": '{"deny": ["postgres:shop.public.orders"]}'})
    end = try_lineage.at_end(Reporting(task_id="r"), None, config=config, succeeded=True)
    assert end.inlets == ()
    assert len(end.outlets) == 1


@needs_provider
def test_a_slow_extractor_costs_the_timeout_and_one_log_line(
    listener_logs: pytest.LogCaptureFixture,
) -> None:
    started = time.monotonic()
    assert ol.extract(Reporting(task_id="slow", delay=5), None, failed=False, timeout=0.2) is None
    assert time.monotonic() - started < 4
    assert ol.extract(Reporting(task_id="slow", delay=5), None, failed=False, timeout=0.2) is None
    lines = [r.getMessage() for r in listener_logs.records if "not read within" in r.getMessage()]
    assert len(lines) == 1, lines


@needs_provider
def test_a_raising_extractor_costs_one_log_line(listener_logs: pytest.LogCaptureFixture) -> None:
    for _ in range(2):
        assert (
            ol.extract(Reporting(task_id="bad", error=True), None, failed=True, timeout=10) is None
        )
    lines = [
        r.getMessage() for r in listener_logs.records if "ValueError: no lineage" in r.getMessage()
    ]
    assert len(lines) == 1, lines


@pytest.fixture
def shop_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount NUMERIC)")
        conn.execute("CREATE TABLE big (id INTEGER, amount NUMERIC)")
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_DB", f"sqlite:///{db}")
    return db


@needs_provider
def test_sqlite_sql_is_parsed_without_touching_the_database(shop_db: Path) -> None:
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

    task = SQLExecuteQueryOperator(
        task_id="q",
        conn_id="shop_db",
        sql="INSERT INTO big (id, amount) SELECT id, amount FROM orders",
    )
    found = ol.extract(task, None, failed=False, timeout=30)
    assert found is not None
    assert found.inputs == (("sqlite", "shop.orders"),)
    assert found.outputs == (("sqlite", "shop.big"),)
    end = try_lineage.at_end(task, None, config=DatahubConfig(), succeeded=True)
    assert end.outlets == ("urn:li:dataset:(urn:li:dataPlatform:sqlite,shop.big,PROD)",)


def test_without_the_provider_nothing_is_imported(tmp_path: Path) -> None:
    """In a fresh interpreter: a SQL task's lineage at its start imports nothing of
    OpenLineage; at its end, only when the provider is installed."""
    code = (
        "import sys\n"
        "from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator\n"
        "from datahub_airflow_listener.adapter import try_lineage\n"
        "from datahub_airflow_listener.adapter.config import DatahubConfig\n"
        "def loaded():\n"
        "    return sorted(m for m in sys.modules\n"
        "                  if m.startswith(('airflow.providers.openlineage', 'openlineage')))\n"
        "task = SQLExecuteQueryOperator(task_id='q', conn_id='x', sql='SELECT 1')\n"
        "before = loaded()\n"
        "try_lineage.declared(task, DatahubConfig())\n"
        "at_start = loaded()\n"
        "try_lineage.at_end(task, None, config=DatahubConfig(), succeeded=True)\n"
        "print(before == at_start, loaded() != before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
    ).stdout.split()
    assert out[-2] == "True"  # nothing of OpenLineage imported before the try ends
    assert out[-1] == str(OPENLINEAGE)  # at its end, only with the provider installed


@needs_provider
def test_asset_connections_name_assets_and_reported_datasets_alike() -> None:
    """One mapping entry: an Airflow Asset and an OpenLineage dataset of the same table on
    the same connection become one urn, with the connection's platform instance."""
    config = parse_config(
        {"asset_connections": '{"postgres://db:5432": {"platform_instance": "warehouse"}}'}
    )
    task = Reporting(task_id="r", outlets=["postgresql://db:5432/shop/public/revenue"])
    end = try_lineage.at_end(task, None, config=config, succeeded=True)
    assert end.outlets == (
        "urn:li:dataset:(urn:li:dataPlatform:postgres,warehouse.shop.public.revenue,PROD)",
    )
