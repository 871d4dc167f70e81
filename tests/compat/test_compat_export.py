"""``export`` writes what ``datahub check metadata-file`` accepts: real example-DAG runs, with a
soft delete made by ``cleanup``, out of a real local store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from datahub_airflow_listener.cli import main
from datahub_airflow_listener.domain.mcp import file_form_to_wire
from datahub_airflow_listener.transport.local import LocalConfig, LocalStore
from tests.compat.compat_oracle import check_metadata_file
from tests.unit.history.history_data import DAY_MS, example_mcps, rebased

pytestmark = pytest.mark.compat


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    store_dir = tmp_path / "datahub"
    store = LocalStore(LocalConfig(directory=str(store_dir)))
    now = int(time.time() * 1000)
    data = rebased(example_mcps(), now - 30 * DAY_MS)
    assert store.emit([file_form_to_wire(m) for m in data]).ok
    store.close()
    assert main(["cleanup", "--keep-last", "2", "--store", str(store_dir)]) == 0
    target = tmp_path / "export.json"
    assert main(["export", str(target), "--store", str(store_dir)]) == 0
    return target


def test_export_passes_datahub_check_metadata_file(exported: Path) -> None:
    items = json.loads(exported.read_text())
    # + status removed: the oldest run of each DAG (4 DAG runs) and its 14 task runs
    assert len(items) == len(example_mcps()) + 18
    assert {i["aspectName"] for i in items} >= {"status", "dataProcessInstanceRunEvent"}
    done = check_metadata_file(exported)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert f"{len(items)} MCEs found - all valid" in done.stdout + done.stderr


def test_control_a_broken_export_fails_thecheck_metadata_file(exported: Path) -> None:
    items = json.loads(exported.read_text())
    event = next(i for i in items if i["aspectName"] == "dataProcessInstanceRunEvent")
    event["aspect"]["json"]["status"] = "RUNNING"
    exported.write_text(json.dumps(items))
    done = check_metadata_file(exported)
    assert done.returncode != 0
