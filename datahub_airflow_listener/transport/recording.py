"""An in-memory transport: the test seam shipped with the package.

Tests (here and in projects that use this plugin) configure kind ``"recording"`` and then look
at what would have been sent, instead of patching the network. It can also play a failing
destination: ``down`` (every emit fails with a sink-level error) and ``reject_urns`` (those MCPs
are refused for good, like a GMS 422).

``RecordingTransport.named(name)`` returns the most recent instance built with that name, so a
transport created by the sender from a config dict can still be inspected.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from datahub_airflow_listener.transport._settings import check_keys
from datahub_airflow_listener.transport.base import (
    EmitReport,
    FailedMcp,
    TransportBase,
    WireRecord,
)
from datahub_airflow_listener.transport.errors import PermanentError, TransientError

__all__ = ["RecordingConfig", "RecordingTransport"]


@attrs.frozen(kw_only=True)
class RecordingConfig:
    name: str = "recording"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordingConfig:
        check_keys(data, {"name"}, "recording")
        return cls(name=str(data.get("name") or "recording"))


class RecordingTransport(TransportBase):
    """Keeps every delivered MCP in memory, in order. Thread-safe."""

    _instances: ClassVar[dict[str, RecordingTransport]] = {}

    def __init__(self, config: RecordingConfig | None = None) -> None:
        self.config = config or RecordingConfig()
        self.records: list[WireRecord] = []
        self.down = False
        self.reject_urns: set[str] = set()
        self.emit_calls = 0
        self.closed = False
        self._lock = threading.Lock()
        RecordingTransport._instances[self.config.name] = self

    def __repr__(self) -> str:
        return f"RecordingTransport(name={self.config.name!r}, records={len(self.records)})"

    @classmethod
    def named(cls, name: str) -> RecordingTransport:
        return cls._instances[name]

    @property
    def wire_mcps(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.wire() for r in self.records]

    def clear(self) -> None:
        with self._lock:
            self.records.clear()

    def emit_records(
        self, records: Sequence[WireRecord], *, deadline: float | None = None
    ) -> EmitReport:
        with self._lock:
            self.emit_calls += 1
            if self.down:
                error = TransientError("recording transport is down (test)")
                return EmitReport(attempted=len(records), settled=0, error=error)
            failed = []
            for index, record in enumerate(records):
                if record.urn in self.reject_urns:
                    error_p = PermanentError(
                        "rejected by the recording transport (test)", status=422
                    )
                    failed.append(
                        FailedMcp(
                            index=index,
                            urn=record.urn,
                            aspect_name=record.aspect_name,
                            error=error_p,
                        )
                    )
                else:
                    self.records.append(record)
            return EmitReport(attempted=len(records), settled=len(records), failed=tuple(failed))

    def close(self) -> None:
        self.closed = True
