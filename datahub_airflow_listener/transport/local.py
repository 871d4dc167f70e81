"""The embedded default destination: every delivered MCP kept in a local SQLite file.

When no DataHub server is configured, events still land somewhere useful: the adapter points
this store at ``$AIRFLOW_HOME/datahub/``; run history can be read back (:meth:`iter_mcps`),
exported to DataHub's file format (:meth:`export_file`) or shipped to a GMS later.

Contract:

* ``<directory>/<filename>`` (default ``local.sqlite``), SQLite in WAL mode, ``0600``, safe for
  many processes.
* Append-only log ordered by ``seq``: (seq, urn, entity_type, aspect_name, timestamp_ms, payload)
  where ``payload`` is the Rest.li envelope as JSON and ``timestamp_ms`` its
  ``systemMetadata.lastObserved`` (the time the event was produced).
* Idempotent: a byte-identical envelope is stored once, so at-least-once redelivery from the
  outbox does not duplicate history, while a later event with the same content (a new
  ``lastObserved``) is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from datahub_airflow_listener.domain.aspects import Status
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.transport._settings import check_keys
from datahub_airflow_listener.transport._sqlite import SqliteFile
from datahub_airflow_listener.transport.base import EmitReport, TransportBase, WireRecord
from datahub_airflow_listener.transport.errors import TransientError
from datahub_airflow_listener.transport.file import wire_to_file_form

__all__ = ["LocalConfig", "LocalStore", "StoredMcp"]

DEFAULT_FILENAME = "local.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mcps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    urn TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    aspect_name TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mcps_by_urn ON mcps (urn, seq);
CREATE INDEX IF NOT EXISTS mcps_by_aspect ON mcps (aspect_name, seq)
"""

_PAGE = 1000
_COLUMNS = "seq, urn, entity_type, aspect_name, timestamp_ms, payload"


@attrs.frozen(kw_only=True)
class LocalConfig:
    """The directory holding the store (created ``0700`` when missing)."""

    directory: str
    filename: str = DEFAULT_FILENAME

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalConfig:
        check_keys(data, {"directory", "filename"}, "local")
        if not data.get("directory"):
            raise ValueError("local needs a directory")
        return cls(
            directory=os.path.expanduser(str(data["directory"])),
            filename=str(data.get("filename") or DEFAULT_FILENAME),
        )


@attrs.frozen(kw_only=True)
class StoredMcp:
    """One stored MCP, in delivery order."""

    seq: int
    urn: str
    entity_type: str
    aspect_name: str
    timestamp_ms: int
    payload: str = attrs.field(repr=False)

    def wire(self) -> dict[str, Any]:
        """The Rest.li envelope (aspect value as a JSON string)."""
        value: dict[str, Any] = json.loads(self.payload)
        return value

    def file_form(self) -> dict[str, Any]:
        """DataHub's file form (aspect inline as ``{"json": ...}``)."""
        return wire_to_file_form(self.wire())

    def aspect(self) -> dict[str, Any]:
        """The aspect itself, parsed."""
        value: dict[str, Any] = json.loads(self.wire()["aspect"]["value"])
        return value


def _observed_ms(payload: str) -> int:
    try:
        observed = json.loads(payload).get("systemMetadata", {}).get("lastObserved")
    except (ValueError, AttributeError):
        observed = None
    return int(observed) if isinstance(observed, int) else int(time.time() * 1000)


class LocalStore(TransportBase):
    """Writes MCPs to the local SQLite store and reads them back."""

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self._db = SqliteFile(Path(config.directory) / config.filename, _SCHEMA)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r})"

    @property
    def path(self) -> Path:
        return self._db.path

    def emit_records(
        self, records: Sequence[WireRecord], *, deadline: float | None = None
    ) -> EmitReport:
        rows = [
            (
                r.urn,
                r.entity_type,
                r.aspect_name,
                _observed_ms(r.payload),
                hashlib.blake2b(r.payload.encode("utf-8"), digest_size=16).hexdigest(),
                r.payload,
            )
            for r in records
        ]
        try:
            with self._db.transaction() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO mcps "
                    "(urn, entity_type, aspect_name, timestamp_ms, digest, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except (sqlite3.Error, OSError) as exc:
            error = TransientError(f"cannot write the local store {self.path}: {exc}")
            return EmitReport(attempted=len(records), settled=0, error=error)
        return EmitReport.all_delivered(len(records))

    # ------------------------------------------------------------------ reading back

    def _where(
        self, urn: str | None, aspect_name: str | None, entity_type: str | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("urn", urn),
            ("aspect_name", aspect_name),
            ("entity_type", entity_type),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return "".join(f" AND {c}" for c in clauses), params

    def iter_mcps(
        self,
        *,
        urn: str | None = None,
        aspect_name: str | None = None,
        entity_type: str | None = None,
        after_seq: int = 0,
    ) -> Iterator[StoredMcp]:
        """Every stored MCP matching the filters, oldest first, read in pages.

        Pages are separate read transactions, so a long iteration never blocks writers; rows
        appended meanwhile appear at the end.
        """
        where, params = self._where(urn, aspect_name, entity_type)
        conn = self._db.connection()
        last = after_seq
        while True:
            # Only fixed column names are interpolated; values are bound parameters.
            query = f"SELECT {_COLUMNS} FROM mcps WHERE seq > ?{where} ORDER BY seq LIMIT {_PAGE}"  # noqa: S608
            rows = conn.execute(query, [last, *params]).fetchall()
            for row in rows:
                yield StoredMcp(
                    seq=row[0],
                    urn=row[1],
                    entity_type=row[2],
                    aspect_name=row[3],
                    timestamp_ms=row[4],
                    payload=row[5],
                )
            if len(rows) < _PAGE:
                return
            last = rows[-1][0]

    def count(
        self,
        *,
        urn: str | None = None,
        aspect_name: str | None = None,
        entity_type: str | None = None,
    ) -> int:
        where, params = self._where(urn, aspect_name, entity_type)
        row = (
            self._db.connection()
            .execute(
                f"SELECT COUNT(*) FROM mcps WHERE 1 = 1{where}",  # noqa: S608  # fixed columns
                params,
            )
            .fetchone()
        )
        return int(row[0])

    def last_seq(self) -> int:
        row = self._db.connection().execute("SELECT COALESCE(MAX(seq), 0) FROM mcps").fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ retention

    def mark_removed(self, urns: Sequence[str]) -> None:
        """Append ``status {"removed": true}`` for each urn (a soft delete, carried by export).

        Raises the store's :class:`TransientError` when it cannot write.
        """
        wire = [
            MetadataChangeProposal(entity_urn=u, aspect=Status(removed=True)).to_wire()
            for u in urns
        ]
        report = self.emit(wire)
        if report.error is not None:
            raise report.error

    def delete_urns(self, urns: Sequence[str]) -> int:
        """Remove every stored MCP of ``urns`` (a hard delete); return how many rows went.

        One write transaction: either every urn's rows go or none do.
        """
        removed = 0
        with self._db.transaction() as conn:
            for urn in urns:
                removed += conn.execute("DELETE FROM mcps WHERE urn = ?", (urn,)).rowcount
        return removed

    def export_file(
        self,
        path: str | os.PathLike[str],
        *,
        urn: str | None = None,
        aspect_name: str | None = None,
        entity_type: str | None = None,
    ) -> int:
        """Write matching MCPs to ``path`` in DataHub's file format; return how many.

        The file is written beside its destination and renamed into place, so a reader never
        sees half an export.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write("[")
                for mcp in self.iter_mcps(
                    urn=urn, aspect_name=aspect_name, entity_type=entity_type
                ):
                    out.write(",\n" if written else "\n")
                    out.write(json.dumps(mcp.file_form(), separators=(",", ":")))
                    written += 1
                out.write("\n]\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return written

    def close(self) -> None:
        self._db.close()
