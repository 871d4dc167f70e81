"""``flush``, and ``runs``/``export``/``cleanup`` reading the store and connections that the
Airflow configuration names (no ``--store``/``--server``: exactly what the listener uses)."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.adapter import config as config_module
from datahub_airflow_listener.adapter.logs import forget_said
from datahub_airflow_listener.adapter.runtime import OUTBOX_FILENAME, sink_name
from datahub_airflow_listener.cli import main
from datahub_airflow_listener.cli.operate import _Bar
from datahub_airflow_listener.domain.mcp import file_form_to_wire
from datahub_airflow_listener.transport.base import WireRecord
from datahub_airflow_listener.transport.local import LocalConfig, LocalStore
from datahub_airflow_listener.transport.outbox import Outbox
from tests.support.fake_gms import FakeGms
from tests.support.fake_gms_read import FakeGmsRead
from tests.unit.history.history_data import DAY_MS, example_mcps, rebased

TOKEN = "tok-flush-never-printed-77"
NOW = int(time.time() * 1000)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "AIRFLOW__DATAHUB__", "AIRFLOW_VAR_DATAHUB")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW__DATAHUB__OUTBOX_PATH", str(tmp_path / "datahub"))
    forget_said()
    config_module.reset_config()
    yield tmp_path / "datahub"
    config_module.reset_config()


def _connect(monkeypatch: pytest.MonkeyPatch, conn_id: str, url: str, token: str | None) -> None:
    value: dict[str, Any] = {"conn_type": "datahub-rest", "host": url}
    if token:
        value["password"] = token
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    monkeypatch.setenv("AIRFLOW__DATAHUB__CONN_ID", conn_id)


def _fill_outbox(home: Path, sink: str) -> list[dict[str, Any]]:
    """What task processes left behind: the real example runs, waiting for ``sink``."""
    wire = [file_form_to_wire(m) for m in example_mcps()]
    outbox = Outbox(home / OUTBOX_FILENAME)
    for start in range(0, len(wire), 50):  # several processes' worth of puts
        outbox.put(sink, [WireRecord.from_wire(w) for w in wire[start : start + 50]])
    outbox.close()
    return wire


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


# -- flush ---------------------------------------------------------------------------------------


def test_flush_delivers_everything_waiting_in_order(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGms(token=TOKEN) as gms:
        _connect(monkeypatch, "dh_flush", gms.url, TOKEN)
        wire = _fill_outbox(home, sink_name("dh_flush"))
        code, out, _ = _run(capsys, "flush", "--timeout", "30")
        accepted = gms.accepted()
        assert gms.violations == []
    assert code == 0, out
    assert out.startswith(f"delivered {len(wire)}, failed permanently 0, still waiting 0")
    assert [m["aspect"]["value"] for m in accepted] == [w["aspect"]["value"] for w in wire]
    assert Outbox(home / OUTBOX_FILENAME).waiting() == 0
    assert TOKEN not in out


def test_flush_with_the_server_down_keeps_events_and_says_why(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, "dh_down", "http://127.0.0.1:9", TOKEN)
    wire = _fill_outbox(home, sink_name("dh_down"))
    started = time.monotonic()
    code, out, _ = _run(capsys, "flush", "--timeout", "5")
    assert time.monotonic() - started < 15
    assert code == 1
    assert f"still waiting {len(wire)}" in out.splitlines()[0]
    problems = [line for line in out.splitlines() if line.startswith("  problem:")]
    assert problems and "conn:dh_down" in problems[0] and "refused" in problems[0]
    assert TOKEN not in out
    assert Outbox(home / OUTBOX_FILENAME).waiting(sink_name("dh_down")) == len(wire)


def test_flush_reports_rows_of_connections_no_longer_configured(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wire = _fill_outbox(home, sink_name("removed_conn"))
    code, out, _ = _run(capsys, "flush", "--timeout", "5")
    assert code == 0
    assert f"{len(wire)} MCP(s) wait for connections no longer in [datahub] conn_id" in out


def test_flush_with_nothing_to_do(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "flush")
    assert code == 0
    assert out.startswith("delivered 0, failed permanently 0, still waiting 0")
    assert not (home / OUTBOX_FILENAME).exists()  # flush never creates an outbox


def test_progress_bar_draws_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = _Bar(stream)
        bar(0, 200)
        bar(100, 200)
        bar(200, 200)
        bar.finish()
    assert pipe.getvalue() == ""
    assert tty.getvalue().endswith("\r[" + "#" * 30 + "] 200/200 MCPs\n")
    assert "[" + "#" * 15 + "." * 15 + "] 100/200 MCPs" in tty.getvalue()


# -- reading what the configuration names --------------------------------------------------------


def test_runs_and_export_use_the_configured_outbox_path(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = LocalStore(LocalConfig(directory=str(home)))
    assert store.emit([file_form_to_wire(m) for m in example_mcps()]).ok
    store.close()
    code, out, _ = _run(capsys, "runs", "--dag", "flaky_retry", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["source"] == f"local store {home / 'local.sqlite'}"
    assert len(data["runs"]) == 3
    code, out, _ = _run(capsys, "export", str(tmp_path / "x.json"))
    assert code == 0
    assert len(json.loads((tmp_path / "x.json").read_text())) == len(example_mcps())


def test_runs_without_a_store_is_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "runs", "--dag", "x")
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: no local store at {home / 'local.sqlite'}: the plugin writes there only while "
        "no DataHub connection is configured (or give --store DIR)"
    ]


def test_runs_and_cleanup_on_the_connections_gms(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGmsRead(token=TOKEN) as gms:
        gms.seed(rebased(example_mcps(), NOW - 20 * DAY_MS))
        _connect(monkeypatch, "dh_read", gms.url, TOKEN)
        code, out, err = _run(capsys, "runs", "--dag", "etl_orders", "--source", "gms", "--json")
        assert code == 0, err
        assert json.loads(out)["source"] == f"DataHub at {gms.url}"
        assert len(json.loads(out)["runs"]) == 3
        code, out, err = _run(
            capsys, "cleanup", "--older-than-days", "10", "--dag", "etl_orders", "--source", "gms"
        )
        assert code == 0, err
        assert "soft-deleted 12 process instance(s)" in out
        assert sum(1 for u in gms.urns() if gms.removed(u)) == 12
        assert gms.violations == []
    assert TOKEN not in out + err


def test_gms_source_needs_a_rest_connection(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "runs", "--dag", "x", "--source", "gms")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error: no DataHub GMS connection to read from: 'datahub_rest_default'")
    assert "--conn CONN_ID" in line
