"""DataHub down for a whole real DAG run: nothing is lost, nothing is reordered.

A real ``airflow dags test`` runs the ETL example with two sinks: a file (always up, the record of
what was produced) and a GMS that is stopped for the whole run. The run must succeed; then the
GMS comes back and ``datahub-airflow-listener flush`` (same AIRFLOW_HOME and configuration as
the listener) delivers the outbox. The GMS must then hold every event the file got, per run in
the order it was produced, with no protocol violation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.airflow_env import AirflowEnv, datahub_env
from tests.integration.records import read_file_output
from tests.support.fake_gms import FakeGms


def _events(mcps: list[dict[str, Any]]) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for m in mcps:
        if m["aspectName"] != "dataProcessInstanceRunEvent":
            continue
        aspect = m["aspect"]
        body = aspect["json"] if "json" in aspect else json.loads(aspect["value"])
        item = (body["timestampMillis"], body["status"])
        seen = out.setdefault(m["entityUrn"], [])
        if item not in seen:  # at-least-once: a re-send is harmless
            seen.append(item)
    return out


def _keys(mcps: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(m["entityUrn"], m["aspectName"]) for m in mcps}


def test_a_dag_run_during_a_gms_outage_is_delivered_whole_by_flush(
    migrated_home: AirflowEnv, tmp_path: Path
) -> None:
    home = migrated_home.clone(tmp_path / "home")
    captured = tmp_path / "captured.json"
    with FakeGms() as gms:
        gms.stop()  # down for the whole DAG run
        env = datahub_env(file_path=captured, gms_url=gms.url)
        home.dags_test("etl_orders", env=env).check()
        assert gms.accepted() == []

        gms.start()
        proc = subprocess.run(
            [sys.executable, "-m", "datahub_airflow_listener", "flush", "--timeout", "30"],
            env=home.env(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        delivered = gms.accepted()
        assert gms.violations == []

    produced = read_file_output(captured)
    assert produced, "the file sink recorded nothing"
    assert _keys(delivered) == _keys(produced)
    assert _events(delivered) == _events(produced)
    for urn, events in _events(delivered).items():
        statuses = [s for _, s in events]
        assert statuses.count("STARTED") >= 1, urn
        # one run's STARTED is never delivered after its COMPLETE
        assert statuses.index("STARTED") < statuses.index("COMPLETE"), urn
