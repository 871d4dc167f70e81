"""Forking while a sender thread is inside SQLite must not hang the child.

Airflow forks task processes (2.x task runner, LocalExecutor) while this package's sender
threads may be mid-statement. SQLite's process-wide mutexes would be copied locked; the fork
gate in ``_sqlite`` keeps every thread out of SQLite across the fork.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from datahub_airflow_listener.transport._sqlite import SqliteFile

SCHEMA = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)"


def test_children_forked_during_sqlite_traffic_can_use_sqlite(tmp_path: Path) -> None:
    db = SqliteFile(tmp_path / "x.sqlite", SCHEMA)
    stop = threading.Event()

    def hammer() -> None:
        opened = 0
        while not stop.is_set():
            opened += 1
            if opened % 20 == 0:  # forks must also be safe while a connection is being set up
                SqliteFile(tmp_path / "x.sqlite", SCHEMA).connection().execute("SELECT 1")
            with db.transaction() as conn:
                conn.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
            db.connection().execute("SELECT COUNT(*) FROM t").fetchone()
            time.sleep(0.0005)  # leave the write lock free now and then, as a real sender does

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    hung = 0
    try:
        for _ in range(15):
            pid = os.fork()
            if pid == 0:  # child: a write and a read through a fresh connection
                signal.alarm(30)  # a hang becomes SIGALRM, i.e. a failure, not a stuck suite
                try:
                    with db.transaction() as conn:
                        conn.execute("INSERT INTO t (v) VALUES ('child')")
                    db.connection().execute("SELECT COUNT(*) FROM t").fetchone()
                    os._exit(0)
                except BaseException as exc:
                    (tmp_path / "child-error.txt").write_text(repr(exc))
                finally:
                    os._exit(3)
            deadline = time.monotonic() + 40
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    error = tmp_path / "child-error.txt"
                    detail = error.read_text() if error.exists() else ""
                    assert os.waitstatus_to_exitcode(status) == 0, detail
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    hung += 1
                    break
                time.sleep(0.005)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert hung == 0
