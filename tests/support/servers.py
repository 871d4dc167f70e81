"""Throwaway database and broker servers from Debian's packages, on free loopback ports.

:class:`Postgres` runs a private cluster (``initdb`` + ``pg_ctl`` as the ``postgres`` user, which
``initdb`` requires when the tests run as root) and :class:`Redis` a ``redis-server`` without
persistence. Both are context managers that always stop their server and delete its files.
When the Debian package is not installed, :func:`postgres_bin` / :func:`redis_bin` return None
and the tests that need one skip with the reason (``.ci/run`` installs both).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["Postgres", "Redis", "postgres_bin", "redis_bin"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major)
    return Path(found[-1]).parent if found else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


def redis_bin() -> Path | None:
    found = shutil.which("redis-server")
    return Path(found) if found else None


def _wait_port(port: int, timeout: float, alive: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"server exited with {alive.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class _Server:
    """A context manager that always stops its server."""

    def stop(self) -> None:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Postgres(_Server):
    """``with Postgres() as pg: pg.url`` -- a SQLAlchemy URL of database ``airflow``."""

    def __init__(self, database: str = "airflow") -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = bin_dir
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dhal-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._started = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    def _as_postgres(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb refuses root
            command = ["su", "postgres", "-s", "/bin/sh", "-c", subprocess.list2cmdline(command)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def __enter__(self) -> Postgres:
        try:
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chmod(self.root, 0o755)
                os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_postgres("initdb", "-A", "trust", "-U", "postgres", "-D", str(self.data))
            options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            self._as_postgres(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
            )
            self._started = True
            _wait_port(self.port, 30)
            self._as_postgres(
                "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._started:
            with contextlib.suppress(Exception):
                self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)


class Redis(_Server):
    """``with Redis() as r: r.url`` -- a ``redis://`` URL of a server without persistence."""

    def __init__(self) -> None:
        binary = redis_bin()
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dhal-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> Redis:
        log = (self.root / "redis.log").open("wb")
        self._proc = subprocess.Popen(
            [
                str(self.binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            _wait_port(self.port, 30, self._proc)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None
        shutil.rmtree(self.root, ignore_errors=True)
