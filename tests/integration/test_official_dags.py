"""A DAG written against the official plugin's public API, under ``airflow dags test`` with this
package installed instead, and the official ``[datahub]`` keys of a team switching over.

The DAG (``dags_official/official_api.py``) imports ``datahub_airflow_plugin.entities``,
``...operators.datahub.DatahubEmitterOperator`` and ``...hooks.datahub.DatahubRestHook``.
The plugin writes to a ``datahub-file`` connection and to a loopback GMS that requires a
token, which only ``[datahub] token`` supplies (the REST connection has no password). Checked:
the DAG parses and runs; the operator's and the hook's MCPs reach the GMS rendered; what the
official plugin sends beside the run record is there (``dataPlatformInstance`` on every
process instance, the tags' status, owners with their source, an operation on each dataset
the task wrote); ``asset_naming = official`` and ``datajob_url_link = grid`` apply;
``debug_emitter`` logs each MCP; every MCP passes the acryl-datahub oracle.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.airflow_env import AirflowEnv, datahub_env
from tests.integration.expectations import oracle_errors
from tests.integration.records import aspect_of, read_file_output
from tests.support.fake_gms import FakeGms

DAGS = Path(__file__).resolve().parent / "dags_official"
TOKEN = "official-dag-token"
FLOW = "urn:li:dataFlow:(airflow,ops.official_api,prod)"
UPSTREAM = "urn:li:dataset:(urn:li:dataPlatform:snowflake,mydb.schema.tablea,PROD)"
TABLE_D = "urn:li:dataset:(urn:li:dataPlatform:snowflake,mydb.schema.tableD,PROD)"
ORDERS = "urn:li:dataset:(urn:li:dataPlatform:postgres,db-host:5432/shop/public/orders,PROD)"
BASE_URL = "http://airflow.example.com"


@pytest.fixture(scope="module")
def run(migrated_home: AirflowEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = migrated_home.clone(tmp_path_factory.mktemp("official-dag"), dags_folder=DAGS)
    out = home.home / "datahub-out.json"
    with FakeGms(token=TOKEN) as gms:
        env = datahub_env(
            file_path=out,
            gms_url=gms.url,
            extra={
                "AIRFLOW__DATAHUB__TOKEN": TOKEN,
                "AIRFLOW__DATAHUB__PLATFORM_INSTANCE": "ops",
                "AIRFLOW__DATAHUB__ASSET_NAMING": "official",
                "AIRFLOW__DATAHUB__DATAJOB_URL_LINK": "grid",
                "AIRFLOW__DATAHUB__DEBUG_EMITTER": "true",
                "AIRFLOW__API__BASE_URL": BASE_URL,
                "AIRFLOW__WEBSERVER__BASE_URL": BASE_URL,
            },
        )
        result = home.dags_test("official_api", env=env)
        gms.wait_for(1, timeout=5)
        accepted = gms.accepted()
        violations = list(gms.violations)
    return {
        "result": result,
        "file": read_file_output(out) if out.exists() else [],
        "gms": accepted,
        "violations": violations,
        "home": home,
    }


def _by(mcps: list[dict[str, Any]], urn: str, aspect: str) -> list[dict[str, Any]]:
    return [aspect_of(m) for m in mcps if m["entityUrn"] == urn and m["aspectName"] == aspect]


def test_the_dag_parses_and_runs(run: dict[str, Any]) -> None:
    result = run["result"]
    assert result.returncode == 0, result.output()[-4000:]
    assert "ImportError" not in result.output()
    assert run["violations"] == []


def test_the_operator_and_the_hook_reach_datahub_rendered(run: dict[str, Any]) -> None:
    gms = run["gms"]
    lineage = [m for m in gms if m["aspectName"] == "upstreamLineage"]
    assert len(lineage) == 1, [m["entityUrn"] for m in gms][:20]
    assert re.fullmatch(
        r"urn:li:dataset:\(urn:li:dataPlatform:snowflake,mydb\.schema\.tabled_\d{8},PROD\)",
        lineage[0]["entityUrn"],
    )
    assert aspect_of(lineage[0])["upstreams"][0]["dataset"] == UPSTREAM
    assert _by(gms, UPSTREAM, "status") == [{"removed": False}]  # the hook's own emit


def test_every_process_instance_has_its_platform_instance(run: dict[str, Any]) -> None:
    mcps = run["file"]
    instances = {m["entityUrn"] for m in mcps if m["aspectName"] == "dataProcessInstanceProperties"}
    assert len(instances) == 4  # the DAG run and its three task runs
    for urn in instances:
        assert _by(mcps, urn, "dataPlatformInstance") == [
            {
                "platform": "urn:li:dataPlatform:airflow",
                "instance": "urn:li:dataPlatformInstance:(urn:li:dataPlatform:airflow,ops)",
            }
        ], urn


def test_templates_link_the_grid_with_tags_status_and_owners_source(run: dict[str, Any]) -> None:
    mcps = run["file"]
    (info,) = _by(mcps, f"urn:li:dataJob:({FLOW},run_data_task)", "dataJobInfo")
    assert info["externalUrl"] == f"{BASE_URL}/dags/official_api/grid?task_id=run_data_task"
    for tag in ("urn:li:tag:example_tag", "urn:li:tag:finance"):
        assert _by(mcps, tag, "status") == [{"removed": False}]
    (ownership,) = _by(mcps, FLOW, "ownership")
    assert ownership["owners"] == [
        {"owner": "urn:li:corpuser:alice", "type": "DEVELOPER", "source": {"type": "SERVICE"}}
    ]


def test_the_task_wrote_its_outlets_named_as_the_official_plugin_does(
    run: dict[str, Any], airflow_major: int
) -> None:
    mcps = run["file"]
    outputs = [
        aspect_of(m)["outputs"] for m in mcps if m["aspectName"] == "dataProcessInstanceOutput"
    ]
    assert outputs, "no task run outputs"
    last = outputs[-1]
    assert TABLE_D in last and ORDERS in last
    if airflow_major == 2:  # render_templates: the try's outlets with the Jinja rendered
        (rendered,) = [u for u in last if "dataPlatform:s3" in u]
        assert re.search(r"bucket/\d{4}-\d{2}-\d{2}/export", rendered), rendered
        assert all("{{" not in u for o in outputs for u in o)
    for dataset in (TABLE_D, ORDERS):
        (operation,) = _by(mcps, dataset, "operation")
        assert operation["operationType"] == "CREATE"
        assert operation["actor"] == "urn:li:corpuser:airflow"
        assert operation["customProperties"]["task_id"] == "run_data_task"


def test_debug_emitter_logs_every_mcp(run: dict[str, Any]) -> None:
    logged = run["result"].output().count("datahub-airflow-listener: emit ")
    assert logged >= len(run["file"]) > 0


def test_every_mcp_passes_the_oracle(run: dict[str, Any]) -> None:
    errors = oracle_errors([*run["file"], *run["gms"]])
    if errors is None:
        pytest.skip("no acryl-datahub interpreter ($DHAL_ORACLE_PYTHON)")
    assert errors == []


def test_the_gms_got_the_listeners_events_too(run: dict[str, Any]) -> None:
    """Through the REST connection without a password: the token key was its token."""
    names = {(m["entityUrn"], m["aspectName"]) for m in run["gms"]}
    assert (FLOW, "dataFlowInfo") in names
    assert json.dumps(run["gms"]).count("dataProcessInstanceRunEvent") >= 2
