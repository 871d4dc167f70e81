"""The outbox: events waiting for delivery, durable on local disk and shared by processes.

One SQLite file (WAL, ``0600``) that the scheduler and every task process on a machine open at
once. It holds serialized wire-form MCPs per destination ("sink"), in order. The API speaks in
MCPs; on disk a ``put`` is stored as one row per up to ``_BATCH`` MCPs (see ``_encode``): one
row per MCP cost several times more CPU and disk writes per event.

Contract:

* ``put(sink, records)`` appends in one transaction; from then on the events survive the
  process (at-least-once: an MCP is removed only after its destination accepted it, or
  refused it for good).
* Per-sink **lease**: only its holder claims a sink's MCPs, always in order, so one
  run's STARTED can never be delivered after its COMPLETE even with many processes sending.
  A lease expires after ``lease_ttl_sec`` without renewal, or at once when its holder is a
  process on this host that no longer exists (a killed task), so work is never stranded.
* ``settle`` (``ack`` when all were delivered) removes a settled prefix of a claim; MCPs
  refused for good are moved to ``dead_letter`` (kept, newest ``max_dead_rows``) and counted.
* Bounded: a sink never holds more than ``max_rows`` MCPs. To make room the OLDEST are
  dropped, counted (``dropped``), and this process warns once per sink.
* Counters (waiting, delivered, dead, dropped) live in the ``sinks`` table and change in the
  same transaction as the rows, so they are exact and cost O(1) to read.
* **Health** (``sink_health``): the last sender to talk to a destination records whether it
  failed, and whether its last request was slow. Every process of the machine reads it, so a
  process about to exit knows, without a request of its own, when waiting is pointless.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import attrs

from datahub_airflow_listener.domain.clock import now_ms
from datahub_airflow_listener.transport._sqlite import SqliteFile, fork_gate
from datahub_airflow_listener.transport.base import WireRecord

__all__ = ["DeadLetter", "Outbox", "OutboxRow", "SinkCounts", "SinkHealth", "new_holder_id"]

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_DEAD_ROWS = 1_000
DEFAULT_LEASE_TTL_SEC = 60.0

_BATCH = 500  # MCPs per stored row
_CACHED_MCPS = 5_000  # written MCPs kept decoded until settled (see _Written)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_sink ON batches (sink, seq);
CREATE TABLE IF NOT EXISTS sinks (
    sink TEXT PRIMARY KEY,
    waiting INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    lease_holder TEXT,
    lease_expires_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sink_health (
    sink TEXT PRIMARY KEY,
    failing INTEGER NOT NULL DEFAULT 0,
    slow INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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

_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _one_line(payload: str) -> str:
    """``payload`` without raw newlines. Compact JSON never has one; anything else is made so."""
    if "\n" not in payload:
        return payload
    try:
        return _ENCODER.encode(json.loads(payload))
    except ValueError:  # not JSON at all: the destination will refuse it either way
        return payload.replace("\n", " ")


def _encode(records: list[WireRecord]) -> tuple[str, list[WireRecord]]:
    """A batch as text, and the records as that text decodes. The text is a JSON array of
    the routing fields (urn, aspect name, entity type, ...) on the first line, then one
    payload per line, as is.

    Payloads are compact JSON (no raw newline), so they are stored without being escaped again
    and read back by splitting lines: a JSON array of payload strings cost a third of the
    sender's CPU. Rows written as that array (no newline) by earlier versions still decode.
    """
    routing: list[str] = []
    for record in records:
        routing += (record.urn, record.aspect_name, record.entity_type)
    payloads = "\n".join([record.payload for record in records])
    if payloads.count("\n") != len(records) - 1:
        records = [r._replace(payload=_one_line(r.payload)) for r in records]
        payloads = "\n".join([record.payload for record in records])
    return _ENCODER.encode(routing) + "\n" + payloads, records


def _decode(data: str) -> list[WireRecord]:
    head, newline, body = data.partition("\n")
    if not newline:  # the earlier format: one flat array, urn, aspect, type, payload, ...
        flat = json.loads(data)
        return [WireRecord._make(flat[i : i + 4]) for i in range(0, len(flat), 4)]
    routing = json.loads(head)
    return [
        WireRecord(routing[3 * i], routing[3 * i + 1], routing[3 * i + 2], payload)
        for i, payload in enumerate(body.split("\n"))
    ]


_HOST = socket.gethostname()


def new_holder_id() -> str:
    """A lease holder id: ``host:pid:random``. Call again after a fork."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_is_gone(holder: str) -> bool:
    """True when ``holder`` names a process on this host that no longer runs: it does not
    exist, or it exited and its parent has not reaped it yet (a zombie, on Linux)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except OSError as exc:
        return exc.errno == errno.ESRCH
    return _is_zombie(pid_text)


def _is_zombie(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows
            # the last ")".
            return stat.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:  # no /proc (not Linux), or it just went away
        return False


class OutboxRow(NamedTuple):
    """One waiting MCP: at ``position`` in the stored batch ``seq`` (``size`` MCPs when
    claimed). Order is (seq, position). A NamedTuple: the sender handles thousands per claim."""

    seq: int
    position: int
    size: int
    sink: str
    created_ms: int
    record: WireRecord

    def __repr__(self) -> str:
        return (
            f"OutboxRow(seq={self.seq}, position={self.position}, sink={self.sink!r}, "
            f"urn={self.urn!r})"
        )

    @property
    def urn(self) -> str:
        return self.record.urn

    @property
    def aspect_name(self) -> str:
        return self.record.aspect_name

    @property
    def entity_type(self) -> str:
        return self.record.entity_type

    @property
    def payload(self) -> str:
        return self.record.payload


def _rows(sink: str, seq: int, created_ms: int, records: list[WireRecord]) -> list[OutboxRow]:
    size = len(records)
    return [OutboxRow(seq, i, size, sink, created_ms, r) for i, r in enumerate(records)]


class _Written:
    """Batches this process wrote and no one has settled yet, kept decoded (bounded).

    A claim then reads only their sizes from the file. Stored batches never change except by
    losing MCPs at the front (settle, the size bound) and seqs are never reused, so a cached
    batch longer than its stored count is still right: its tail is what is stored.
    """

    def __init__(self, max_mcps: int) -> None:
        self.max_mcps = max_mcps
        self._batches: dict[int, tuple[int, list[WireRecord]]] = {}  # seq -> (created, records)
        self._mcps = 0

    def add(self, seq: int, created_ms: int, records: list[WireRecord]) -> None:
        with fork_gate():  # not a lock of its own: a fork while it is held would copy it held
            self._batches[seq] = (created_ms, records)
            self._mcps += len(records)
            while self._mcps > self.max_mcps and self._batches:  # the oldest go first
                _, evicted = self._batches.pop(next(iter(self._batches)))
                self._mcps -= len(evicted)

    def get(self, seq: int, count: int) -> tuple[int, list[WireRecord]] | None:
        found = self._batches.get(seq)
        if found is None or len(found[1]) < count:
            return None
        created_ms, records = found
        return created_ms, records[len(records) - count :]

    def forget(self, seqs: Iterable[int]) -> None:
        with fork_gate():
            for seq in seqs:
                gone = self._batches.pop(seq, None)
                if gone is not None:
                    self._mcps -= len(gone[1])


@attrs.frozen(kw_only=True)
class SinkHealth:
    """A destination's health as the machine's last sender saw it."""

    failing: bool = False
    slow: bool = False
    error: str | None = None


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
    id: int
    sink: str
    urn: str
    aspect_name: str
    failed_ms: int
    status: int | None
    error: str
    payload: str = attrs.field(repr=False)


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
        self._written = _Written(_CACHED_MCPS)
        self._last_written: dict[str, int] = {}  # sink -> seq of the newest batch put here

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
        """Append ``records`` for ``sink`` in one transaction; return how many old MCPs dropped."""
        if not records:
            return 0
        created = now_ms() if created_ms is None else created_ms
        with self._db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO sinks (sink) VALUES (?)", (sink,))
            written: list[tuple[int, list[WireRecord]]] = []
            for start in range(0, len(records), _BATCH):
                data, chunk = _encode(list(records[start : start + _BATCH]))
                inserted = conn.execute(
                    "INSERT INTO batches (sink, created_ms, count, data) VALUES (?, ?, ?, ?)",
                    (sink, created, len(chunk), data),
                )
                if inserted.lastrowid is not None:  # always, for an INSERT
                    written.append((inserted.lastrowid, chunk))
            conn.execute(
                "UPDATE sinks SET waiting = waiting + ? WHERE sink = ?", (len(records), sink)
            )
            (waiting,) = conn.execute(
                "SELECT waiting FROM sinks WHERE sink = ?", (sink,)
            ).fetchone()
            dropped = self._drop_oldest(conn, sink, waiting - self.max_rows)
        for seq, chunk in written:  # after the commit: only what is really stored
            self._written.add(seq, created, chunk)
        if written:
            self._last_written[sink] = written[-1][0]
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

    def _drop_oldest(self, conn: Any, sink: str, excess: int) -> int:
        """Remove the ``excess`` oldest MCPs of ``sink`` (whole batches, then trim one)."""
        dropped = 0
        while dropped < excess:
            row = conn.execute(
                "SELECT seq, count FROM batches WHERE sink = ? ORDER BY seq LIMIT 1", (sink,)
            ).fetchone()
            if row is None:
                break
            seq, count = row
            dropped += self._remove_front(conn, seq, count, excess - dropped)
        if dropped:
            conn.execute(
                "UPDATE sinks SET waiting = waiting - ?, dropped = dropped + ? WHERE sink = ?",
                (dropped, dropped, sink),
            )
        return dropped

    @staticmethod
    def _remove_front(conn: Any, seq: int, count: int, how_many: int) -> int:
        """Remove the first ``how_many`` MCPs of batch ``seq`` (``count`` long); return removed."""
        if how_many >= count:
            conn.execute("DELETE FROM batches WHERE seq = ?", (seq,))
            return count
        (data,) = conn.execute("SELECT data FROM batches WHERE seq = ?", (seq,)).fetchone()
        data, rest = _encode(_decode(data)[how_many:])
        conn.execute("UPDATE batches SET data = ?, count = ? WHERE seq = ?", (data, len(rest), seq))
        return how_many

    # ------------------------------------------------------------------ leases and claims

    def _take_lease(self, conn: Any, sink: str, holder: str, ttl_sec: float | None) -> bool:
        conn.execute("INSERT OR IGNORE INTO sinks (sink) VALUES (?)", (sink,))
        current, expires = conn.execute(
            "SELECT lease_holder, lease_expires_ms FROM sinks WHERE sink = ?", (sink,)
        ).fetchone()
        now = now_ms()
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
        """Renew the lease and return the oldest waiting MCPs of ``sink`` in order: whole
        stored batches, at least ``limit`` MCPs when that many wait.

        None when another live process holds the lease (it is shipping this sink).
        """
        with self._db.transaction() as conn:
            if not self._take_lease(conn, sink, holder, ttl_sec):
                return None
            return self._oldest(conn, sink, limit)

    def _oldest(self, conn: Any, sink: str, limit: int) -> list[OutboxRow]:
        """The oldest whole batches of ``sink`` holding at least ``limit`` MCPs (or all).

        Batch sizes are read first (index and row headers only); then only the batches needed,
        and of those only the ones this process did not write itself (see ``_Written``).
        Reading every waiting batch's data for each claim made draining a backlog quadratic.
        """
        wanted: list[tuple[int, int]] = []  # (seq, count)
        total = 0
        last = -1
        while total < limit:
            sizes = conn.execute(
                "SELECT seq, count FROM batches WHERE sink = ? AND seq > ? ORDER BY seq LIMIT 64",
                (sink, last),
            ).fetchall()
            for seq, count in sizes:
                wanted.append((seq, count))
                total += count
                if total >= limit:
                    break
            if len(sizes) < 64:
                break
            last = sizes[-1][0]
        batches: dict[int, tuple[int, list[WireRecord]]] = {}
        missing: list[int] = []
        for seq, count in wanted:
            hit = self._written.get(seq, count)
            if hit is None:
                missing.append(seq)
            else:
                batches[seq] = hit
        for start in range(0, len(missing), 64):
            part = missing[start : start + 64]
            marks = ",".join("?" * len(part))
            found = conn.execute(
                f"SELECT seq, created_ms, data FROM batches WHERE seq IN ({marks})",  # noqa: S608  # placeholders only
                part,
            ).fetchall()
            for seq, created_ms, data in found:
                batches[seq] = (created_ms, _decode(data))
        rows: list[OutboxRow] = []
        for seq, _ in wanted:
            if seq in batches:
                rows.extend(_rows(sink, seq, *batches[seq]))
        return rows

    def settle(
        self,
        sink: str,
        settled: Sequence[OutboxRow],
        failed: Iterable[tuple[OutboxRow, int | None, str]] = (),
    ) -> int:
        """Remove a settled prefix of a claim; rows in ``failed`` (row, status, error) are
        moved to the dead letters, the others count as delivered. Returns the delivered count.

        ``settled`` must be a prefix of what :meth:`claim` returned to the lease holder. A
        batch settled only in part keeps its unsettled tail; a batch that the size bound
        trimmed meanwhile is accounted for (only its surviving MCPs are removed).
        """
        if not settled:
            return 0
        dead = list(failed)
        per_batch: dict[int, tuple[int, int]] = {}  # seq -> (settled in it, size when claimed)
        for row in settled:
            done, _ = per_batch.get(row.seq, (0, row.size))
            per_batch[row.seq] = (done + 1, row.size)
        now = now_ms()
        with self._db.transaction() as conn:
            if dead:
                conn.executemany(
                    "INSERT INTO dead_letter "
                    "(sink, urn, aspect_name, created_ms, failed_ms, status, error, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.sink, r.urn, r.aspect_name, r.created_ms, now, s, e, r.payload)
                        for r, s, e in dead
                    ],
                )
                conn.execute(
                    "DELETE FROM dead_letter WHERE id NOT IN "
                    "(SELECT id FROM dead_letter ORDER BY id DESC LIMIT ?)",
                    (self.max_dead_rows,),
                )
            removed = 0
            for seq, (done, size) in per_batch.items():
                row = conn.execute(
                    "SELECT count FROM batches WHERE seq = ? AND sink = ?", (seq, sink)
                ).fetchone()
                if row is None:  # dropped by the size bound meanwhile
                    continue
                current = row[0]
                skip = done - (size - current)  # the bound may have trimmed its front
                if skip > 0:
                    removed += self._remove_front(conn, seq, current, skip)
            condemned = min(len(dead), removed)
            delivered = removed - condemned
            conn.execute(
                "UPDATE sinks SET waiting = waiting - ?, delivered = delivered + ?, "
                "dead = dead + ? WHERE sink = ?",
                (removed, delivered, condemned, sink),
            )
        self._written.forget(seq for seq, (done, size) in per_batch.items() if done >= size)
        return delivered

    def ack(self, sink: str, rows: Sequence[OutboxRow]) -> int:
        """``settle`` for a prefix that was entirely delivered."""
        return self.settle(sink, rows)

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (cheap when idle; errors are ignored)."""
        try:
            self._db.checkpoint()
        except sqlite3.Error as exc:
            log.debug("outbox checkpoint skipped: %s", exc)

    def forget_process_state(self) -> None:
        """In a forked child: what the parent wrote is not the child's (see ``waiting_mine``)."""
        self._written = _Written(_CACHED_MCPS)
        self._last_written = {}

    # ------------------------------------------------------------------ health

    def record_health(
        self, sink: str, *, failing: bool, slow: bool = False, error: str | None = None
    ) -> None:
        """What the last request to ``sink`` showed (any process; the newest wins)."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO sink_health (sink, failing, slow, updated_ms, error) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sink) DO UPDATE SET "
                "failing = excluded.failing, slow = excluded.slow, "
                "updated_ms = excluded.updated_ms, error = excluded.error",
                (sink, int(failing), int(slow), now_ms(), error),
            )

    def health(self, sink: str, *, max_age_sec: float) -> SinkHealth:
        """The last recorded health of ``sink``; unknown (healthy) when older than
        ``max_age_sec`` or never recorded."""
        row = (
            self._db.connection()
            .execute(
                "SELECT failing, slow, updated_ms, error FROM sink_health WHERE sink = ?", (sink,)
            )
            .fetchone()
        )
        if row is None or now_ms() - int(row[2]) > max_age_sec * 1000:
            return SinkHealth()
        return SinkHealth(failing=bool(row[0]), slow=bool(row[1]), error=row[3])

    # ------------------------------------------------------------------ reading

    def waiting_mine(self, sink: str) -> int:
        """MCPs of ``sink`` still waiting that this process put, or that were put before them
        (they go first): what stands between this process's events and their destination."""
        last = self._last_written.get(sink)
        if last is None:
            return 0
        row = (
            self._db.connection()
            .execute(
                "SELECT COALESCE(SUM(count), 0) FROM batches WHERE sink = ? AND seq <= ?",
                (sink, last),
            )
            .fetchone()
        )
        return int(row[0])

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
        """The oldest waiting MCPs of ``sink`` (for inspection; takes no lease)."""
        return self._oldest(self._db.connection(), sink, limit)[:limit]

    def dead_letters(self, sink: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        """The newest MCPs refused for good, newest first."""
        query = (
            "SELECT id, sink, urn, aspect_name, failed_ms, status, error, payload FROM dead_letter"
        )
        params: list[Any] = []
        if sink is not None:
            query += " WHERE sink = ?"
            params.append(sink)
        query += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = self._db.connection().execute(query, params).fetchall()
        return [
            DeadLetter(
                id=r[0],
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
