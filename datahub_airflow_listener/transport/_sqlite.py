"""One SQLite file shared by threads and processes: WAL, owner-only, short write transactions.

Used by the outbox and the local store. Contract:

* The file (and SQLite's ``-wal``/``-shm`` companions, which SQLite creates with the database's
  permissions) is created ``0600`` in a ``0700`` directory: it may hold metadata of private
  pipelines.
* One connection per (process, thread), opened lazily: a connection never crosses a fork or a
  thread. A connection inherited over ``fork()`` is deliberately never closed in the child
  (SQLite forbids using it there, and closing could disturb the parent's locks).
* Opening a connection (WAL switch, schema) is serialized across processes by ``flock`` on a
  ``<file>.lock`` sidecar: SQLite fails fast, not after the busy timeout, when several
  processes initialise a fresh file at once.
* Fork safety: SQLite keeps process-wide pthread mutexes; a ``fork()`` while another thread is
  inside a SQLite call copies them locked, and the child hangs on its first SQLite call
  (observed: Airflow forks task processes while our sender threads run). Every SQLite call here
  runs under one process-wide gate that ``os.register_at_fork`` takes before a fork and releases
  after it, so no thread is ever inside SQLite, or inside a transaction, when the process
  forks. Statement results are read completely under the gate.
* Checkpoints (the only fsyncs with ``synchronous=NORMAL``) happen every ~32 MB of WAL or
  when a caller asks (:meth:`SqliteFile.checkpoint`, e.g. a sender that went idle).
* Writes use ``BEGIN IMMEDIATE`` so concurrent writers queue on SQLite's lock (up to
  ``busy_timeout_ms``) instead of failing half-way; ``synchronous=NORMAL`` in WAL mode survives
  a process crash, which is the durability this package promises.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["SqliteFile", "fork_gate"]

_PAGE_SIZE = 16384
_AUTOCHECKPOINT_BYTES = 32 * 1024 * 1024  # of WAL between automatic checkpoints
_WAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes the WAL file is truncated to after a checkpoint
_ABANDONED: list[sqlite3.Connection] = []  # inherited over fork: keep alive, never close


_GATE = threading.RLock()


def fork_gate() -> threading.RLock:
    """The gate (see the module docstring), for other state a fork must not copy mid-change."""
    return _GATE


def _before_fork() -> None:
    _GATE.acquire()


def _after_fork_in_parent() -> None:
    _GATE.release()


def _after_fork_in_child() -> None:
    global _GATE  # noqa: PLW0603  # the child starts with one thread: a fresh gate
    _GATE = threading.RLock()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)


class _Result:
    """The rows of one statement, read completely while the fork gate was held."""

    __slots__ = ("_rows", "lastrowid", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None = None) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def close(self) -> None:
        self._rows = []


class _GatedConnection(sqlite3.Connection):
    """A connection whose statements run (and are fully read) under the fork gate."""

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]  # returns _Result
        with _GATE:
            cursor = super().execute(sql, parameters)
            try:
                return _Result(cursor.fetchall(), cursor.rowcount, cursor.lastrowid)
            finally:
                cursor.close()

    def executemany(self, sql: str, parameters: Any, /) -> Any:  # type: ignore[override]  # returns _Result
        with _GATE:
            cursor = super().executemany(sql, parameters)
            try:
                return _Result([], cursor.rowcount)
            finally:
                cursor.close()

    def close(self) -> None:
        with _GATE:
            super().close()


class SqliteFile:
    """A lazily connected, per-thread handle on one database file with a fixed schema."""

    def __init__(
        self, path: str | os.PathLike[str], schema: str, *, busy_timeout_ms: int = 10000
    ) -> None:
        self.path = Path(path)
        self._schema = schema
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[tuple[int, sqlite3.Connection]] = []

    def __repr__(self) -> str:
        return f"SqliteFile({str(self.path)!r})"

    @contextlib.contextmanager
    def _setup_lock(self) -> Iterator[None]:
        """Serialize first-time setup across threads and processes (flock on a sidecar).

        Turning a fresh file into WAL mode from several processes at once fails with "disk I/O
        error" or "database is locked" without waiting for the busy timeout; after setup,
        SQLite's own locking and busy timeout are enough.
        """
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _prepare(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_uid == os.getuid():
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)

    def _open(self) -> sqlite3.Connection:
        # Under the gate as a whole: a fork must not copy the sidecar's flock held (the child
        # would wait on its own inherited lock) nor SQLite's mutexes mid-call.
        with _GATE, self._setup_lock():
            self._prepare()
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_ms / 1000,
                isolation_level=None,  # explicit BEGIN/COMMIT below
                check_same_thread=False,
                factory=_GatedConnection,
            )
            try:
                conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
                # A new file only (no-op on an existing one): rows are batches of hundreds of
                # MCPs, and freeing one's overflow chain of 4 KB pages cost 6x more.
                conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
                (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                # Checkpoints fsync; the default (every 1000 pages) put an fsync in every few
                # writes. Fewer, and the WAL file is cut back to a bounded size after each.
                (page_size,) = conn.execute("PRAGMA page_size").fetchone()
                pages = _AUTOCHECKPOINT_BYTES // int(page_size)
                conn.execute(f"PRAGMA wal_autocheckpoint={pages}")
                conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
                with self.transaction(conn):
                    # Not executescript(): it would COMMIT first and run outside this transaction.
                    for statement in filter(None, (s.strip() for s in self._schema.split(";"))):
                        conn.execute(statement)
            except BaseException:
                conn.close()
                raise
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (created, and the schema ensured, on first use)."""
        pid = os.getpid()
        cached: tuple[int, sqlite3.Connection] | None = getattr(self._local, "conn", None)
        if cached is not None:
            if cached[0] == pid:
                return cached[1]
            _ABANDONED.append(cached[1])
        conn = self._open()
        self._local.conn = (pid, conn)
        with self._lock:
            self._all.append((pid, conn))
        return conn

    @contextlib.contextmanager
    def transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error), all under the fork gate.

        A fork in the middle of a transaction would leave the child believing (in SQLite's
        per-process lock table) that the file is locked by a connection it can never use:
        every write of the child would then fail with "database is locked".
        """
        with _GATE:
            conn = conn or self.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Copy the WAL into the database now (PASSIVE: never waits for other connections).

        Called when a sender goes idle, so the fsync happens off the busy path.
        """
        self.connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        """Close every connection this process opened (call from the owning process only)."""
        pid = os.getpid()
        with self._lock:
            mine = [c for p, c in self._all if p == pid]
            self._all = [(p, c) for p, c in self._all if p != pid]
        for conn in mine:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
