"""The scheduler's watch in a process of its own: recording costs the scheduler's loop nothing.

A scheduler with the plugin starts one child process (``python -m
datahub_airflow_listener.adapter.watch_process``) once its job has an id. The child reads the
metadata database every ``reconcile_interval_sec`` (:class:`.watcher.Watcher`) and records
what it finds: DAG runs as they start and end (with their templates), every try as it starts
and ends, earlier tries, runs ended without a hook. It has its own sender and shares the
machine's outbox. The scheduler's own hooks then do nothing: what they would send, the child
sends from the same rows, identically.

The child stops when the scheduler does (it checks its parent every half second). If it
cannot start, or dies, the scheduler falls back to watching in a thread and acting on its
hooks, as with ``watch_process = false``. Its cost is a Python process with Airflow imported
(memory, and about two seconds of CPU to start); ``bench/bench_scheduler.py`` prints the CPU
of both processes.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time
import types
from datetime import datetime
from typing import Any, Final

log = logging.getLogger(__name__)

__all__ = ["WatchProcess", "main"]

_PARENT_CHECK_SEC: Final = 0.5
_JOB_WAIT_SEC: Final = 60.0


class WatchProcess:
    """The scheduler's handle on its watch process (started from a thread, never blocking)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._out = False  # not started (not a scheduler, or it could not start)
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        """The child runs (or is being started): the scheduler's hooks leave the work to it."""
        with self._lock:
            if self._out:
                return False
            return self._proc is None or self._proc.poll() is None

    def start(self, job: Any) -> None:
        threading.Thread(
            target=self._start, args=(job,), name="datahub-listener-watch-start", daemon=True
        ).start()

    def _start(self, job: Any) -> None:
        try:
            job_type, job_id, started = _job_identity(job)
            if job_type != "SchedulerJob":  # a triggerer, a DAG processor: nothing to watch
                with self._lock:
                    self._out = True
                return
            if job_id is None:
                raise RuntimeError("the scheduler's job got no id")
            command = [
                sys.executable,
                "-m",
                "datahub_airflow_listener.adapter.watch_process",
                "--parent",
                str(os.getpid()),
                "--job-id",
                str(job_id),
            ]
            if started is not None:
                command += ["--job-start", started.isoformat()]
            proc = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
                command, stdin=subprocess.DEVNULL, close_fds=True
            )
        except Exception as exc:
            log.warning(
                "datahub-airflow-listener: the watch process did not start (%s); "
                "watching in the scheduler instead",
                exc,
            )
            with self._lock:
                self._out = True
            return
        with self._lock:
            self._proc = proc


def _job_identity(job: Any) -> tuple[str | None, int | None, datetime | None]:
    """The job's type, id and start once its runner has stored them (read without the ORM)."""
    deadline = time.monotonic() + _JOB_WAIT_SEC
    while time.monotonic() < deadline:
        values = vars(job)
        job_type = values.get("job_type")
        if job_type is not None and (job_type != "SchedulerJob" or values.get("id") is not None):
            return job_type, values.get("id"), values.get("start_date")
        time.sleep(0.1)
    return vars(job).get("job_type"), None, None


# -- the child ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="datahub-airflow-listener watch")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--job-id", type=int, required=True)
    parser.add_argument("--job-start")
    args = parser.parse_args(argv)

    from datahub_airflow_listener.adapter.config import get_config
    from datahub_airflow_listener.adapter.recorder import RunRecorder
    from datahub_airflow_listener.adapter.watcher import Watcher

    config = get_config()
    if not (config.enabled and config.capture_executions):
        return 0
    start = datetime.fromisoformat(args.job_start) if args.job_start else None
    job = types.SimpleNamespace(id=args.job_id, start_date=start, job_type="SchedulerJob")
    recorder = RunRecorder()
    watcher = Watcher(recorder, config.reconcile_interval_sec)
    watcher.bind(job)
    while os.getppid() == args.parent:
        watcher.step()
        deadline = time.monotonic() + watcher.interval
        while time.monotonic() < deadline and os.getppid() == args.parent:
            time.sleep(_PARENT_CHECK_SEC)
    recorder.stopping()
    return 0


if __name__ == "__main__":
    sys.exit(main())
