"""What DAG code emits itself (the emitter operator, the hooks' ``emit``), to one connection.

:class:`ConnectionEmitter` is the ``make_emitter()`` of this package's hooks: it takes this
package's MCPs and, duck-typed, acryl-datahub's (anything with ``to_obj()``, MetadataChange
Events; see :mod:`..domain.foreign`), and sends them the way the listener sends its own:

* the connection is resolved like ``[datahub] conn_id`` (``datahub-rest`` with the same
  extras and the ``[datahub] token`` fallback, ``datahub-file``; an unconfigured
  ``datahub_rest_default`` means the local store, the embedded default);
* the MCPs go into the machine's outbox under the connection's sink (``conn:<id>``), then are
  delivered with the transport's retries and backoff, waiting at most ``timeout_sec``.

``emit_mcps`` returns when everything is delivered. It raises :class:`EmitError` when DataHub
refused an MCP for good (the first refusal is in the message), or when the deadline passed
with MCPs still waiting and no Airflow process would deliver them later: a connection that is
also one of ``[datahub] conn_id`` gets them delivered by the scheduler's sender, so there the
task only logs a warning. An MCP that is not one (a typo in ``mces``) raises before anything
is sent.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import attrs

from datahub_airflow_listener.adapter.config import DEFAULT_CONN_ID, DatahubConfig, get_config

log = logging.getLogger(__name__)

__all__ = ["ConnectionEmitter", "EmitError", "describe_mcp"]

DEFAULT_TIMEOUT_SEC: Final = 30.0


class EmitError(RuntimeError):
    """MCPs a task emitted were refused by DataHub, or could not be delivered in time."""


def describe_mcp(mcp: Any) -> str:
    """One log line's worth of an MCP: aspect, urn and the aspect's JSON (``debug_emitter``)."""
    try:
        from datahub_airflow_listener.domain.encode import aspect_to_json, dumps

        aspect = getattr(mcp, "aspect", None)
        body = dumps(aspect) if isinstance(aspect, dict) else aspect_to_json(aspect)
    except Exception:
        body = "?"
    return f"{getattr(mcp, 'aspect_name', '?')} on {getattr(mcp, 'entity_urn', '?')}: {body}"


class ConnectionEmitter:
    """Sends MCPs to the Airflow connection ``conn_id`` through the outbox (see module doc).

    Mirrors the methods DAG code calls on the official plugin's emitters: ``emit(item,
    callback)``, ``emit_mcps(items)``, ``emit_mces(items)``, ``flush()``, ``close()``.
    """

    def __init__(
        self,
        conn_id: str,
        *,
        timeout_sec: float = DEFAULT_TIMEOUT_SEC,
        config: DatahubConfig | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.timeout_sec = timeout_sec
        self._config = config
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ConnectionEmitter(conn_id={self.conn_id!r})"

    def emit(
        self, item: Any, callback: Callable[[Exception | None, str], None] | None = None
    ) -> None:
        """Send one MCP (or MetadataChangeEvent); ``callback(None, "success")`` once delivered,
        ``callback(error, message)`` before raising."""
        try:
            self.emit_mcps([item])
        except Exception as exc:
            if callable(callback):
                callback(exc, str(exc))
            raise
        if callable(callback):
            callback(None, "success")

    def emit_mcps(self, items: Iterable[Any]) -> int:
        """Send MCPs in order; returns how many were delivered (see the module docstring)."""
        from datahub_airflow_listener.domain.foreign import proposals_of

        proposals = [p for item in items for p in proposals_of(item)]
        if not proposals:
            return 0
        with self._lock:
            return self._deliver(proposals)

    emit_mces = emit_mcps

    def flush(self) -> None:
        """Nothing is held back: every emit returns once delivered (or raises)."""

    def close(self) -> None:
        """Nothing to close: each emit opens and closes its own sender."""

    def _deliver(self, proposals: Sequence[Any]) -> int:
        from datahub_airflow_listener.adapter.runtime import (
            OUTBOX_FILENAME,
            resolve_sink,
            sink_name,
        )
        from datahub_airflow_listener.transport import (
            DispatcherConfig,
            build_dispatcher,
            create_transport,
        )

        config = self._config or get_config()
        if config.debug_emitter:
            for mcp in proposals:
                log.info("datahub-airflow-listener: emit %s", describe_mcp(mcp))
        # An explicitly named connection that does not exist deserves a warning; only the
        # default id, never configured, quietly means the local store (as for the listener).
        explicit = config.conn_id_explicit or self.conn_id != DEFAULT_CONN_ID
        kind, settings = resolve_sink(attrs.evolve(config, conn_id_explicit=explicit), self.conn_id)
        sink = sink_name(self.conn_id)
        os.makedirs(config.outbox_path, mode=0o700, exist_ok=True)
        dispatcher = build_dispatcher(
            [(sink, lambda: create_transport(kind, settings))],
            os.path.join(config.outbox_path, OUTBOX_FILENAME),
            max_rows=config.outbox_max_rows,
            config=DispatcherConfig(flush_timeout_sec=self.timeout_sec, register_atexit=False),
        )
        try:
            dispatcher.submit(proposals)
            report = dispatcher.flush(self.timeout_sec)
            left = dispatcher.outbox.waiting_mine(sink)
            if report.failed:
                raise EmitError(self._refused(dispatcher, sink, report.failed))
        finally:
            dispatcher.close(0.0)
        if left:
            where = f"connection {self.conn_id!r} ({kind})"
            if self.conn_id in config.conn_ids:
                log.warning(
                    "datahub-airflow-listener: %d MCP(s) for %s not delivered within %.0f s; "
                    "they wait in the outbox %s and the scheduler's sender delivers them",
                    left,
                    where,
                    self.timeout_sec,
                    config.outbox_path,
                )
            else:
                raise EmitError(
                    f"{left} MCP(s) for {where} not delivered within {self.timeout_sec:.0f} s "
                    f"(kept in the outbox {config.outbox_path}; `datahub-airflow-listener "
                    "flush` or the next try delivers them); see the warnings above"
                )
        return report.delivered

    def _refused(self, dispatcher: Any, sink: str, count: int) -> str:
        detail = ""
        try:
            letters = dispatcher.outbox.dead_letters(sink, limit=1)
            if letters:
                first = letters[0]
                detail = f"; latest: {first.aspect_name} on {first.urn}: {first.error}"
        except Exception:
            log.debug("dead letters not read", exc_info=True)
        return f"DataHub refused {count} MCP(s) sent to connection {self.conn_id!r}{detail}"
