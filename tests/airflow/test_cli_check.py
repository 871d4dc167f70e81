"""``check``, ``enable`` and ``disable``: the configuration and connections read through
Airflow exactly as the listener reads them (``AIRFLOW__DATAHUB__*``, ``AIRFLOW_CONN_*``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from datahub_airflow_listener.adapter import config as config_module
from datahub_airflow_listener.adapter.config import kill_switch_engaged, load_config
from datahub_airflow_listener.adapter.logs import forget_said
from datahub_airflow_listener.cli import main
from tests.support.fake_gms import FakeGms

TOKEN = "tok-check-never-printed-42"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A clean [datahub] environment whose outbox_path is under tmp_path."""
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "AIRFLOW__DATAHUB__", "AIRFLOW_VAR_DATAHUB")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW__DATAHUB__OUTBOX_PATH", str(tmp_path / "datahub"))
    forget_said()  # once-only warnings: once per test
    config_module.reset_config()
    yield tmp_path / "datahub"
    config_module.reset_config()


def _rest_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, host: str, token: str | None) -> None:
    value: dict[str, object] = {"conn_type": "datahub-rest", "host": host}
    if token:
        value["password"] = token
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))


def _check(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["check"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out.splitlines()


def _line(lines: list[str], subject: str) -> list[str]:
    return [line for line in lines if line[5:].startswith(subject)]


def test_check_with_no_connection_explains_the_local_store(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _check(capsys)
    assert code == 0
    conn = _line(lines, "connection datahub_rest_default")[-1]  # (2.x: + a DB warning)
    assert "events go to the local store" in conn and str(home) in conn
    assert not conn.startswith("FAIL")
    assert _line(lines, "kill switch")[0].startswith("ok")
    assert lines[-1].startswith("all good")


def test_check_calls_the_server_and_never_prints_the_token(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGms(token=TOKEN) as gms:
        _rest_conn(monkeypatch, "dh_check", gms.url, TOKEN)
        monkeypatch.setenv("AIRFLOW__DATAHUB__CONN_ID", "dh_check")
        code, lines = _check(capsys)
        assert code == 0, lines
        assert any(r.path == "/config" for r in gms.requests)
    conn = _line(lines, "connection dh_check")
    assert conn[0].endswith(f"datahub-rest {gms.url}, token set")
    assert conn[1].startswith("ok") and "token accepted" in conn[1]
    assert TOKEN not in "\n".join(lines)


def test_check_reports_a_refused_token_and_an_unreachable_server(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGms(token=TOKEN) as gms:
        _rest_conn(monkeypatch, "dh_wrong", gms.url, "wrong-token-0000")
        _rest_conn(monkeypatch, "dh_down", "http://127.0.0.1:9", None)
        monkeypatch.setenv("AIRFLOW__DATAHUB__CONN_ID", "dh_wrong,dh_down")
        code, lines = _check(capsys)
    assert code == 1
    wrong = _line(lines, "connection dh_wrong")[-1]
    assert wrong.startswith("FAIL") and "refused the token" in wrong
    down = _line(lines, "connection dh_down")[-1]
    assert down.startswith("FAIL") and "Cannot reach" in down
    assert "wrong-token-0000" not in "\n".join(lines)
    assert lines[-1].startswith("2 problem(s) to fix")


def test_check_reports_a_missing_explicit_connection_and_bad_values(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__DATAHUB__CONN_ID", "no_such_conn")
    monkeypatch.setenv("AIRFLOW__DATAHUB__FLUSH_TIMEOUT_SEC", "soon")
    monkeypatch.setenv("AIRFLOW__DATAHUB__SAMPLE_DAGS", '{"hf_.*": 0}')
    code, lines = _check(capsys)
    assert code == 1
    missing = _line(lines, "connection no_such_conn")[-1]
    assert missing.startswith("FAIL") and "not found" in missing
    assert any(line.startswith("WARN") and "flush_timeout_sec" in line for line in lines)
    sample = [line for line in lines if "sample_dags" in line and line.startswith("FAIL")]
    assert sample and "integer >= 1" in sample[0]


def test_check_describes_sampling(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__DATAHUB__SAMPLE_DAGS", '{"hf_.*": 10}')
    _, lines = _check(capsys)
    (sampling,) = _line(lines, "sampling")
    assert "DAGs matching 'hf_.*': ~1 run in 10" in sampling


def test_disable_and_enable_toggle_the_kill_switch(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["disable"]) == 0
    out = capsys.readouterr().out
    switch = home / "disabled"
    assert switch.exists() and f"{switch} created" in out
    assert kill_switch_engaged(load_config())
    _, lines = _check(capsys)
    assert _line(lines, "kill switch")[0].startswith("WARN")
    assert main(["disable"]) == 0
    assert "already existed" in capsys.readouterr().out
    assert main(["enable"]) == 0
    assert f"{switch} removed" in capsys.readouterr().out
    assert not switch.exists()
    assert not kill_switch_engaged(load_config())
    assert main(["enable"]) == 0
    assert "no kill-switch file" in capsys.readouterr().out


def test_enable_warns_about_the_official_switch(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config_module.OFFICIAL_KILL_SWITCH_ENV, "true")
    assert main(["enable"]) == 0
    assert config_module.OFFICIAL_KILL_SWITCH_ENV in capsys.readouterr().out


def test_disable_honours_kill_switch_file(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    custom = tmp_path / "elsewhere" / "off"
    monkeypatch.setenv("AIRFLOW__DATAHUB__KILL_SWITCH_FILE", str(custom))
    assert main(["disable"]) == 0
    assert custom.exists()
    assert not (home / "disabled").exists()
