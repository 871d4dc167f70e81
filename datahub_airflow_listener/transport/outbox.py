"""The outbox: events waiting for delivery, durable on local disk and shared by processes.

One SQLite file (WAL, ``0600``) that the scheduler and every task process on a machine open at
once. Rows are serialized wire-form MCPs, one per destination ("sink"), ordered by ``seq``.

Contract:

* ``put(sink, records)`` appends in one transaction; from then on the events survive the
  process (at-least-once: a row is deleted only after its destination accepted it, or refused
  it for good).
* Per-sink **lease**: only its holder claims a sink's rows, always in ``seq`` order, so one
  run's STARTED can never be delivered after its COMPLETE even with many processes sending.
  A lease expires after ``lease_ttl_sec`` without renewal, or at once when its holder is a
  process on this host that no longer exists (a killed task), so work is never stranded.
* ``settle`` removes a delivered prefix; MCPs refused for good are moved to ``dead_letter``
  (kept, newest ``max_dead_rows``) and counted.
* Bounded: a sink never holds more than ``max_rows``. To make room the OLDEST rows are dropped,
  counted (``dropped``), and this process warns once per sink.
* Counters (waiting, delivered, dead, dropped) live in the ``sinks`` table and change in the
  same transaction as the rows, so they are exact and cost O(1) to read.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import attrs

from datahub_airflow_listener.transport._sqlite import SqliteFile
from datahub_airflow_listener.transport.base import WireRecord

__all__ = ["DeadLetter", "Outbox", "OutboxRow", "SinkCounts", "new_holder_id"]

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_DEAD_ROWS = 1_000
DEFAULT_LEASE_TTL_SEC = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    urn TEXT NOT NULL,
    aspect_name TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_sink ON outbox (sink, seq);
CREATE TABLE IF NOT EXISTS sinks (
    sink TEXT PRIMARY KEY,
    waiting INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    lease_holder TEXT,
    lease_expires_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq INTEGER PRIMARY KEY,
    sink TEXT NOT NULL,
    urn TEXT NOT NULL,
    aspect_name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    failed_ms INTEGER NOT NULL,
    status INTEGER,
    error TEXT NOT NULL,
    payload TEXT NOT NULL
)
"""

_HOST = socket.gethostname()


def new_holder_id() -> str:
    """A lease holder id: ``host:pid:random``. Call again after a fork."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_is_gone(holder: str) -> bool:
    """True when ``holder`` names a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except OSError as exc:
        return exc.errno == errno.ESRCH
    return False


def _now_ms() -> int:
    return int(time.time() * 1000)


class OutboxRow(NamedTuple):
    """One waiting MCP. A NamedTuple: the sender reads thousands per batch."""

    seq: int
    sink: str
    urn: str
    aspect_name: str
    entity_type: str
    created_ms: int
    payload: str

    def __repr__(self) -> str:
        return f"OutboxRow(seq={self.seq}, sink={self.sink!r}, urn={self.urn!r})"

    @property
    def record(self) -> WireRecord:
        return WireRecord(self.urn, self.aspect_name, self.entity_type, self.payload)


@attrs.frozen(kw_only=True)
class SinkCounts:
    sink: str
    waiting: int = 0
    delivered: int = 0
    dead: int = 0
    dropped: int = 0
    lease_holder: str | None = None


@attrs.frozen(kw_only=True)
class DeadLetter:
    seq: int
    sink: str
    urn: str
    aspect_name: str
    failed_ms: int
    status: int | None
    error: str
    payload: str = attrs.field(repr=False)


_ROW_COLUMNS = "seq, sink, urn, aspect_name, entity_type, created_ms, payload"


class Outbox:
    """See the module docstring. Safe to share between threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_dead_rows: int = DEFAULT_MAX_DEAD_ROWS,
        lease_ttl_sec: float = DEFAULT_LEASE_TTL_SEC,
        busy_timeout_ms: int = 10_000,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.max_rows = max_rows
        self.max_dead_rows = max_dead_rows
        self.lease_ttl_sec = lease_ttl_sec
        self._db = SqliteFile(path, _SCHEMA, busy_timeout_ms=busy_timeout_ms)
        self._warned_full: set[str] = set()

    def __repr__(self) -> str:
        return f"Outbox({str(self._db.path)!r}, max_rows={self.max_rows})"

    @property
    def path(self) -> os.PathLike[str]:
        return self._db.path

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ writing

    def put(
        self, sink: str, records: Sequence[WireRecord], *, created_ms: int | None = None
    ) -> int:
        """Append ``records`` for ``sink`` in one transaction; return how many old rows dropped."""
        if not records:
            return 0
        created = _now_ms() if created_ms is None else created_ms
        with self._db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO sinks (sink) VALUES (?)", (sink,))
            conn.executemany(
                "INSERT INTO outbox (sink, urn, aspect_name, entity_type, created_ms, payload) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(sink, r.urn, r.aspect_name, r.entity_type, created, r.payload) for r in records],
            )
            conn.execute(
                "UPDATE sinks SET waiting = waiting + ? WHERE sink = ?", (len(records), sink)
            )
            (waiting,) = conn.execute(
                "SELECT waiting FROM sinks WHERE sink = ?", (sink,)
            ).fetchone()
            excess = waiting - self.max_rows
            dropped = 0
            if excess > 0:
                dropped = conn.execute(
                    "DELETE FROM outbox WHERE seq IN "
                    "(SELECT seq FROM outbox WHERE sink = ? ORDER BY seq LIMIT ?)",
                    (sink, excess),
                ).rowcount
                conn.execute(
                    "UPDATE sinks SET waiting = waiting - ?, dropped = dropped + ? WHERE sink = ?",
                    (dropped, dropped, sink),
                )
        if dropped and sink not in self._warned_full:
            self._warned_full.add(sink)
            log.warning(
                "DataHub outbox %s is full for %s (max_rows=%d): dropping the oldest events; "
                "later drops are counted, not logged",
                self._db.path,
                sink,
                self.max_rows,
            )
        return dropped

    # ------------------------------------------------------------------ leases and claims

    def _take_lease(self, conn: Any, sink: str, holder: str, ttl_sec: float | None) -> bool:
        conn.execute("INSERT OR IGNORE INTO sinks (sink) VALUES (?)", (sink,))
        current, expires = conn.execute(
            "SELECT lease_holder, lease_expires_ms FROM sinks WHERE sink = ?", (sink,)
        ).fetchone()
        now = _now_ms()
        if current not in (None, holder) and expires > now and not _holder_is_gone(current):
            return False
        ttl = self.lease_ttl_sec if ttl_sec is None else ttl_sec
        conn.execute(
            "UPDATE sinks SET lease_holder = ?, lease_expires_ms = ? WHERE sink = ?",
            (holder, now + int(ttl * 1000), sink),
        )
        return True

    def acquire(self, sink: str, holder: str, *, ttl_sec: float | None = None) -> bool:
        """Take or renew the lease on ``sink``; False while another live holder has it."""
        with self._db.transaction() as conn:
            return self._take_lease(conn, sink, holder, ttl_sec)

    def release(self, sink: str, holder: str) -> None:
        """Give the lease up (only if ``holder`` still has it)."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sinks SET lease_holder = NULL, lease_expires_ms = 0 "
                "WHERE sink = ? AND lease_holder = ?",
                (sink, holder),
            )

    def claim(
        self, sink: str, holder: str, limit: int, *, ttl_sec: float | None = None
    ) -> list[OutboxRow] | None:
        """Renew the lease and return the oldest ``limit`` rows of ``sink`` in seq order.

        None when another live process holds the lease (it is shipping this sink).
        """
        with self._db.transaction() as conn:
            if not self._take_lease(conn, sink, holder, ttl_sec):
                return None
            rows = conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE sink = ? ORDER BY seq LIMIT ?",  # noqa: S608
                (sink, limit),
            ).fetchall()
        return [OutboxRow._make(r) for r in rows]

    def settle(
        self,
        sink: str,
        settled: Sequence[OutboxRow],
        failed: Iterable[tuple[OutboxRow, int | None, str]] = (),
    ) -> int:
        """Remove a settled prefix of a claim; rows in ``failed`` (row, status, error) are
        moved to the dead letters, the others count as delivered. Returns the delivered count.

        ``settled`` must be a prefix of what :meth:`claim` returned to the lease holder: every
        row of ``sink`` in its seq range was claimed (newer rows get higher seqs), so one
        range delete removes exactly those rows.
        """
        dead = list(failed)
        if not settled:
            return 0
        now = _now_ms()
        with self._db.transaction() as conn:
            if dead:
                conn.executemany(
                    "INSERT OR REPLACE INTO dead_letter "
                    "(seq, sink, urn, aspect_name, created_ms, failed_ms, status, error, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.seq, r.sink, r.urn, r.aspect_name, r.created_ms, now, s, e, r.payload)
                        for r, s, e in dead
                    ],
                )
                conn.execute(
                    "DELETE FROM dead_letter WHERE seq NOT IN "
                    "(SELECT seq FROM dead_letter ORDER BY seq DESC LIMIT ?)",
                    (self.max_dead_rows,),
                )
            removed = conn.execute(
                "DELETE FROM outbox WHERE sink = ? AND seq BETWEEN ? AND ?",
                (sink, settled[0].seq, settled[-1].seq),
            ).rowcount
            condemned = min(len(dead), removed)
            delivered = removed - condemned
            conn.execute(
                "UPDATE sinks SET waiting = waiting - ?, delivered = delivered + ?, "
                "dead = dead + ? WHERE sink = ?",
                (removed, delivered, condemned, sink),
            )
        return delivered

    # ------------------------------------------------------------------ reading

    def waiting(self, sink: str | None = None) -> int:
        """Rows waiting for ``sink`` (or for all sinks). O(1): read from the counters."""
        conn = self._db.connection()
        if sink is None:
            row = conn.execute("SELECT COALESCE(SUM(waiting), 0) FROM sinks").fetchone()
        else:
            row = conn.execute("SELECT waiting FROM sinks WHERE sink = ?", (sink,)).fetchone()
        return int(row[0]) if row else 0

    def counts(self, sink: str) -> SinkCounts:
        row = (
            self._db.connection()
            .execute(
                "SELECT waiting, delivered, dead, dropped, lease_holder FROM sinks WHERE sink = ?",
                (sink,),
            )
            .fetchone()
        )
        if row is None:
            return SinkCounts(sink=sink)
        return SinkCounts(
            sink=sink,
            waiting=row[0],
            delivered=row[1],
            dead=row[2],
            dropped=row[3],
            lease_holder=row[4],
        )

    def sinks(self) -> list[str]:
        """Every sink the outbox has seen (including ones this process cannot ship)."""
        rows = self._db.connection().execute("SELECT sink FROM sinks ORDER BY sink").fetchall()
        return [r[0] for r in rows]

    def rows(self, sink: str, *, limit: int = 1000) -> list[OutboxRow]:
        """The oldest waiting rows of ``sink`` (for inspection; takes no lease)."""
        rows = (
            self._db.connection()
            .execute(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE sink = ? ORDER BY seq LIMIT ?",  # noqa: S608
                (sink, limit),
            )
            .fetchall()
        )
        return [OutboxRow._make(r) for r in rows]

    def dead_letters(self, sink: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        """The newest MCPs refused for good, newest first."""
        query = (
            "SELECT seq, sink, urn, aspect_name, failed_ms, status, error, payload FROM dead_letter"
        )
        params: list[Any] = []
        if sink is not None:
            query += " WHERE sink = ?"
            params.append(sink)
        query += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        rows = self._db.connection().execute(query, params).fetchall()
        return [
            DeadLetter(
                seq=r[0],
                sink=r[1],
                urn=r[2],
                aspect_name=r[3],
                failed_ms=r[4],
                status=r[5],
                error=r[6],
                payload=r[7],
            )
            for r in rows
        ]
