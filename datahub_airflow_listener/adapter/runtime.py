"""Per-process wiring: config -> RunMapper, connections -> sinks -> Dispatcher.

Built on the first hook call that needs it, so importing the plugin imports neither the
transport, requests nor sqlite3.

Sinks: one per ``[datahub] conn_id``, named ``conn:<conn_id>``. The name is the sink's
identity in the outbox shared by every process of the machine, so it depends on nothing but
the configuration: rows a task process could not deliver are shipped later by any process
with the same ``conn_id`` (the scheduler, the next task). Each sink's transport is built by
a factory the dispatcher calls on its background thread: the connection's type picks the
transport (``datahub-rest`` / ``datahub-file``); a connection that does not exist, or cannot
become a transport, sends that sink's events to the local store under ``outbox_path``
(nothing is lost; the CLI can export or ship them later). Any other failure (the API server
or the metadata DB unreachable) makes the factory raise, and the dispatcher retries with
backoff while the events wait in the outbox.

Where connections are resolved (evidence in :func:`.compat.get_connection`):

* in a task-SDK process (Airflow 3 task runner, ``airflow dags test`` while a task runs) on
  the hook's own thread, in ``on_starting`` or else the first hook (retried at most every
  30 s if it failed): the supervisor channel is not safe to use from a second thread on
  Airflow 3.0/3.1, nor in ``dags test`` on any 3.x;
* everywhere else (scheduler, API server, DAG processor, all of Airflow 2) on the
  dispatcher's background thread: the metadata-DB secrets backend commits and closes the
  thread's scoped session, which on the hook's thread is Airflow's own (HA locks), while the
  background thread has a session of its own. This also keeps DB and secrets-backend I/O off
  the hook's thread.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import attrs

from datahub_airflow_listener.adapter import compat
from datahub_airflow_listener.adapter.config import DatahubConfig, get_config
from datahub_airflow_listener.domain.extras import with_instance_platform
from datahub_airflow_listener.domain.runs import RunMapper

log = logging.getLogger(__name__)

__all__ = [
    "Dispatcher",
    "Runtime",
    "SinkSpec",
    "get_runtime",
    "reset_runtime",
    "resolve_sink",
    "sink_name",
]

OUTBOX_FILENAME: Final = "outbox.sqlite"
_SDK_RETRY_SEC: Final = 30.0

# (kind, settings) for the transport registry.
SinkSpec = tuple[str, dict[str, Any]]


class Dispatcher(Protocol):
    """What the runtime needs from the transport's dispatcher."""

    def submit(self, mcps: Sequence[Any]) -> None: ...

    def flush(self, timeout: float, *, only_own: bool = False) -> Any: ...

    short_lived: bool


def sink_name(conn_id: str) -> str:
    """The sink's identity in the shared outbox (never contains a secret)."""
    return f"conn:{conn_id}"


def local_sink(config: DatahubConfig) -> SinkSpec:
    """The embedded default: the local store under ``outbox_path``."""
    return "local", {"directory": config.outbox_path}


def resolve_sink(config: DatahubConfig, conn_id: str) -> SinkSpec:
    """``(kind, settings)`` for one configured connection.

    A missing connection, or one that cannot become a transport, falls back to the local
    store (one warning, except for the default id when it was never configured: no DataHub
    yet is a normal start). Anything else raises, so the caller can retry later.
    """
    from datahub_airflow_listener.adapter.hooks import (
        ConnectionConfigError,
        redacted,
        transport_config_for,
    )

    try:
        fields = compat.get_connection(conn_id)
    except compat.ConnectionNotFound:
        if config.conn_id_explicit:
            log.warning(
                "datahub-airflow-listener: connection %r ([datahub] conn_id) not found; "
                "its events go to the local store in %s",
                conn_id,
                config.outbox_path,
            )
        else:
            log.info(
                "datahub-airflow-listener: no connection %r; events go to the local store in %s",
                conn_id,
                config.outbox_path,
            )
        return local_sink(config)
    try:
        kind, settings = transport_config_for(fields, config.token)
    except ConnectionConfigError as exc:
        log.warning(
            "datahub-airflow-listener: connection %r unusable (%s); its events go to the "
            "local store in %s",
            conn_id,
            exc,
            config.outbox_path,
        )
        return local_sink(config)
    log.info("datahub-airflow-listener: connection %r -> %s %s", conn_id, kind, redacted(settings))
    return kind, settings


# Imported by on_starting (see Runtime.preload); the first hooks of a task process need them.
_PRELOADED: Final = (
    "datahub_airflow_listener.transport.dispatcher",
    "datahub_airflow_listener.adapter.templates",
)

# The dispatcher factory: (named sink factories, config) -> Dispatcher. Replaceable for tests.
SinkFactories = list[tuple[str, Callable[[], Any]]]
DispatcherFactory = Callable[[SinkFactories, DatahubConfig], Dispatcher]


def _transport_dispatcher(sinks: SinkFactories, config: DatahubConfig) -> Dispatcher:
    from datahub_airflow_listener.transport import DispatcherConfig, build_dispatcher

    try:  # once per process; owner-only, like the files the transport puts there
        os.makedirs(config.outbox_path, mode=0o700, exist_ok=True)
    except OSError as exc:
        log.warning(
            "datahub-airflow-listener: cannot create %s (%s); events stay in memory",
            config.outbox_path,
            exc,
        )
    return build_dispatcher(
        sinks,
        os.path.join(config.outbox_path, OUTBOX_FILENAME),
        max_rows=config.outbox_max_rows,
        config=DispatcherConfig(
            flush_timeout_sec=config.flush_timeout_sec,
            exit_wait_sec=config.exit_wait_ms / 1000.0,
        ),
    )


_dispatcher_factory: DispatcherFactory = _transport_dispatcher


@attrs.define(kw_only=True)
class Runtime:
    """Everything a hook needs in this process, built once."""

    config: DatahubConfig
    mapper: RunMapper
    base_url: str | None
    _dispatcher: Dispatcher | None = None
    # conn_id -> (kind, settings), filled on the hook's thread in a task-SDK process.
    _resolved: dict[str, SinkSpec] = attrs.field(factory=dict)
    _sdk_retry_at: float = 0.0
    _short_lived: bool = False
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def preload(self) -> None:
        """Import the sender, the task-end lineage code and the REST transport (``requests``)
        now, after :meth:`prepare`.

        Called from ``on_starting``, which the scheduler runs before its executor forks the
        workers that fork task processes: they then inherit these modules instead of importing
        them on their first hooks (~90 ms per task process measured with Airflow 3.3). A task
        SDK process knows its connections by now and imports ``requests`` only for a
        ``datahub-rest`` one; elsewhere connections are resolved later, on the sender's thread.
        """
        for module in _PRELOADED:
            importlib.import_module(module)
        if compat.in_task_sdk_process() and all(
            kind != "datahub-rest" for kind, _ in self._resolved.values()
        ):
            return
        importlib.import_module("datahub_airflow_listener.transport.rest")

    def prepare(self) -> None:
        """In a task-SDK process, resolve the connections now, on this (the hook's) thread."""
        if not compat.in_task_sdk_process():
            return
        missing = [c for c in self.config.conn_ids if c not in self._resolved]
        if not missing or time.monotonic() < self._sdk_retry_at:
            return
        for conn_id in missing:
            try:
                self._resolved[conn_id] = resolve_sink(self.config, conn_id)
            except Exception as exc:
                self._sdk_retry_at = time.monotonic() + _SDK_RETRY_SEC
                log.warning(
                    "datahub-airflow-listener: connection %r not resolved yet (%s: %s); "
                    "its events wait in the outbox",
                    conn_id,
                    type(exc).__name__,
                    exc,
                )

    def submit(self, mcps: Sequence[Any]) -> None:
        """Hand MCPs to the sender, with the process instances' ``dataPlatformInstance`` when
        ``[datahub] platform_instance`` is set (:func:`~..domain.extras.with_instance_platform`),
        each logged first with ``debug_emitter``."""
        if mcps:
            mcps = with_instance_platform(mcps, self.config.platform_instance)
            if self.config.debug_emitter:
                from datahub_airflow_listener.adapter.emitter import describe_mcp

                for mcp in mcps:
                    log.info("datahub-airflow-listener: emit %s", describe_mcp(mcp))
            dispatcher = self.dispatcher()
            if len(self._resolved) < len(self.config.conn_ids):
                self.prepare()
            dispatcher.submit(mcps)

    def flush(self) -> Any:
        """The flush of a process about to stop (``before_stopping``): this process's events
        made durable, then at most ``exit_wait_ms`` of waiting for their delivery; no-op if
        nothing was ever submitted."""
        dispatcher = self._dispatcher
        if dispatcher is None:
            return None
        return dispatcher.flush(self.config.exit_wait_ms / 1000.0, only_own=True)

    def short_lived(self) -> None:
        """This process runs one task try and exits: its sender leaves a failing or slow
        destination to the long-lived processes (see the dispatcher)."""
        self._short_lived = True
        if self._dispatcher is not None:
            self._dispatcher.short_lived = True

    def dispatcher(self) -> Dispatcher:
        dispatcher = self._dispatcher
        if dispatcher is not None:
            return dispatcher
        with self._lock:
            if self._dispatcher is None:
                self.prepare()
                sinks = [(sink_name(c), self._sink_factory(c)) for c in self.config.conn_ids]
                self._dispatcher = _dispatcher_factory(sinks, self.config)
                if self._short_lived:
                    self._dispatcher.short_lived = True
            return self._dispatcher

    def _sink_factory(self, conn_id: str) -> Callable[[], Any]:
        def build() -> Any:
            """Called by the dispatcher on its background thread."""
            spec = self._resolved.get(conn_id)
            if spec is None:
                if compat.in_task_sdk_process():
                    # Only the hook's thread may ask the supervisor (see module docstring).
                    raise RuntimeError(f"connection {conn_id!r} is not resolved yet")
                spec = resolve_sink(self.config, conn_id)
            from datahub_airflow_listener.transport import create_transport

            kind, settings = spec
            return create_transport(kind, settings)

        return build


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime(*, create: bool = True) -> Runtime | None:
    """The process's runtime; built on first use (None if ``create`` is False and none yet)."""
    global _runtime  # noqa: PLW0603 -- one runtime per process, by design
    runtime = _runtime
    if runtime is not None or not create:
        return runtime
    with _runtime_lock:
        if _runtime is None:
            config = get_config()
            _runtime = Runtime(
                config=config,
                mapper=RunMapper(
                    cluster=config.cluster, platform_instance=config.platform_instance
                ),
                base_url=compat.web_base_url(),
            )
        return _runtime


def reset_runtime(*, dispatcher_factory: DispatcherFactory | None = None) -> None:
    """Forget the runtime (tests, a config change) and set the dispatcher factory.

    ``dispatcher_factory`` None restores the transport's dispatcher; tests pass one that
    builds a recording dispatcher.
    """
    global _runtime, _dispatcher_factory  # noqa: PLW0603 -- process-wide, by design
    with _runtime_lock:
        _runtime = None
        _dispatcher_factory = dispatcher_factory or _transport_dispatcher
