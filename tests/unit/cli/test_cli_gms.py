"""``runs`` and ``cleanup`` against a GMS: a loopback server answering the read and delete
endpoints, holding the real example-DAG runs (``--server``: no Airflow needed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.cli.sources import TOKEN_ENV
from datahub_airflow_listener.domain.runs import RunMapper
from datahub_airflow_listener.transport.gms_read import GmsReader
from datahub_airflow_listener.transport.rest import RestConfig
from tests.support.fake_gms_read import FakeGmsRead
from tests.unit.cli.cli_helpers import assert_one_error_line, fill_store, run_cli
from tests.unit.history.history_data import DAY_MS, EXAMPLE_DAGS, example_mcps, rebased

TOKEN = "s3cr3t-token-value"
NOW = int(time.time() * 1000)
MAPPER = RunMapper()


def _templates() -> list[dict[str, Any]]:
    """DataFlow and DataJob templates of the example DAGs (what must never be deleted)."""
    out = []
    seen_jobs = set()
    for mcp in example_mcps():
        if mcp["aspectName"] != "dataProcessInstanceRelationships":
            continue
        template = mcp["aspect"]["json"]["parentTemplate"]
        if template.startswith("urn:li:dataJob:") and template not in seen_jobs:
            seen_jobs.add(template)
            info = {"name": template.rsplit(",", 1)[1][:-1], "type": {"string": "COMMAND"}}
            out.append(_mcp(template, "dataJobInfo", info))
    for dag in EXAMPLE_DAGS:
        out.append(_mcp(MAPPER.flow_urn(dag), "dataFlowInfo", {"name": dag}))
    return out


def _mcp(urn: str, aspect: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "entityType": urn.split(":")[2],
        "entityUrn": urn,
        "changeType": "UPSERT",
        "aspectName": aspect,
        "aspect": {"json": value},
    }


@pytest.fixture
def data() -> list[dict[str, Any]]:
    return rebased(example_mcps(), NOW - 10 * DAY_MS)


@pytest.fixture
def gms(data: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGmsRead]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with FakeGmsRead(token=TOKEN) as server:
        server.seed(data + _templates())
        yield server
        assert server.violations == []


@pytest.fixture
def store_dir(tmp_path: Path, data: list[dict[str, Any]]) -> Path:
    fill_store(tmp_path / "datahub", data).close()
    return tmp_path / "datahub"


def _runs_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    result = run_cli(capsys, "runs", "--json", *argv)
    assert result.code == 0, result.err
    value: dict[str, Any] = json.loads(result.out)
    return value


@pytest.mark.parametrize("dag", sorted(EXAMPLE_DAGS))
def test_gms_history_equals_the_local_store(
    capsys: pytest.CaptureFixture[str], gms: FakeGmsRead, store_dir: Path, dag: str
) -> None:
    remote = _runs_json(capsys, "--dag", dag, "--source", "gms", "--server", gms.url)
    local = _runs_json(capsys, "--dag", dag, "--store", str(store_dir))
    assert remote["runs"] == local["runs"]
    assert remote["stats"] == local["stats"]
    assert len(remote["runs"]) == EXAMPLE_DAGS[dag]
    assert remote["source"] == f"DataHub at {gms.url}"


def test_gms_task_filter_limit_and_text(
    capsys: pytest.CaptureFixture[str], gms: FakeGmsRead, store_dir: Path
) -> None:
    args = ("--dag", "flaky_retry", "--task", "flaky", "--limit", "2")
    remote = _runs_json(capsys, *args, "--source", "gms", "--server", gms.url)
    local = _runs_json(capsys, *args, "--store", str(store_dir))
    assert remote["runs"] == local["runs"]
    assert [len(r["task_runs"]) for r in remote["runs"]] == [1, 1]
    text = run_cli(capsys, "runs", *args, "--source", "gms", "--server", gms.url)
    assert text.out.count("try 1: UP_FOR_RETRY") == 2


def test_every_request_carries_the_token_and_the_restli_header(
    capsys: pytest.CaptureFixture[str], gms: FakeGmsRead
) -> None:
    _runs_json(capsys, "--dag", "branching", "--source", "gms", "--server", gms.url)
    reads = [r for r in gms.requests if not r.path.startswith("/config")]
    assert reads
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in reads)
    assert all(r.headers.get("X-RestLi-Protocol-Version") == "2.0.0" for r in reads)
    assert all(r.status == 200 for r in reads)


def test_unknown_dag_on_gms(capsys: pytest.CaptureFixture[str], gms: FakeGmsRead) -> None:
    result = run_cli(capsys, "runs", "--dag", "etl_order", "--source", "gms", "--server", gms.url)
    assert_one_error_line(result, "'etl_order'", "no DataFlow")


def test_refused_token_is_one_line_without_the_token(
    capsys: pytest.CaptureFixture[str], gms: FakeGmsRead, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "wrong-token-123456")
    result = run_cli(capsys, "runs", "--dag", "branching", "--source", "gms", "--server", gms.url)
    assert_one_error_line(result, "refused the token", "401")
    assert "wrong-token-123456" not in result.err + result.out
    monkeypatch.delenv(TOKEN_ENV)
    result = run_cli(capsys, "runs", "--dag", "branching", "--source", "gms", "--server", gms.url)
    assert_one_error_line(result, "requires a token")


def test_unreachable_server_is_one_line(
    capsys: pytest.CaptureFixture[str], gms: FakeGmsRead
) -> None:
    gms.stop()
    result = run_cli(capsys, "cleanup", "--keep-last", "1", "--source", "gms", "--server", gms.url)
    assert_one_error_line(result, "cannot reach", "Connection refused")


def test_a_flaky_gms_is_retried(capsys: pytest.CaptureFixture[str], gms: FakeGmsRead) -> None:
    gms.fail_reads_next(2, status=503)
    remote = _runs_json(capsys, "--dag", "etl_orders", "--source", "gms", "--server", gms.url)
    assert len(remote["runs"]) == 3
    assert sum(1 for r in gms.requests if r.status == 503) == 2


def test_gms_cleanup_dry_run_changes_nothing(
    capsys: pytest.CaptureFixture[str], gms: FakeGmsRead
) -> None:
    before = gms.accepted_count
    result = run_cli(
        capsys, "cleanup", "--keep-last", "1", "--dry-run", "--source", "gms", "--server", gms.url
    )
    assert result.code == 0, result.err
    assert result.out.startswith(
        f"would soft-delete 36 process instance(s) in DataHub at {gms.url}"
    )
    assert gms.accepted_count == before
    assert gms.deleted == []


def test_gms_soft_cleanup_marks_only_old_instances_removed(
    capsys: pytest.CaptureFixture[str], gms: FakeGmsRead
) -> None:
    templates = {m["entityUrn"] for m in _templates()}
    result = run_cli(
        capsys,
        "cleanup",
        "--keep-last",
        "1",
        "--dag",
        "etl_orders",
        "--source",
        "gms",
        "--server",
        gms.url,
    )
    assert result.code == 0, result.err
    assert "soft-deleted 8 process instance(s)" in result.out
    removed = {u for u in gms.urns() if gms.removed(u)}
    assert len(removed) == 8
    assert all(u.startswith("urn:li:dataProcessInstance:") for u in removed)
    assert not removed & templates
    left = _runs_json(capsys, "--dag", "etl_orders", "--source", "gms", "--server", gms.url)
    assert len(left["runs"]) == 1 and len(left["runs"][0]["task_runs"]) == 3
    other = _runs_json(capsys, "--dag", "branching", "--source", "gms", "--server", gms.url)
    assert len(other["runs"]) == 3


def test_gms_hard_cleanup_of_every_dag_never_touches_templates(
    capsys: pytest.CaptureFixture[str], gms: FakeGmsRead
) -> None:
    templates = {m["entityUrn"] for m in _templates()}
    result = run_cli(
        capsys,
        "cleanup",
        "--older-than-days",
        "7",
        "--hard",
        "--source",
        "gms",
        "--server",
        gms.url,
    )
    assert result.code == 0, result.err
    assert "hard-deleted 54 process instance(s)" in result.out
    assert len(gms.deleted) == 54
    assert all(u.startswith("urn:li:dataProcessInstance:") for u in gms.deleted)
    assert gms.urns() == templates  # only the DataFlow/DataJob templates are left
    gone = run_cli(capsys, "runs", "--dag", "etl_orders", "--source", "gms", "--server", gms.url)
    assert_one_error_line(gone, "no runs of DAG 'etl_orders'")


def test_history_without_dag_run_instances_is_read_through_the_jobs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Task runs only (as the official plugin records them): found via IsPartOf + InstanceOf."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    dag_runs = {
        m["entityUrn"]
        for m in example_mcps()
        if m["aspectName"] == "dataProcessInstanceRelationships"
        and m["aspect"]["json"]["parentTemplate"].startswith("urn:li:dataFlow:")
    }
    tasks_only = [m for m in example_mcps() if m["entityUrn"] not in dag_runs]
    with FakeGmsRead() as server:
        server.seed(tasks_only + _templates())
        data = _runs_json(capsys, "--dag", "flaky_retry", "--source", "gms", "--server", server.url)
        assert server.violations == []
    assert len(data["runs"]) == 3
    assert all(not r["recorded"] and r["result"] == "SUCCESS" for r in data["runs"])
    assert all(len(r["task_runs"]) == 2 for r in data["runs"])


# -- the reader itself ---------------------------------------------------------------------------


def test_reader_pages_through_relationships_and_flows(gms: FakeGmsRead) -> None:
    reader = GmsReader(RestConfig(server=gms.url, token=TOKEN), page_size=2)
    with reader:
        runs = reader.flow_instances(MAPPER.flow_urn("branching"))
        flows = reader.list_urns("dataFlow")
    assert len(runs) == 3
    assert sorted(flows) == sorted(MAPPER.flow_urn(d) for d in EXAMPLE_DAGS)
    pages = [r for r in gms.requests if r.path.startswith("/relationships")]
    assert len(pages) == 2  # 2 + 1 instances


@pytest.mark.parametrize(
    "urn",
    [
        "urn:li:dataFlow:(airflow,etl_orders,prod)",
        "urn:li:dataJob:(urn:li:dataFlow:(airflow,etl_orders,prod),extract_orders)",
        "urn:li:dataset:(urn:li:dataPlatform:file,x,PROD)",
    ],
)
def test_reader_refuses_to_delete_anything_but_process_instances(
    gms: FakeGmsRead, urn: str
) -> None:
    reader = GmsReader(RestConfig(server=gms.url, token=TOKEN))
    with reader:
        with pytest.raises(ValueError, match="only process instances"):
            reader.hard_delete(urn)
        with pytest.raises(ValueError, match="only process instances"):
            reader.soft_delete(["urn:li:dataProcessInstance:abc", urn])
    assert reader.requests_sent == 0
    assert gms.deleted == []
