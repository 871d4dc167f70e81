"""Lineage nobody wrote: SQL operators on real SQLite and PostgreSQL, an operator reporting its
own lineage, outlets set at run time, and extractors that are slow or raise.

The DAGs of ``dags_lineage/`` run under ``airflow dags test``, and once more under a real
deployment (scheduler, dag-processor, API server, LocalExecutor: each try in its own task
process, as in production). With the OpenLineage provider
installed, the plugin records what the operators report (tables, columns, the SQL) on the task
runs and their DataJobs; without it, only the hand-written and run-time lineage, and it
imports nothing of OpenLineage and warns about nothing. Which of the two is checked depends on
the environment (the ``lineage33`` tox env has the provider, ``airflow33`` does not).
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.integration.airflow_env import LINEAGE_DAGS, AirflowEnv, CommandResult, datahub_env
from tests.integration.expectations import oracle_errors
from tests.integration.records import Instance, Recorded, aspect_of, dump_golden, golden_form
from tests.support.servers import Postgres, postgres_bin

OPENLINEAGE = importlib.util.find_spec("airflow.providers.openlineage") is not None
GOLDEN_DIR = Path(__file__).resolve().parent / "golden" / "lineage"
TABLES = (
    "CREATE TABLE orders (id INTEGER, customer_id INTEGER, amount NUMERIC)",
    "CREATE TABLE customers (id INTEGER, name TEXT)",
    "CREATE TABLE revenue (customer TEXT, total NUMERIC)",
    "CREATE TABLE daily (customer_id INTEGER, n INTEGER)",
    "INSERT INTO customers VALUES (1, 'ada'), (2, 'grace')",
    "INSERT INTO orders VALUES (1, 1, 12.5), (2, 2, 3), (3, 1, 40)",
)


def ds(platform: str, name: str) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:{platform},{name},PROD)"


def field(dataset: str, name: str) -> str:
    return f"urn:li:schemaField:({dataset},{name})"


def job(dag_id: str, task_id: str) -> str:
    return f"urn:li:dataJob:(urn:li:dataFlow:(airflow,{dag_id},prod),{task_id})"


@attrs.frozen
class LineageRun:
    dag_id: str
    result: CommandResult | None  # None: the run was triggered in a deployment
    recorded: Recorded

    def task_run(self, task_id: str) -> Instance:
        return self.recorded.task_run(self.recorded.flow_run(self.dag_id), task_id)

    def job_aspect(self, task_id: str, aspect: str) -> dict[str, Any] | None:
        urn = job(self.dag_id, task_id)
        found = [
            aspect_of(m)
            for m in self.recorded.mcps
            if m["entityUrn"] == urn and m["aspectName"] == aspect
        ]
        return found[-1] if found else None

    def fine_grained(self, task_id: str) -> set[tuple[tuple[str, ...], str]]:
        io = self.job_aspect(task_id, "dataJobInputOutput") or {}
        return {
            (tuple(f.get("upstreams", ())), d)
            for f in io.get("fineGrainedLineages", ())
            for d in f.get("downstreams", ())
        }


def _env(out: Path, extra: dict[str, str]) -> dict[str, str]:
    return datahub_env(
        file_path=out, extra={"AIRFLOW__DATAHUB__EXTRACTOR_TIMEOUT_SEC": "1", **extra}
    )


def _run(home: AirflowEnv, dag_id: str, out: Path, extra: dict[str, str]) -> LineageRun:
    result = home.dags_test(dag_id, env=_env(out, extra))
    return LineageRun(dag_id, result, Recorded.from_file(out))


def _shop_sqlite(root: Path) -> dict[str, str]:
    db = root / "shop.db"
    with sqlite3.connect(db) as conn:
        for statement in TABLES:
            conn.execute(statement)
    return {"AIRFLOW_CONN_SHOP_SQLITE": json.dumps({"conn_type": "sqlite", "host": str(db)})}


@pytest.fixture(scope="module")
def sqlite_run(migrated_home: AirflowEnv, tmp_path_factory: pytest.TempPathFactory) -> LineageRun:
    root = tmp_path_factory.mktemp("lineage-sqlite")
    home = migrated_home.clone(root / "home", dags_folder=LINEAGE_DAGS)
    return _run(home, "lineage_sql_sqlite", root / "out.json", _shop_sqlite(root))


@pytest.fixture(scope="module")
def postgres_run(
    migrated_home: AirflowEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LineageRun]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")
    psycopg2 = pytest.importorskip("psycopg2", reason="the Airflow environment lacks psycopg2")
    pytest.importorskip("airflow.providers.postgres", reason="no postgres provider here")
    root = tmp_path_factory.mktemp("lineage-postgres")
    with Postgres(database="shop") as pg:
        with (
            psycopg2.connect(
                host="127.0.0.1", port=pg.port, user="postgres", dbname="shop"
            ) as conn,
            conn.cursor() as cursor,
        ):
            for statement in TABLES:
                cursor.execute(statement)
        home = migrated_home.clone(root / "home", dags_folder=LINEAGE_DAGS)
        conn_json = json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": pg.port,
                "login": "postgres",
                "schema": "shop",
            }
        )
        yield _run(
            home, "lineage_sql_postgres", root / "out.json", {"AIRFLOW_CONN_SHOP_PG": conn_json}
        )


@pytest.fixture(scope="module")
def operators_run(
    migrated_home: AirflowEnv, tmp_path_factory: pytest.TempPathFactory
) -> LineageRun:
    root = tmp_path_factory.mktemp("lineage-operators")
    home = migrated_home.clone(root / "home", dags_folder=LINEAGE_DAGS)
    return _run(home, "lineage_operators", root / "out.json", {"DHAL_SLOW": "30"})


@pytest.fixture(scope="module")
def deployed(
    migrated_home: AirflowEnv, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, LineageRun]:
    """The SQLite and operator DAGs once each under the scheduler, until each run's record
    is complete (its DAG run closed)."""
    root = tmp_path_factory.mktemp("lineage-deployed")
    out = root / "out.json"
    home = migrated_home.clone(root / "home", dags_folder=LINEAGE_DAGS)
    env = _env(out, {**_shop_sqlite(root), "DHAL_SLOW": "30"})
    dag_ids = ("lineage_sql_sqlite", "lineage_operators")
    with home.deployment(env=env) as dep:
        run_ids = {dag_id: dep.trigger(dag_id) for dag_id in dag_ids}
        for dag_id, run_id in run_ids.items():
            dep.wait_for_run(dag_id, run_id, timeout=300)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            recorded = Recorded.from_file(out)
            closed = [
                r for d in dag_ids for r in recorded.flow_runs(d) if r.final_result() is not None
            ]
            if len(closed) == len(dag_ids):
                break
            time.sleep(1)
    recorded = Recorded.from_file(out)
    return {dag_id: LineageRun(dag_id, None, recorded) for dag_id in dag_ids}


# -- SQL ------------------------------------------------------------------------------------------


def _sql_expectations(platform: str, prefix: str) -> dict[str, Any]:
    def t(name: str) -> str:
        return ds(platform, f"{prefix}{name}")

    return {
        "insert_select": (
            {t("orders"), t("customers")},
            {t("revenue")},
            {
                ((field(t("customers"), "name"),), field(t("revenue"), "customer")),
                ((field(t("orders"), "amount"),), field(t("revenue"), "total")),
            },
        ),
        "create_as": (
            {t("orders")},
            {t("big_orders")},
            {
                ((field(t("orders"), "id"),), field(t("big_orders"), "id")),
                ((field(t("orders"), "amount"),), field(t("big_orders"), "amount")),
            },
        ),
        "multi_statement": (
            {t("orders"), ds("s3", "shop-exports/customers.csv")},
            {t("daily")},
            None,  # the parser's column lineage of a GROUP BY count is not asserted
        ),
    }


def _check_sql(run: LineageRun, platform: str, prefix: str) -> None:
    if run.result is not None:
        run.result.check()
    for task_id, (inputs, outputs, columns) in _sql_expectations(platform, prefix).items():
        instance = run.task_run(task_id)
        if not OPENLINEAGE:
            hand = (
                {ds("s3", "shop-exports/customers.csv")} if task_id == "multi_statement" else set()
            )
            assert set(instance.inputs) == hand, task_id
            assert instance.outputs == [], task_id
            assert run.job_aspect(task_id, "dataTransformLogic") is None
            continue
        assert set(instance.inputs) == inputs, (task_id, instance.inputs)
        assert set(instance.outputs) == outputs, (task_id, instance.outputs)
        io = run.job_aspect(task_id, "dataJobInputOutput")
        assert io is not None, task_id
        assert set(io["inputDatasets"]) == inputs and set(io["outputDatasets"]) == outputs
        if columns is not None:
            assert run.fine_grained(task_id) == columns, task_id
        logic = run.job_aspect(task_id, "dataTransformLogic")
        assert logic is not None, task_id
        query = logic["transforms"][0]["queryStatement"]
        assert query["language"] == "SQL" and query["value"].strip()
    # the upstream task is kept as the job's input job
    io = run.job_aspect("create_as", "dataJobInputOutput")
    if io is not None:
        assert job(run.dag_id, "insert_select") in io.get("inputDatajobs", [])


def test_sql_on_sqlite(sqlite_run: LineageRun) -> None:
    _check_sql(sqlite_run, "sqlite", "shop.")


def test_sql_on_postgres(postgres_run: LineageRun) -> None:
    _check_sql(postgres_run, "postgres", "shop.public.")


def test_sql_on_sqlite_under_the_scheduler(deployed: dict[str, LineageRun]) -> None:
    _check_sql(deployed["lineage_sql_sqlite"], "sqlite", "shop.")


# -- operators ------------------------------------------------------------------------------------


@pytest.fixture(params=["dags_test", "scheduler"])
def operators(request: pytest.FixtureRequest) -> LineageRun:
    if request.param == "dags_test":
        run: LineageRun = request.getfixturevalue("operators_run")
        assert run.result is not None
        run.result.check()
        return run
    return request.getfixturevalue("deployed")["lineage_operators"]  # type: ignore[no-any-return]


def test_an_operator_reporting_its_own_lineage(operators: LineageRun) -> None:
    operators_run = operators
    instance = operators_run.task_run("reports")
    if not OPENLINEAGE:
        assert instance.inputs == [] and instance.outputs == []
        return
    raw = ds("s3", "raw-bucket/events/2024")
    events = ds("snowflake", "analytics.public.events")
    assert instance.inputs == [raw]
    assert instance.outputs == [events]
    assert operators_run.fine_grained("reports") == {
        ((field(raw, "user"),), field(events, "user_id"))
    }


def test_slow_and_failing_extractors_cost_a_log_line(operators_run: LineageRun) -> None:
    assert operators_run.result is not None
    log = operators_run.result.output()
    for task_id in ("slow_report", "failing_report"):
        instance = operators_run.task_run(task_id)
        assert instance.final_result() == "SUCCESS", task_id
        assert instance.inputs == [] and instance.outputs == []
    if OPENLINEAGE:
        assert "slow_report: operator lineage not read within 1 s" in log
        assert "failing_report: operator lineage not read: RuntimeError" in log
        assert log.count("operator lineage not read") == 2
    else:
        assert "operator lineage" not in log


def test_lineage_set_at_run_time(operators: LineageRun) -> None:
    operators_run = operators
    instance = operators_run.task_run("runtime_outlets")
    runtime_in = ds("postgres", "shop.public.runtime_in")
    runtime_out = ds("postgres", "shop.public.runtime_out")
    assert set(instance.inputs) == {ds("s3", "seed/x"), runtime_in}
    assert instance.outputs == [runtime_out]
    io = operators_run.job_aspect("runtime_outlets", "dataJobInputOutput")
    assert io is not None
    assert set(io["inputDatasets"]) == {ds("s3", "seed/x"), runtime_in}
    assert io["outputDatasets"] == [runtime_out]


def test_without_the_provider_nothing_of_openlineage_is_imported(operators_run: LineageRun) -> None:
    if OPENLINEAGE:
        pytest.skip("the OpenLineage provider is installed in this environment")
    assert operators_run.result is not None
    assert "openlineage" not in operators_run.result.output().lower()


# -- golden files and the oracle ------------------------------------------------------------------


LINEAGE_ASPECTS = frozenset(
    {
        "dataProcessInstanceInput",
        "dataProcessInstanceOutput",
        "dataJobInputOutput",
        "dataTransformLogic",
    }
)


@pytest.mark.parametrize("which", ["sqlite_run", "postgres_run", "operators_run"])
def test_golden(request: pytest.FixtureRequest, which: str, update_golden: bool) -> None:
    """The lineage aspects recorded equal the golden file (``UPDATE_GOLDEN=1`` rewrites it)."""
    run: LineageRun = request.getfixturevalue(which)
    lineage = [m for m in golden_form(run.recorded.mcps) if m["aspectName"] in LINEAGE_ASPECTS]
    got = dump_golden(lineage)
    flavour = "openlineage" if OPENLINEAGE else "plain"
    path = GOLDEN_DIR / f"{run.dag_id}.{flavour}.json"
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert path.exists(), f"no golden file {path}; UPDATE_GOLDEN=1 writes it"
    assert got == path.read_text()


@pytest.mark.parametrize("which", ["sqlite_run", "postgres_run", "operators_run"])
def test_every_mcp_passes_the_oracle(request: pytest.FixtureRequest, which: str) -> None:
    run: LineageRun = request.getfixturevalue(which)
    errors = oracle_errors(run.recorded.mcps)
    if errors is None:
        pytest.skip("no acryl-datahub interpreter (set DHAL_ORACLE_PYTHON)")
    assert errors == [], "\n".join(errors[:20])
