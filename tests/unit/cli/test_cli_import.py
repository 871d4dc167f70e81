"""The command line stays cheap to import, and its help works without Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.cli.cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("airflow", "requests", "urllib3", "sqlite3", "_sqlite3", "datahub")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


def test_importing_the_cli_loads_no_airflow_http_sqlite_or_layers() -> None:
    done = _python(
        "import json, sys\n"
        "import datahub_airflow_listener.cli\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "datahub_airflow_listener.cli" in loaded
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []
    ours = {m for m in loaded if m.startswith("datahub_airflow_listener")}
    assert ours == {"datahub_airflow_listener", "datahub_airflow_listener.cli"}


def test_runs_from_a_store_never_imports_airflow(tmp_path: Path) -> None:
    done = _python(
        "import sys\n"
        "from datahub_airflow_listener.cli import main\n"
        f"code = main(['runs', '--dag', 'x', '--store', {str(tmp_path)!r}])\n"
        "print('AIRFLOW' if 'airflow' in sys.modules else 'NO-AIRFLOW', code)\n"
    )
    assert done.stdout.split() == ["NO-AIRFLOW", "2"], done.stdout + done.stderr
    assert "no local store" in done.stderr


@pytest.mark.parametrize(
    "command", ["runs", "export", "flush", "check", "cleanup", "enable", "disable"]
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(capsys, command, "--help")
    assert exc.value.code == 0
    assert f"usage: datahub-airflow-listener {command}" in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys)
    assert result.code == 0
    for command in ("runs", "export", "flush", "check", "cleanup", "enable", "disable"):
        assert command in result.out


def test_python_dash_m_runs_the_cli() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "datahub_airflow_listener", "--version"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("datahub-airflow-listener ")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "datahub"
    broken.mkdir()
    (broken / "local.sqlite").write_text("this is not a database")
    result = run_cli(capsys, "runs", "--dag", "x", "--store", str(broken))
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err
    with pytest.raises(Exception, match="database"):
        run_cli(capsys, "--debug", "runs", "--dag", "x", "--store", str(broken))
