"""The sender: one per process, between Airflow's hook threads and the destinations.

How an event travels::

    hook thread          spooler thread                     shipper thread
    -----------          --------------                     --------------
    submit(mcps) ---->   deque -> to_wire -> Outbox.put ->  per sink: lease, claim in seq
      (append + wake)    (durable, one row per sink)          order, emit, settle; backoff
                                                              per sink while it fails

Contract:

* ``submit(mcps)`` runs on Airflow's hook thread: it appends to an in-memory deque and wakes
  the spooler. No serialization, no I/O, no lock the sender holds: it costs microseconds
  whatever the destination does, and it never raises.
* The spooler (a daemon thread started on the first submit) writes what was submitted to the
  :class:`~.outbox.Outbox` as soon as it wakes: events are on disk within milliseconds, even
  while the shipper sits in a slow request.
* The shipper (a second daemon thread) delivers each sink from the outbox in batches. A
  failing sink backs off (exponential, jittered) without delaying the others. Every
  ``poll_interval_sec`` it also looks for rows that other processes left behind.
* Sinks are created lazily from factories, on the shipper (or in ``flush``), never in
  ``submit``: resolving an Airflow connection may take a while.
* ``flush(timeout)`` first moves everything still in memory to the outbox (fast, always), then
  delivers until the deadline (a request started before it runs to the transport's timeout).
  An exiting process (``before_stopping``, or the ``atexit`` handler if that did not run)
  flushes ``only_own`` once: its events become durable, then it waits at most
  ``exit_wait_sec`` (40 ms) for the shipper thread to deliver them, and not at all when the
  machine's last sender found the destination failing or slow (``Outbox.health``); then it
  hands the sink's lease back. What is not delivered stays in the outbox for the next process
  that runs a sender, or for ``flush`` from the command line.
* A short-lived process (a task process, ``short_lived``) starts no request to a destination
  known to be failing or slow, so it never exits in the middle of one: a slow DataHub is not
  sent the same batch again by each task that ends.
* Fork-safe: the child of a fork gets a fresh queue, fresh locks, a new lease identity and no
  threads; it starts its own on its first submit. The parent's pending events stay the
  parent's. The exit flush runs only in a process that submitted something.
* Each emit is bounded to 80% of the lease lifetime, so a lease never expires under a request
  still in flight, which is what keeps one run's events in order across processes.

Building one::

    dispatcher = build_dispatcher(
        [("conn:datahub_rest_default", transport_factory("datahub-rest", settings))],
        Path(airflow_home) / "datahub" / "outbox.sqlite",
        config=DispatcherConfig(flush_timeout_sec=2.0),
    )
    dispatcher.submit(mcps)          # in the hook
    dispatcher.flush(only_own=True)  # in before_stopping

A sink's name is its identity in the shared outbox: every process that configures the same
destination must use the same name (and no secret may be part of it).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from datahub_airflow_listener.transport.base import (
    EmitReport,
    McpLike,
    Transport,
    TransportFactory,
    WireRecord,
)
from datahub_airflow_listener.transport.outbox import (
    DEFAULT_LEASE_TTL_SEC,
    DEFAULT_MAX_ROWS,
    Outbox,
    OutboxRow,
    new_holder_id,
)
from datahub_airflow_listener.transport.retry import BackoffPolicy

__all__ = [
    "DeliveryCounts",
    "Dispatcher",
    "DispatcherConfig",
    "FlushReport",
    "build_dispatcher",
]

log = logging.getLogger(__name__)

_SPOOL_CHUNK = 500  # MCPs per outbox transaction
_SPOOL_PAUSE_SEC = 0.0002  # between chunks: lets waiting threads take the GIL
_CHECKPOINT_EVERY_SEC = 30.0


@attrs.frozen(kw_only=True)
class DispatcherConfig:
    """Tuning of the sender. Defaults suit an Airflow deployment; tests shrink the times."""

    flush_timeout_sec: float = 2.0  # default for flush()
    exit_wait_sec: float = 0.04  # an exiting process waits at most this for its own events
    slow_request_sec: float = 1.0  # a request slower than this marks its destination slow
    health_max_age_sec: float = 300.0  # a recorded health older than this is forgotten
    short_lived: bool = False  # a task process: leaves a failing or slow destination alone
    batch_rows: int = 1000  # MCPs claimed per emit (at least: whole stored batches)
    poll_interval_sec: float = 5.0  # how often to look for rows other processes left
    sink_backoff: BackoffPolicy = attrs.field(factory=lambda: BackoffPolicy(base=1.0, cap=60.0))
    max_queue: int = 100_000  # submissions held in memory before dropping the oldest
    lease_ttl_sec: float = DEFAULT_LEASE_TTL_SEC
    run_id: str | None = None  # systemMetadata.runId of what this process sends
    register_atexit: bool = True


@attrs.frozen(kw_only=True)
class DeliveryCounts:
    """What this process's sender did, plus what waits in the outbox for its sinks.

    ``delivered``, ``failed`` (refused for good, or not serializable) and ``dropped`` (memory
    or outbox full) count this process's work; ``waiting`` is the outbox backlog of its sinks
    (including rows other processes put there) plus what is still in memory.
    """

    delivered: int = 0
    failed: int = 0
    waiting: int = 0
    dropped: int = 0


@attrs.frozen(kw_only=True)
class FlushReport:
    delivered: int
    failed: int
    waiting: int
    dropped: int
    timed_out: bool
    elapsed_sec: float

    @property
    def ok(self) -> bool:
        return self.waiting == 0 and not self.timed_out


@attrs.define
class _Sink:
    """A destination's state inside one process. Guarded by the dispatcher's ship lock."""

    name: str
    factory: TransportFactory
    transport: Transport | None = None
    failures: int = 0
    retry_at: float = 0.0  # time.monotonic() before which we do not try
    has_work: bool = True  # assume leftovers until the outbox says otherwise
    fallback: list[WireRecord] = attrs.field(factory=list)  # outbox unwritable: kept here


class Dispatcher:
    """See the module docstring. Construct with :func:`build_dispatcher` or directly."""

    def __init__(
        self,
        *,
        sinks: Mapping[str, TransportFactory] | Sequence[tuple[str, TransportFactory]],
        outbox: Outbox,
        config: DispatcherConfig | None = None,
    ) -> None:
        self.config = config or DispatcherConfig()
        self.outbox = outbox
        pairs = list(sinks.items()) if isinstance(sinks, Mapping) else list(sinks)
        self._sinks = [_Sink(name=name, factory=factory) for name, factory in pairs]
        if len({s.name for s in self._sinks}) != len(self._sinks):
            raise ValueError("sink names must be unique")
        self._closed = False
        self.short_lived = self.config.short_lived
        self._reset_process_state()
        if self.config.register_atexit:
            self._atexit = _weak_call(self, "_at_exit")
            atexit.register(self._atexit)
        _register_fork_handler(self)

    def __repr__(self) -> str:
        return f"Dispatcher(sinks={[s.name for s in self._sinks]}, outbox={self.outbox!r})"

    def _reset_process_state(self) -> None:
        """Everything that must not be shared with a forked child."""
        self._pid = os.getpid()
        # Data in a deque (append is atomic); wake-ups through a C SimpleQueue whose put never
        # blocks on a Python-level lock the sender might hold. ``_idle`` says the sender is
        # about to sleep, so a submit only pays for a wake-up when one is needed.
        self._queue: deque[tuple[tuple[McpLike, ...], int]] = deque()
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._idle = False
        self._spool_lock = threading.Lock()
        self._fallback_lock = threading.Lock()
        self._ship_lock = threading.Lock()
        self._thread: threading.Thread | None = None  # the spooler
        self._shipper: threading.Thread | None = None
        self._ship_wake = threading.Event()
        self._thread_lock = threading.Lock()
        self._holder = new_holder_id()
        self._delivered = 0
        self._failed = 0
        self._dropped = 0
        self._warned_queue_full = False
        self._used = False  # submitted anything in this process (the exit flush cares)
        self._exit_flushed = False  # the exit flush ran, and nothing was submitted since
        self._health: dict[str, tuple[bool, bool, float]] = {}  # sink -> last recorded
        self._in_flight: str | None = None  # the sink the shipper is sending to right now
        self._checkpointed_at = -_CHECKPOINT_EVERY_SEC
        self._retiring = False  # exiting: the shipper leaves other processes' events alone
        self._outbox_broken = False
        self._poll_at = 0.0
        with contextlib.suppress(Exception):
            self.outbox.forget_process_state()
        for sink in self._sinks:
            sink.transport = None  # sessions and sockets are not fork-safe
            sink.failures, sink.retry_at, sink.has_work = 0, 0.0, True
            sink.fallback = []

    # ------------------------------------------------------------------ hook side

    def submit(self, mcps: Sequence[McpLike]) -> None:
        """Record MCPs for delivery. Microseconds; never blocks; never raises."""
        try:
            if self._closed or not mcps:
                return
            pending = self._queue
            if len(pending) >= self.config.max_queue:
                self._drop_oldest_submission()
            pending.append((tuple(mcps), int(time.time() * 1000)))
            self._used = True
            self._exit_flushed = False
            self._retiring = False
            if self._thread is None:
                self._start_thread()
            if self._idle:
                self._wake.put(None)
        except Exception:  # a hook must never fail because of us
            log.debug("DataHub submit failed", exc_info=True)

    def _drop_oldest_submission(self) -> None:
        try:
            dropped, _ = self._queue.popleft()
        except IndexError:  # the sender emptied it meanwhile
            return
        self._dropped += len(dropped)
        if not self._warned_queue_full:
            self._warned_queue_full = True
            log.warning(
                "DataHub sender is %d submissions behind; dropping the oldest "
                "(counted, not logged again)",
                self.config.max_queue,
            )

    def _start_thread(self) -> None:
        """Start the spooler (which starts the shipper): the hook pays for one thread start."""
        with self._thread_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(
                target=self._run_spooler, name="datahub-listener-spooler", daemon=True
            )
            thread.start()
            self._thread = thread

    # ------------------------------------------------------------------ background threads
    #
    # Two daemon threads: the spooler makes submitted events durable within milliseconds even
    # while the shipper sits in a slow request; the shipper delivers from the outbox.

    def _run_spooler(self) -> None:
        self._shipper = threading.Thread(
            target=self._run_shipper, name="datahub-listener-shipper", daemon=True
        )
        self._shipper.start()
        while not self._closed:
            self._sleep_until_woken(self.config.poll_interval_sec)
            if self._closed:
                return
            try:
                self._spool()
            except Exception:  # keep the thread alive whatever happens
                log.warning("DataHub spooler failed; continuing", exc_info=True)
                time.sleep(0.5)

    def _run_shipper(self) -> None:
        while not self._closed:
            self._ship_wake.wait(self._seconds_until_due())
            self._ship_wake.clear()
            if self._closed:
                return
            try:
                self._poll_outbox()
                for sink in self._sinks:
                    if not sink.has_work or time.monotonic() < sink.retry_at or self._retiring:
                        continue
                    if self._leave_alone(sink):
                        # Look again at the next poll (the machine's health record may change),
                        # not at once: a busy loop would burn a core for the task's whole life.
                        sink.retry_at = time.monotonic() + self.config.poll_interval_sec
                        continue
                    self._ship(sink, deadline=None)
            except Exception:  # keep the thread alive whatever happens
                log.warning("DataHub shipper failed; continuing", exc_info=True)
                time.sleep(0.5)

    def _sleep_until_woken(self, timeout: float) -> None:
        # Order matters: announce idleness, then look at the queue, then sleep. A submit that
        # appends after the look sees ``_idle`` and sends a wake-up token.
        self._idle = True
        try:
            if not self._queue and timeout > 0:
                with contextlib.suppress(queue.Empty):
                    self._wake.get(timeout=timeout)
        finally:
            self._idle = False
        with contextlib.suppress(queue.Empty):
            while True:
                self._wake.get_nowait()

    def _seconds_until_due(self) -> float:
        if self._retiring:  # until a submit (or close) wakes it
            return self.config.poll_interval_sec
        now = time.monotonic()
        due = self._poll_at
        for sink in self._sinks:
            if sink.has_work:
                due = min(due, sink.retry_at)
        return min(max(due - now, 0.0), self.config.poll_interval_sec)

    def _poll_outbox(self) -> None:
        """Notice rows other processes left for our sinks (cheap counter reads)."""
        now = time.monotonic()
        if now < self._poll_at:
            return
        self._poll_at = now + self.config.poll_interval_sec
        for sink in self._sinks:
            if not sink.has_work:
                with contextlib.suppress(Exception):
                    sink.has_work = self.outbox.waiting(sink.name) > 0

    def _spool(self, timeout: float = -1) -> bool:
        """Move everything in memory to the outbox. False if the lock was not had in time.

        Works in chunks of ``_SPOOL_CHUNK`` MCPs, one outbox transaction each, pausing
        briefly between chunks: a burst never holds the outbox's write lock (which the
        shipper needs) or the GIL (which Airflow's threads need) for long.
        """
        if not self._spool_lock.acquire(timeout=timeout):
            return False
        try:
            first = True
            while first or self._queue:
                if not first:
                    time.sleep(_SPOOL_PAUSE_SEC)
                first = False
                self._write(self._serialize(self._take(_SPOOL_CHUNK)))
            return True
        finally:
            self._spool_lock.release()

    def _take(self, limit: int) -> list[tuple[tuple[McpLike, ...], int]]:
        batch, count = [], 0
        memory = self._queue
        with contextlib.suppress(IndexError):
            while memory and count < limit:
                item = memory.popleft()
                batch.append(item)
                count += len(item[0])
        return batch

    def _write(self, records: list[WireRecord]) -> None:
        for sink in self._sinks:
            with self._fallback_lock:
                pending = [*sink.fallback, *records]
                if not pending:
                    continue
                try:
                    self._dropped += self.outbox.put(sink.name, pending)
                except Exception as exc:
                    self._keep_in_memory(sink, pending, exc)
                else:
                    sink.fallback = []
                    if self._outbox_broken:
                        self._outbox_broken = False
                        log.warning("DataHub outbox %s is writable again", self.outbox.path)
            sink.has_work = True
            self._ship_wake.set()

    def _serialize(self, batch: list[tuple[tuple[McpLike, ...], int]]) -> list[WireRecord]:
        records = []
        run_id = self.config.run_id
        record_of = WireRecord.of
        for mcps, observed_ms in batch:
            for mcp in mcps:
                try:
                    records.append(record_of(mcp, run_id=run_id, last_observed=observed_ms))
                except Exception as exc:
                    self._failed += 1
                    log.warning(
                        "cannot serialize %s of %s for DataHub, skipped: %s",
                        getattr(mcp, "aspect_name", "?"),
                        getattr(mcp, "entity_urn", "?"),
                        exc,
                    )
        return records

    def _keep_in_memory(self, sink: _Sink, pending: list[WireRecord], exc: Exception) -> None:
        """The outbox cannot be written: hold events in memory (bounded) and ship from there."""
        if not self._outbox_broken:
            self._outbox_broken = True
            log.warning(
                "cannot write the DataHub outbox %s (%s); keeping events in memory until it works",
                self.outbox.path,
                exc,
            )
        excess = len(pending) - self.config.max_queue
        if excess > 0:
            self._dropped += excess
            pending = pending[excess:]
        sink.fallback = pending
        sink.has_work = True

    # ------------------------------------------------------------------ shipping

    def _transport(self, sink: _Sink) -> Transport:
        if sink.transport is None:
            sink.transport = sink.factory()
        return sink.transport

    def _ship(self, sink: _Sink, deadline: float | None) -> bool:
        """Deliver this sink's backlog until empty, failing, or the deadline.

        Returns True when the sink has nothing left (for this process to do).
        """
        timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._ship_lock.acquire(timeout=timeout):
            return False
        try:
            try:
                transport = self._transport(sink)
            except Exception as exc:
                self._sink_failed(sink, f"cannot create the transport: {exc}")
                return False
            if sink.fallback and self._outbox_broken:
                return self._ship_memory(sink, transport, deadline)
            return self._ship_outbox(sink, transport, deadline)
        finally:
            self._ship_lock.release()

    def _emit_deadline(self, deadline: float | None) -> float:
        lease_bound = time.monotonic() + 0.8 * self.config.lease_ttl_sec
        return lease_bound if deadline is None else min(deadline, lease_bound)

    def _ship_outbox(self, sink: _Sink, transport: Transport, deadline: float | None) -> bool:
        outbox = self.outbox
        try:
            while not self._closed and (deadline is None or time.monotonic() < deadline):
                if deadline is None and self._retiring:  # the exit flush takes over
                    return False
                rows = outbox.claim(
                    sink.name,
                    self._holder,
                    self.config.batch_rows,
                    ttl_sec=self.config.lease_ttl_sec,
                )
                if rows is None:  # another live process is shipping this sink
                    sink.has_work = True
                    sink.retry_at = time.monotonic() + min(1.0, self.config.poll_interval_sec)
                    return False
                if not rows:
                    sink.has_work = False
                    if deadline is None and not self._queue:  # idle: fsync off the busy path
                        self._checkpoint_now()
                    return True
                began = time.monotonic()
                self._in_flight = sink.name
                try:
                    report = transport.emit_records(
                        [row.record for row in rows], deadline=self._emit_deadline(deadline)
                    )
                finally:
                    self._in_flight = None
                self._settle(sink, rows, report)
                self._record_health(sink, report.error, time.monotonic() - began)
                if report.error is not None:
                    self._sink_failed(sink, str(report.error))
                    return False
                self._sink_recovered(sink)
            return False
        except Exception as exc:  # the outbox itself failed (disk full, locked too long)
            self._sink_failed(sink, f"outbox error: {type(exc).__name__}: {exc}")
            return False
        finally:
            with contextlib.suppress(Exception):
                outbox.release(sink.name, self._holder)

    def _settle(self, sink: _Sink, rows: list[OutboxRow], report: EmitReport) -> None:
        condemned = [(rows[f.index], f.error.status, str(f.error)) for f in report.failed]
        self._delivered += self.outbox.settle(sink.name, rows[: report.settled], condemned)
        self._failed += len(condemned)

    def _ship_memory(self, sink: _Sink, transport: Transport, deadline: float | None) -> bool:
        """Degraded path (outbox unwritable): emit the in-memory fallback directly."""
        while sink.fallback and (deadline is None or time.monotonic() < deadline):
            with self._fallback_lock:
                chunk = sink.fallback[: self.config.batch_rows]
            report = transport.emit_records(chunk, deadline=self._emit_deadline(deadline))
            self._delivered += report.delivered
            self._failed += len(report.failed)
            with self._fallback_lock:  # the spooler only ever appends behind this prefix
                del sink.fallback[: report.settled]
            if report.error is not None:
                self._sink_failed(sink, str(report.error))
                return False
            self._sink_recovered(sink)
        return not sink.fallback

    def _checkpoint_now(self) -> None:
        """Fold the outbox's WAL into its file when idle, at most every 30 s (a busy
        scheduler is idle between bursts many times a second)."""
        now = time.monotonic()
        if now - self._checkpointed_at >= _CHECKPOINT_EVERY_SEC:
            self._checkpointed_at = now
            self.outbox.checkpoint()

    def _record_health(self, sink: _Sink, error: Exception | None, seconds: float) -> None:
        """Share what this request showed with the machine's other processes (on a change,
        else at most every 10 s: one small write)."""
        failing, slow = error is not None, seconds > self.config.slow_request_sec
        last = self._health.get(sink.name)
        now = time.monotonic()
        if last is not None and last[:2] == (failing, slow) and now - last[2] < 10.0:
            return
        self._health[sink.name] = (failing, slow, now)
        with contextlib.suppress(Exception):
            self.outbox.record_health(
                sink.name, failing=failing, slow=slow, error=None if error is None else str(error)
            )

    def _known_bad(self, sink: _Sink) -> bool:
        """The machine's last sender found this destination failing or slow."""
        try:
            health = self.outbox.health(sink.name, max_age_sec=self.config.health_max_age_sec)
        except Exception:
            return False
        return health.failing or health.slow

    def _leave_alone(self, sink: _Sink) -> bool:
        """A short-lived process starts no request to a destination known to be failing or
        slow: it would likely exit in the middle of it, and the next sender would send the
        same events again. Long-lived processes (and the ``flush`` command) deliver them."""
        return self.short_lived and self._known_bad(sink)

    def _sink_failed(self, sink: _Sink, reason: str) -> None:
        if self._closed:  # a request that outlived close(): its rows stay in the outbox
            log.debug("DataHub destination %s failed after close: %s", sink.name, reason)
            return
        if sink.failures == 0:
            waiting = self._safe_waiting(sink)
            log.warning(
                "DataHub destination %s is failing (%s); %d event(s) kept in the outbox, "
                "retrying with backoff",
                sink.name,
                reason,
                waiting,
            )
        else:
            log.debug("DataHub destination %s still failing: %s", sink.name, reason)
        sink.retry_at = time.monotonic() + self.config.sink_backoff.delay(sink.failures)
        sink.failures += 1
        sink.has_work = True

    def _sink_recovered(self, sink: _Sink) -> None:
        if sink.failures:
            log.warning(
                "DataHub destination %s accepts events again (after %d failed attempts)",
                sink.name,
                sink.failures,
            )
        sink.failures, sink.retry_at = 0, 0.0

    def _safe_waiting(self, sink: _Sink) -> int:
        try:
            return self.outbox.waiting(sink.name) + len(sink.fallback)
        except Exception:
            return len(sink.fallback)

    # ------------------------------------------------------------------ flush / stats / close

    def flush(self, timeout: float | None = None, *, only_own: bool = False) -> FlushReport:
        """Spool memory to the outbox, then deliver the whole backlog of every sink until done
        or ``timeout``. A request started before the deadline runs to the transport's own
        timeout: cutting it short would leave the destination with a batch it may still
        process and the outbox with the same batch to send again.

        ``only_own``: the exit flush of a process about to exit (:meth:`_exit_flush`), with
        ``timeout`` as its waiting budget.
        """
        if only_own:
            return self._exit_flush(
                self.config.exit_wait_sec if timeout is None else max(0.0, timeout)
            )
        started = time.monotonic()
        timeout = self.config.flush_timeout_sec if timeout is None else max(0.0, timeout)
        deadline = started + timeout
        try:
            self._spool(timeout=timeout)
            given_up: set[str] = set()
            while time.monotonic() < deadline:
                open_sinks = [
                    s for s in self._sinks if s.name not in given_up and self._has_work(s)
                ]
                if not open_sinks:
                    break
                finished = True
                for sink in open_sinks:
                    failures = sink.failures
                    if self._ship(sink, deadline):
                        continue
                    if sink.failures > failures:
                        given_up.add(sink.name)  # failed during this flush: do not spin
                    else:
                        finished = False  # e.g. another process is shipping: look again
                if finished:
                    break
                time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        except Exception:
            log.warning("DataHub flush failed", exc_info=True)
        # Let the shipper thread's step end (bounded): it may have settled the last rows (the
        # outbox says "nothing waiting") without having counted them yet.
        if self._ship_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            self._ship_lock.release()
        counts = self.counts()
        elapsed = time.monotonic() - started
        return FlushReport(
            delivered=counts.delivered,
            failed=counts.failed,
            waiting=counts.waiting,
            dropped=counts.dropped,
            timed_out=counts.waiting > 0 and elapsed >= timeout,
            elapsed_sec=elapsed,
        )

    def _exit_flush(self, budget: float) -> FlushReport:
        """A process about to exit: make its events durable, then wait (at most ``budget``)
        for them to be delivered, only where that is worth it.

        The exiting thread starts no request: the shipper thread delivers (a request runs to
        the transport's timeout, never cut short by this budget, so a slow destination never
        receives the same batch twice because a waiting process gave up). No waiting at all
        for a destination the machine's last sender found failing or slow: the events are in
        the outbox, and the next sender delivers them. Then the shipper retires: it ends its
        request in flight and hands the sink's lease back. Runs once per process (the
        ``before_stopping`` hook and the exit handler share it).
        """
        started = time.monotonic()
        if not self._exit_flushed:
            self._spool(timeout=budget)
            own = [s for s in self._sinks if self._left_count(s) > 0]
            wait_for = [s for s in own if not self._known_bad(s)]
            if wait_for:
                if self._thread is None:
                    self._start_thread()
                self._ship_wake.set()
                deadline = started + budget
                failures = {s.name: s.failures for s in wait_for}
                while time.monotonic() < deadline and any(
                    self._left_count(s) > 0 and s.failures == failures[s.name] for s in wait_for
                ):  # a destination that fails meanwhile is not worth the rest of the wait
                    time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
            self._retiring = True
            self._exit_flushed = True
            # Within what is left of the budget, let a request in flight end and the lease go
            # back: exiting under it would cut the request off.
            if self._ship_lock.acquire(timeout=max(0.0, started + budget - time.monotonic())):
                self._ship_lock.release()
            cut = self._in_flight
            if cut is not None:
                # This process exits in the middle of a request: tell the machine's other
                # short-lived processes not to start one more (each would be cut, and the
                # destination would get the same batch again and again).
                with contextlib.suppress(Exception):
                    self.outbox.record_health(
                        cut, failing=False, slow=True, error="a request outlived its process"
                    )
        counts = self.counts()
        waiting = self._in_memory() + sum(self._left_count(s) for s in self._sinks)
        return FlushReport(
            delivered=counts.delivered,
            failed=counts.failed,
            waiting=waiting,
            dropped=counts.dropped,
            timed_out=waiting > 0,
            elapsed_sec=time.monotonic() - started,
        )

    def _left_count(self, sink: _Sink) -> int:
        """What this process put for ``sink`` and is not delivered (with what is ahead of it)."""
        try:
            return len(sink.fallback) + self.outbox.waiting_mine(sink.name)
        except Exception:
            return len(sink.fallback) + (1 if sink.has_work else 0)

    def _has_work(self, sink: _Sink) -> bool:
        if sink.fallback:
            return True
        try:
            sink.has_work = self.outbox.waiting(sink.name) > 0
        except Exception:
            return sink.has_work
        return sink.has_work

    def counts(self) -> DeliveryCounts:
        """This process's delivered/failed/dropped, and the waiting backlog of its sinks."""
        waiting = self._in_memory()
        for sink in self._sinks:
            waiting += self._safe_waiting(sink)
        return DeliveryCounts(
            delivered=self._delivered,
            failed=self._failed,
            waiting=waiting,
            dropped=self._dropped,
        )

    def _in_memory(self) -> int:
        return sum(len(mcps) for mcps, _ in list(self._queue))

    def close(self, timeout: float | None = None) -> FlushReport:
        """Flush (bounded), stop the thread, close transports. Later submits are ignored."""
        report = self.flush(timeout)
        self._closed = True
        self._wake.put(None)
        self._ship_wake.set()
        for thread in (self._thread, self._shipper):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=0.2)
        # The sender may be inside a slow request: never wait for it here (it is a daemon).
        if self._ship_lock.acquire(timeout=0.2):
            try:
                for sink in self._sinks:
                    if sink.transport is not None:
                        with contextlib.suppress(Exception):
                            sink.transport.close()
                        sink.transport = None
            finally:
                self._ship_lock.release()
        if self.config.register_atexit:
            atexit.unregister(self._atexit)
        return report

    def _at_exit(self) -> None:
        if self._closed or os.getpid() != self._pid:
            return
        if not self._used:  # a process that sent nothing leaves the backlog to the others
            return
        report = self.flush(self.config.exit_wait_sec, only_own=True)
        if report.waiting:
            log.info(
                "DataHub: %d event(s) left in the outbox %s for the next sender",
                report.waiting,
                self.outbox.path,
            )

    def _after_fork_in_child(self) -> None:
        self._reset_process_state()


def _weak_call(obj: Any, method: str) -> Any:
    """A callable that calls ``obj.method()`` while ``obj`` lives (atexit must not pin it)."""
    ref = weakref.ref(obj)

    def call() -> None:
        target = ref()
        if target is not None:
            getattr(target, method)()

    return call


_LIVE: weakref.WeakSet[Dispatcher] = weakref.WeakSet()
_FORK_HOOK_INSTALLED = False


def _after_fork_in_child() -> None:
    for dispatcher in list(_LIVE):
        with contextlib.suppress(Exception):
            dispatcher._after_fork_in_child()


def _register_fork_handler(dispatcher: Dispatcher) -> None:
    global _FORK_HOOK_INSTALLED  # noqa: PLW0603  # one process-wide hook
    _LIVE.add(dispatcher)
    if not _FORK_HOOK_INSTALLED and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _FORK_HOOK_INSTALLED = True


def build_dispatcher(
    sinks: Mapping[str, TransportFactory] | Sequence[tuple[str, TransportFactory]],
    outbox_path: str | os.PathLike[str],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    config: DispatcherConfig | None = None,
) -> Dispatcher:
    """A dispatcher over an outbox at ``outbox_path`` (created ``0600`` on first write).

    ``sinks`` pairs a stable name with a zero-argument factory, e.g.
    ``[("datahub-rest:datahub_rest_default", factory)]``; see the module docstring.
    """
    config = config or DispatcherConfig()
    outbox = Outbox(Path(outbox_path), max_rows=max_rows, lease_ttl_sec=config.lease_ttl_sec)
    return Dispatcher(sinks=sinks, outbox=outbox, config=config)
