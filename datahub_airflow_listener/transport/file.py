"""Delivery to a file in DataHub's file format, safe with many writing processes.

The file is a JSON array of MCPs in file form (``"aspect": {"json": {...}}``), which
``datahub ingest`` with the file source reads and ``datahub check metadata-file`` validates.

Contract:

* After every completed ``emit`` the file is a complete, valid JSON array: an append overwrites
  the closing ``]`` with ``,<new items>]`` in one write.
* Writers in any number of processes serialize on ``fcntl.flock`` of a sidecar ``<file>.lock``
  (the data file itself is truncated and rewritten at its end, so it does not hold the lock).
* Each MCP is one line. If a writer died mid-write, the next writer repairs the tail by cutting
  back to the last complete line (logged once) before appending.
* Readers that want a consistent view use :func:`read_file_form` (shared lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from datahub_airflow_listener.transport._settings import check_keys
from datahub_airflow_listener.transport.base import (
    EmitReport,
    FailedMcp,
    TransportBase,
    WireRecord,
)
from datahub_airflow_listener.transport.errors import (
    DeadlineError,
    PermanentError,
    TransientError,
    TransportError,
)

__all__ = [
    "FileConfig",
    "FileTransport",
    "append_json_array",
    "read_file_form",
    "wire_to_file_form",
]

log = logging.getLogger(__name__)

_TAIL = 65536
_WS = b" \t\r\n"


def wire_to_file_form(wire: Mapping[str, Any]) -> dict[str, Any]:
    """Rest.li envelope -> file form: ``aspect.value`` (a JSON string) becomes ``aspect.json``."""
    out = dict(wire)
    aspect = wire.get("aspect")
    if isinstance(aspect, Mapping) and "value" in aspect:
        out["aspect"] = {"json": json.loads(aspect["value"])}
    return out


@attrs.frozen(kw_only=True)
class FileConfig:
    """Where to write. The Airflow connection puts the path in its host field."""

    filename: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileConfig:
        check_keys(data, {"filename"}, "datahub-file")
        if not data.get("filename"):
            raise ValueError("datahub-file needs a filename")
        return cls(filename=os.path.expanduser(str(data["filename"])))


@contextlib.contextmanager
def _locked(path: Path, mode: int, deadline: float | None) -> Iterator[None]:
    """Hold ``flock(mode)`` on ``<path>.lock``; poll when a deadline bounds the wait."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if deadline is None:
            fcntl.flock(fd, mode)
        else:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise DeadlineError(f"{path} stayed locked by another writer") from None
                    time.sleep(0.002)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _is_blank(f: IO[bytes], end: int) -> bool:
    if end == 0:
        return True
    if end > _TAIL:
        return False
    f.seek(0)
    return not f.read().strip(_WS)


def _closing_bracket(f: IO[bytes], end: int) -> tuple[int, bool] | None:
    """Where the next items go (just after the last element or ``[``) and whether it is empty.

    None when the file does not end in ``]`` (a torn write) or is not a JSON array.
    """
    start = max(0, end - _TAIL)
    f.seek(start)
    tail = f.read().rstrip(_WS)
    if start > 0 and not tail:  # pragma: no cover - 64 KB of trailing blanks
        f.seek(0)
        start, tail = 0, f.read().rstrip(_WS)
    if not tail.endswith(b"]"):
        return None
    before = tail[:-1].rstrip(_WS)
    if not before and start > 0:  # pragma: no cover - element boundary beyond the tail window
        f.seek(0)
        start, before = 0, f.read()[: start + len(tail) - 1].rstrip(_WS)
    return start + len(before), before.endswith(b"[")


def _element_end(line: bytes) -> int | None:
    """Length of ``line`` up to the end of a complete one-line JSON object, else None."""
    content = line.rstrip(_WS).rstrip(b",")
    candidate = content.strip(_WS).lstrip(b",")
    if not candidate.startswith(b"{"):
        return None
    try:
        json.loads(candidate)
    except ValueError:
        return None
    return len(content)


def _repair(f: IO[bytes], path: Path) -> tuple[int, bool]:
    """Cut a torn tail back to the last complete element; return like _closing_bracket.

    Only the layout this module writes (one element per line) is repaired, and only the last
    line may be torn; anything else is refused rather than guessed at.
    """
    f.seek(0)
    data = f.read()
    if not data.lstrip(_WS).startswith(b"["):
        raise TransportError(f"{path} exists but is not a JSON array; refusing to append to it")
    starts: list[tuple[int, bytes]] = []
    position = 0
    for line in data.split(b"\n"):
        if line.strip(_WS):
            starts.append((position, line))
        position += len(line) + 1
    for start, line in reversed(starts[-2:]):
        end = _element_end(line)
        if end is not None:
            log.warning(
                "%s ended in a torn write (a writer died); cut back to the last element", path
            )
            return start + end, False
        if line.strip(_WS) == b"[":
            log.warning(
                "%s ended in a torn write (a writer died); cut back to the last element", path
            )
            return start + line.index(b"[") + 1, True
    raise TransportError(f"{path} is not a JSON array this transport can append to; left as is")


def append_json_array(
    path: str | os.PathLike[str], items: Sequence[str], *, deadline: float | None = None
) -> None:
    """Append serialized JSON values (one line each) to the JSON array in ``path``.

    Creates the file (and its directory) when missing. Safe across processes; see module doc.
    """
    if not items:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = ",\n".join(items).encode("utf-8")
    with _locked(target, fcntl.LOCK_EX, deadline):
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        with os.fdopen(fd, "r+b") as f:
            end = f.seek(0, os.SEEK_END)
            if _is_blank(f, end):
                f.seek(0)
                f.write(b"[")
                place, empty = 1, True
            else:
                found = _closing_bracket(f, end)
                place, empty = found if found is not None else _repair(f, target)
            f.seek(place)
            f.write((b"\n" if empty else b",\n") + body + b"\n]\n")
            f.truncate()


def read_file_form(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read the whole array under a shared lock (consistent even while others append)."""
    target = Path(path)
    with _locked(target, fcntl.LOCK_SH, None), target.open("rb") as f:
        value: list[dict[str, Any]] = json.loads(f.read() or b"[]")
    return value


class FileTransport(TransportBase):
    """Appends each ``emit`` to the configured file as one locked write."""

    def __init__(self, config: FileConfig) -> None:
        self.config = config

    def __repr__(self) -> str:
        return f"FileTransport(filename={self.config.filename!r})"

    def emit_records(
        self, records: Sequence[WireRecord], *, deadline: float | None = None
    ) -> EmitReport:
        lines: list[str] = []
        failed: list[FailedMcp] = []
        for index, record in enumerate(records):
            try:
                lines.append(json.dumps(wire_to_file_form(record.wire()), separators=(",", ":")))
            except (ValueError, TypeError) as exc:
                error = PermanentError(f"not a valid MCP: {exc}")
                log.warning("skipping %s of %s: %s", record.aspect_name, record.urn, error)
                failed.append(
                    FailedMcp(
                        index=index, urn=record.urn, aspect_name=record.aspect_name, error=error
                    )
                )
        try:
            append_json_array(self.config.filename, lines, deadline=deadline)
        except TransportError as exc:
            return EmitReport(attempted=len(records), settled=0, error=exc)
        except OSError as exc:
            io_error = TransientError(f"cannot write {self.config.filename}: {exc}")
            return EmitReport(attempted=len(records), settled=0, error=io_error)
        return EmitReport(attempted=len(records), settled=len(records), failed=tuple(failed))
