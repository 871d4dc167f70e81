"""The scheduler's watch process: started for a scheduler job only, a real child process that
stops with its parent, and the scheduler's hooks leaving the work to it while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

from datahub_airflow_listener.adapter.watch_process import WatchProcess
from tests.support.waiting import wait_until


def test_no_watch_process_for_a_job_that_is_not_a_scheduler() -> None:
    watch = WatchProcess()
    watch.start(types.SimpleNamespace(id=7, job_type="TriggererJob", start_date=None))
    assert wait_until(lambda: not watch.alive, timeout=10)


def test_the_watch_process_stops_with_its_parent(tmp_path: Path) -> None:
    """A parent (standing for the scheduler) starts the child, then dies: the child exits
    on its own within a second or so, whatever it was doing."""
    pid_file = tmp_path / "child.pid"
    parent = (
        "import sys, time, types\n"
        "from datahub_airflow_listener.adapter.watch_process import WatchProcess\n"
        "w = WatchProcess()\n"
        "w.start(types.SimpleNamespace(id=1, job_type='SchedulerJob', start_date=None))\n"
        "deadline = time.monotonic() + 60\n"
        "while w._proc is None and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        f"open({str(pid_file)!r}, 'w').write(str(w._proc.pid))\n"
        "time.sleep(5)\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATAHUB__ENABLED": "True"}
    proc = subprocess.Popen([sys.executable, "-c", parent], env=env)
    try:
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=60)
        child = int(pid_file.read_text())

        def gone() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            # a zombie (reaped by nobody until init adopts it) counts as gone
            stat = Path(f"/proc/{child}/stat")
            return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"

        assert not gone(), "the watch process did not start"
        time.sleep(1)  # nothing to wait for: it must still run while its parent does
        assert not gone(), "the watch process exited while its scheduler ran"
    finally:
        proc.wait(timeout=120)
    started = time.monotonic()
    assert wait_until(gone, timeout=30), "the watch process outlived its scheduler"
    assert time.monotonic() - started < 30
