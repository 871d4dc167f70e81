"""``runs``, ``export`` and ``cleanup`` on a real local store (``--store``: no Airflow needed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from datahub_airflow_listener.cli.times import format_ms
from datahub_airflow_listener.domain import history
from tests.unit.cli.cli_helpers import assert_one_error_line, fill_store, run_cli
from tests.unit.history.history_data import (
    DAY_MS,
    dag_run,
    example_mcps,
    rebased,
    wire,
)

NOW = int(time.time() * 1000)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """The real example-DAG runs, the newest finishing an hour ago, one day between DAGs."""
    directory = tmp_path / "datahub"
    fill_store(directory, rebased(example_mcps(), NOW - 3_600_000)).close()
    return directory


def test_runs_prints_the_tree_newest_first_with_stats(
    capsys: pytest.CaptureFixture[str], store_dir: Path
) -> None:
    result = run_cli(capsys, "runs", "--dag", "flaky_retry", "--store", str(store_dir))
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("DAG 'flaky_retry': 3 run(s), newest first, from the local store")
    run_lines = [line for line in out.splitlines() if line.startswith("manual__")]
    assert len(run_lines) == 3
    assert run_lines == sorted(run_lines, reverse=True)  # run ids carry their start time
    assert out.count("try 1: UP_FOR_RETRY") == 3
    assert out.count("try 2: SUCCESS") == 3
    assert "Over these 3 run(s)" in out
    stats = {line.split()[0]: line.split() for line in out.splitlines()[-3:]}
    assert stats["flaky"][1:5] == ["3", "100%", "0", "0"]
    assert stats["flaky"][5] == "3"  # retried
    assert result.err == ""


def test_runs_shows_inputs_and_outputs(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    result = run_cli(
        capsys, "runs", "--dag", "etl_orders", "--limit", "1", "--store", str(store_dir)
    )
    assert result.code == 0
    assert "out: urn:li:dataset:(urn:li:dataPlatform:file,etl_orders/orders_raw.csv,PROD)" in (
        result.out
    )
    assert "in : urn:li:dataset:(urn:li:dataPlatform:postgres,shop.public.orders,PROD)" in (
        result.out
    )
    assert sum(1 for line in result.out.splitlines() if line.startswith("manual__")) == 1


def test_runs_json_matches_the_history(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    result = run_cli(
        capsys, "runs", "--dag", "taskflow_mapping", "--json", "--store", str(store_dir)
    )
    assert result.code == 0
    data = json.loads(result.out)
    assert data["dag_id"] == "taskflow_mapping"
    assert len(data["runs"]) == 3
    starts = [r["start_ms"] for r in data["runs"]]
    assert starts == sorted(starts, reverse=True)
    first = data["runs"][0]
    mapped = [t for t in first["task_runs"] if t["task_id"] == "process_region"]
    assert sorted(t["map_index"] for t in mapped) == [0, 1, 2]
    assert all(t["attempts"][0]["status"] == "COMPLETE" for t in mapped)
    tasks = {s["task_id"]: s for s in data["stats"]["tasks"]}
    assert tasks["process_region"]["runs"] == 9
    assert tasks["process_region"]["success_rate"] == 1.0
    assert data["stats"]["dag_runs"]["succeeded"] == 3


def test_runs_task_filter_and_window(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    result = run_cli(
        capsys,
        "runs",
        "--dag",
        "branching",
        "--task",
        "incremental_refresh",
        "--result",
        "skipped",
        "--json",
        "--store",
        str(store_dir),
    )
    data = json.loads(result.out)
    assert len(data["runs"]) == 3
    assert {t["result"] for r in data["runs"] for t in r["task_runs"]} == {"SKIPPED"}
    none = run_cli(capsys, "runs", "--dag", "branching", "--since", "1m", "--store", str(store_dir))
    assert none.code == 0
    assert "no runs match" in none.out


def test_runs_until_an_iso_time(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    runs = history.build_history(rebased(example_mcps(), NOW - 3_600_000))
    flaky = [r for r in runs if r.dag_id == "flaky_retry"]
    cut = format_ms(flaky[0].start_ms).replace(" ", "T")  # the newest run's start
    result = run_cli(
        capsys, "runs", "--dag", "flaky_retry", "--until", cut, "--json", "--store", str(store_dir)
    )
    assert [r["run_id"] for r in json.loads(result.out)["runs"]] == [r.run_id for r in flaky[1:]]


def test_wrong_dag_id_is_one_line_naming_the_dags(
    capsys: pytest.CaptureFixture[str], store_dir: Path
) -> None:
    result = run_cli(capsys, "runs", "--dag", "etl_order", "--store", str(store_dir))
    assert_one_error_line(result, "'etl_order'", "branching, etl_orders, flaky_retry")


def test_wrong_task_id_is_one_line(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    result = run_cli(
        capsys, "runs", "--dag", "etl_orders", "--task", "nope", "--store", str(store_dir)
    )
    assert_one_error_line(result, "'nope'", "extract_orders")


def test_missing_store_and_bad_arguments(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = run_cli(capsys, "runs", "--dag", "d", "--store", str(tmp_path / "none"))
    assert_one_error_line(result, "no local store")
    assert not (tmp_path / "none").exists()  # reading never creates a store
    result = run_cli(capsys, "runs", "--dag", "d", "--since", "last week", "--store", str(tmp_path))
    assert_one_error_line(result, "--since")
    with pytest.raises(SystemExit) as exc:
        run_cli(capsys, "runs", "--dag", "d", "--result", "GREAT")
    assert exc.value.code == 2


def test_running_and_failed_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    start = NOW - 10_000
    mcps = wire(
        dag_run(
            "d",
            "r1",
            start - 5000,
            [("a", [(start - 4900, start - 4800, "FAILURE")])],
            result="FAILURE",
        )
        + dag_run("d", "r2", start, [("a", [(start + 1, start + 2, "")])], result=None)
    )
    fill_store(tmp_path, mcps).close()
    result = run_cli(capsys, "runs", "--dag", "d", "--store", str(tmp_path))
    lines = result.out.splitlines()
    assert lines[2].startswith("r2  RUNNING")
    assert any(line.startswith("r1  FAILURE") for line in lines)
    stats = run_cli(capsys, "runs", "--dag", "d", "--json", "--store", str(tmp_path))
    data = json.loads(stats.out)
    assert data["stats"]["dag_runs"]["failed"] == 1
    assert data["stats"]["dag_runs"]["unfinished"] == 1
    only_running = run_cli(
        capsys, "runs", "--dag", "d", "--result", "running", "--json", "--store", str(tmp_path)
    )
    assert [r["run_id"] for r in json.loads(only_running.out)["runs"]] == ["r2"]


# -- export --------------------------------------------------------------------------------------


def test_export_writes_every_mcp_in_file_form(
    capsys: pytest.CaptureFixture[str], store_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "mcps.json"
    result = run_cli(capsys, "export", str(target), "--store", str(store_dir))
    assert result.code == 0, result.err
    items = json.loads(target.read_text())
    assert len(items) == len(example_mcps())
    assert f"exported {len(items)} MCPs" in result.out
    assert all("json" in item["aspect"] for item in items)
    assert history.build_history(items) == history.build_history(
        rebased(example_mcps(), NOW - 3_600_000)
    )


def test_export_to_a_directory_is_refused(
    capsys: pytest.CaptureFixture[str], store_dir: Path, tmp_path: Path
) -> None:
    result = run_cli(capsys, "export", str(tmp_path), "--store", str(store_dir))
    assert_one_error_line(result, "is a directory")


# -- cleanup -------------------------------------------------------------------------------------


def _old_store(tmp_path: Path) -> Path:
    """The example runs, the newest 10 days old, plus one run of a DAG started an hour ago."""
    directory = tmp_path / "old"
    fresh = wire(
        dag_run(
            "recent_dag",
            "r",
            NOW - 3_600_000,
            [("a", [(NOW - 3_599_000, NOW - 3_598_000, "SUCCESS")])],
        )
    )
    fill_store(directory, rebased(example_mcps(), NOW - 10 * DAY_MS) + fresh).close()
    return directory


def _instances(capsys: pytest.CaptureFixture[str], directory: Path, dag: str) -> int:
    result = run_cli(
        capsys, "runs", "--dag", dag, "--json", "--limit", "1000", "--store", str(directory)
    )
    if result.code:
        return 0
    runs = json.loads(result.out)["runs"]
    return len(runs) + sum(len(r["task_runs"]) for r in runs)


def test_cleanup_dry_run_lists_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = _old_store(tmp_path)
    before = (
        (directory / "local.sqlite").stat().st_size,
        _instances(capsys, directory, "etl_orders"),
    )
    result = run_cli(
        capsys, "cleanup", "--older-than-days", "7", "--dry-run", "--store", str(directory)
    )
    assert result.code == 0
    assert result.out.startswith("would soft-delete 54 process instance(s)")
    assert "(12 DAG run(s), 42 task run(s))" in result.out
    assert "recent_dag" not in result.out
    assert _instances(capsys, directory, "etl_orders") == before[1] == 12


def test_cleanup_soft_hides_runs_and_export_carries_the_removal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = _old_store(tmp_path)
    result = run_cli(
        capsys, "cleanup", "--keep-last", "1", "--dag", "etl_orders", "--store", str(directory)
    )
    assert result.code == 0, result.err
    assert "soft-deleted 8 process instance(s)" in result.out
    assert _instances(capsys, directory, "etl_orders") == 4  # one DAG run and its 3 tasks
    assert _instances(capsys, directory, "flaky_retry") == 9  # other DAGs untouched
    target = tmp_path / "export.json"
    run_cli(capsys, "export", str(target), "--store", str(directory))
    removals = [i for i in json.loads(target.read_text()) if i["aspectName"] == "status"]
    assert len(removals) == 8
    assert all(i["aspect"]["json"] == {"removed": True} for i in removals)
    again = run_cli(
        capsys, "cleanup", "--keep-last", "1", "--dag", "etl_orders", "--store", str(directory)
    )
    assert "nothing to soft-delete" in again.out


def test_cleanup_hard_deletes_rows(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    directory = _old_store(tmp_path)
    result = run_cli(
        capsys, "cleanup", "--older-than-days", "7", "--hard", "--store", str(directory)
    )
    assert result.code == 0, result.err
    assert "hard-deleted 54 process instance(s)" in result.out
    target = tmp_path / "export.json"
    run_cli(capsys, "export", str(target), "--store", str(directory))
    left = {i["entityUrn"] for i in json.loads(target.read_text())}
    assert len(left) == 2  # the fresh DAG run and its one task run, nothing else
    assert _instances(capsys, directory, "recent_dag") == 2
    assert assert_gone(capsys, directory, "etl_orders")


def assert_gone(capsys: pytest.CaptureFixture[str], directory: Path, dag: str) -> bool:
    result = run_cli(capsys, "runs", "--dag", dag, "--store", str(directory))
    assert_one_error_line(result, dag)
    return True


def test_cleanup_needs_a_rule(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = run_cli(capsys, "cleanup", "--store", str(tmp_path))
    assert_one_error_line(result, "--older-than-days")
