"""Delivery of MCPs: transports, the durable outbox and the per-process sender.

Modules, one responsibility each:

* ``base``       -- the Transport interface, :class:`EmitReport`, the kind registry
* ``errors``     -- the error classes and :func:`redact`
* ``retry``      -- backoff with jitter, ``Retry-After``
* ``http``       -- the session and the status-to-error table every GMS client shares
* ``rest``       -- DataHub GMS over Rest.li (``datahub-rest``)
* ``gms_read``   -- reading run history back from a GMS, and deleting it (retention)
* ``file``       -- DataHub's file format, many writers (``datahub-file``)
* ``local``      -- the embedded SQLite store (``local``), readable later
* ``recording``  -- in-memory test seam (``recording``)
* ``outbox``     -- the shared on-disk queue (SQLite WAL)
* ``dispatcher`` -- the non-blocking sender used by the listener

Never imports Airflow. ``requests`` is imported only when the REST transport is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from datahub_airflow_listener.transport.base import (
    EmitReport,
    FailedMcp,
    McpLike,
    Transport,
    TransportBase,
    TransportFactory,
    WireRecord,
    create_transport,
    get_transport_kind,
    register_transport,
    transport_factory,
    transport_kinds,
)
from datahub_airflow_listener.transport.dispatcher import (
    DeliveryCounts,
    Dispatcher,
    DispatcherConfig,
    FlushReport,
    build_dispatcher,
)
from datahub_airflow_listener.transport.errors import (
    AuthError,
    DeadlineError,
    NotGmsError,
    PermanentError,
    TransientError,
    TransportError,
)
from datahub_airflow_listener.transport.outbox import Outbox

_LAZY = {
    "RestConfig": "rest",
    "RestTransport": "rest",
    "FileConfig": "file",
    "FileTransport": "file",
    "LocalConfig": "local",
    "LocalStore": "local",
    "RecordingConfig": "recording",
    "RecordingTransport": "recording",
}

__all__ = [
    "AuthError",
    "DeadlineError",
    "DeliveryCounts",
    "Dispatcher",
    "DispatcherConfig",
    "EmitReport",
    "FailedMcp",
    "FileConfig",
    "FileTransport",
    "FlushReport",
    "LocalConfig",
    "LocalStore",
    "McpLike",
    "NotGmsError",
    "Outbox",
    "PermanentError",
    "RecordingConfig",
    "RecordingTransport",
    "RestConfig",
    "RestTransport",
    "TransientError",
    "Transport",
    "TransportBase",
    "TransportError",
    "TransportFactory",
    "WireRecord",
    "build_dispatcher",
    "create_transport",
    "get_transport_kind",
    "register_transport",
    "transport_factory",
    "transport_kinds",
]


def __getattr__(name: str) -> Any:
    """Import the concrete transports on first use (``requests`` costs ~100 ms to import)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
