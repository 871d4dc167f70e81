"""Delivery to a DataHub GMS over Rest.li: batching, retries, fallback, error isolation.

Contract (what a GMS accepts is in DATAHUB_WIRE.md):

* One ``requests.Session`` per transport (:func:`~.http.build_session`) with the Rest.li
  headers; TLS verification on unless ``disable_ssl_verification``; explicit (connect, read)
  timeouts on every request. HTTP answers map to errors by :class:`~.http.ErrorTable`.
* ``POST {server}/aspects?action=ingestProposalBatch`` with at most ``max_batch_size`` (<= 200)
  MCPs and ``max_batch_bytes`` (<= 15 MB) of serialized MCPs per request. When a server answers
  that the batch action is not supported, this transport switches to one
  ``POST /aspects?action=ingestProposal`` per MCP for the rest of its life.
* 429/500/502/503/504 (configurable), 408 and connection errors are retried up to
  ``retry_max_times`` with exponential backoff and jitter, honouring ``Retry-After``.
* A 4xx validation answer on a batch is narrowed down by bisection to the MCP(s) the server
  refuses; each is logged once (urn, aspect, server message), reported in
  :attr:`EmitReport.failed`, and the rest of the batch is delivered. 401/403/404 are
  sink-level errors (:class:`AuthError`, :class:`NotGmsError`): nothing is condemned.
* The token lives in one session header. It is excluded from ``repr``; every message taken
  from a response or an exception passes through :func:`~.errors.redact`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs
import requests

from datahub_airflow_listener.transport._settings import (
    as_bool,
    as_float,
    as_int,
    as_int_set,
    as_str_map,
    check_keys,
)
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
    redact,
)
from datahub_airflow_listener.transport.http import (
    AUTH_STATUS,
    DEFAULT_RETRY_STATUS,
    ErrorTable,
    answered_ok,
    build_session,
    describe_exception,
    server_message,
)
from datahub_airflow_listener.transport.retry import BackoffPolicy, parse_retry_after

__all__ = ["RestConfig", "RestTransport", "normalize_server"]

log = logging.getLogger(__name__)

MAX_BATCH_SIZE = 200
MAX_BATCH_BYTES = 15 * 1024 * 1024  # 15,728,640: the reference SDK's limit, under GMS's 16 M
_BATCH_UNSUPPORTED_HINTS = ("not supported", "unsupported", "no such action", "unknown action")
_PROBE_URN = "urn:li:corpuser:datahub"  # exists in every DataHub deployment


def normalize_server(server: str) -> str:
    """``host[:port][/path]`` with or without scheme -> ``http(s)://host[:port][/path]``."""
    server = server.strip()
    if not server:
        raise ValueError("server must not be empty")
    if "://" not in server:
        server = f"http://{server}"
    return server.rstrip("/")


@attrs.frozen(kw_only=True)
class RestConfig:
    """Settings of one GMS destination. ``token`` and ``extra_headers`` never appear in repr."""

    server: str = attrs.field(converter=normalize_server)
    token: str | None = attrs.field(default=None, repr=False)
    timeout_sec: float = 30.0
    connect_timeout_sec: float = 10.0
    retry_max_times: int = 4
    retry_status_codes: frozenset[int] = DEFAULT_RETRY_STATUS
    retry_backoff_sec: float = 0.5
    retry_backoff_max_sec: float = 30.0
    retry_after_max_sec: float = 60.0
    extra_headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    disable_ssl_verification: bool = False
    ca_certificate_path: str | None = None
    max_batch_size: int = attrs.field(default=MAX_BATCH_SIZE)
    max_batch_bytes: int = attrs.field(default=MAX_BATCH_BYTES)

    @max_batch_size.validator
    def _check_size(self, attribute: Any, value: int) -> None:
        if not 1 <= value <= MAX_BATCH_SIZE:
            raise ValueError(f"max_batch_size must be in 1..{MAX_BATCH_SIZE}, got {value}")

    @max_batch_bytes.validator
    def _check_bytes(self, attribute: Any, value: int) -> None:
        if not 1024 <= value <= MAX_BATCH_BYTES:
            raise ValueError(f"max_batch_bytes must be in 1024..{MAX_BATCH_BYTES}, got {value}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RestConfig:
        """Build from plain values (strings are fine: connection extras arrive as text)."""
        check_keys(data, attrs.fields_dict(cls), "datahub-rest")
        if not data.get("server"):
            raise ValueError("datahub-rest needs a server (the GMS address)")
        kw: dict[str, Any] = {"server": str(data["server"])}
        token = data.get("token")
        kw["token"] = str(token) if token else None
        for name in (
            "timeout_sec",
            "connect_timeout_sec",
            "retry_backoff_sec",
            "retry_backoff_max_sec",
            "retry_after_max_sec",
        ):
            if data.get(name) is not None:
                kw[name] = as_float(name, data[name])
        for name in ("retry_max_times", "max_batch_size", "max_batch_bytes"):
            if data.get(name) is not None:
                kw[name] = as_int(name, data[name])
        if data.get("retry_status_codes") is not None:
            kw["retry_status_codes"] = as_int_set("retry_status_codes", data["retry_status_codes"])
        kw["extra_headers"] = as_str_map("extra_headers", data.get("extra_headers"))
        if data.get("disable_ssl_verification") is not None:
            kw["disable_ssl_verification"] = as_bool(
                "disable_ssl_verification", data["disable_ssl_verification"]
            )
        if data.get("ca_certificate_path"):
            kw["ca_certificate_path"] = str(data["ca_certificate_path"])
        return cls(**kw)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be shown: the token and every extra header value."""
        values = [self.token or "", *self.extra_headers.values()]
        return tuple(v for v in values if len(v) >= 4)

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(
            base=self.retry_backoff_sec,
            cap=self.retry_backoff_max_sec,
            max_retry_after=self.retry_after_max_sec,
        )


def _mentions_unsupported_batch(status: int, message: str) -> bool:
    """An old GMS answering that ``ingestProposalBatch`` does not exist.

    404/405/501 with a "not supported"-like message, or a 400 that names the action (a 400
    about an aspect "not supported" on an entity is a validation error, not this).
    """
    lowered = message.lower()
    if status == 400:
        return "ingestproposalbatch" in lowered and any(
            hint in lowered for hint in _BATCH_UNSUPPORTED_HINTS
        )
    if status in (404, 405, 501):
        return any(hint in lowered for hint in _BATCH_UNSUPPORTED_HINTS)
    return False


class _BatchUnsupportedError(Exception):
    """Internal signal: this server lacks ``ingestProposalBatch``."""


class RestTransport(TransportBase):
    """Sends MCPs to one GMS. Thread-compatible, not thread-safe: one sender thread uses it."""

    def __init__(self, config: RestConfig, *, session: requests.Session | None = None) -> None:
        self.config = config
        self._session = session or build_session(config)
        self._errors = ErrorTable(retry_status=config.retry_status_codes)
        self._batch_supported: bool | None = None  # None: not yet known, try batch first
        self._sleep = time.sleep

    def __repr__(self) -> str:
        return f"RestTransport(server={self.config.server!r})"

    @property
    def batch_supported(self) -> bool | None:
        """False once the server said it lacks the batch action; None before the first batch."""
        return self._batch_supported

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ emitting

    def emit_records(
        self, records: Sequence[WireRecord], *, deadline: float | None = None
    ) -> EmitReport:
        failed: list[FailedMcp] = []
        settled = 0
        error: TransportError | None = None
        for offset, chunk in self._chunks(records):
            done, error = self._emit_chunk(chunk, offset, deadline, failed)
            settled += done
            if error is not None:
                break
        return EmitReport(
            attempted=len(records), settled=settled, failed=tuple(failed), error=error
        )

    def _chunks(self, records: Sequence[WireRecord]) -> Iterator[tuple[int, list[WireRecord]]]:
        """Split into requests within the count and size limits, keeping order."""
        limit = self.config.max_batch_bytes - 64  # envelope: {"proposals":[...],"async":"false"}
        start, size = 0, 0
        chunk: list[WireRecord] = []
        for index, record in enumerate(records):
            length = len(record.payload) + 1
            if chunk and (len(chunk) >= self.config.max_batch_size or size + length > limit):
                yield start, chunk
                start, size, chunk = index, 0, []
            if length > limit:
                log.warning(
                    "MCP %s of %s is %d characters, over the %d a request may carry; "
                    "the server will likely reject it",
                    record.aspect_name,
                    record.urn,
                    length,
                    limit,
                )
            chunk.append(record)
            size += length
        if chunk:
            yield start, chunk

    def _emit_chunk(
        self,
        chunk: list[WireRecord],
        offset: int,
        deadline: float | None,
        failed: list[FailedMcp],
    ) -> tuple[int, TransportError | None]:
        """Deliver one in-limits chunk; return (settled count, sink-level error or None)."""
        if self._batch_supported is False:
            return self._emit_singly(chunk, offset, deadline, failed)
        body = '{"proposals":[' + ",".join(r.payload for r in chunk) + '],"async":"false"}'
        try:
            self._post("ingestProposalBatch", body, deadline)
        except _BatchUnsupportedError:
            log.info(
                "DataHub at %s lacks ingestProposalBatch (an older GMS); "
                "sending one MCP per request from now on",
                self.config.server,
            )
            self._batch_supported = False
            return self._emit_singly(chunk, offset, deadline, failed)
        except PermanentError as exc:
            if len(chunk) == 1:
                failed.append(self._condemn(chunk[0], offset, exc))
                return 1, None
            # Bisect: halves that the server accepts are delivered; order is kept because the
            # left half is settled before the right one is tried.
            middle = len(chunk) // 2
            left, error = self._emit_chunk(chunk[:middle], offset, deadline, failed)
            if error is not None:
                return left, error
            right, error = self._emit_chunk(chunk[middle:], offset + middle, deadline, failed)
            return left + right, error
        except TransportError as exc:
            return 0, exc
        self._batch_supported = True
        return len(chunk), None

    def _emit_singly(
        self,
        chunk: list[WireRecord],
        offset: int,
        deadline: float | None,
        failed: list[FailedMcp],
    ) -> tuple[int, TransportError | None]:
        for index, record in enumerate(chunk):
            body = '{"proposal":' + record.payload + ',"async":"false"}'
            try:
                self._post("ingestProposal", body, deadline)
            except PermanentError as exc:
                failed.append(self._condemn(record, offset + index, exc))
            except TransportError as exc:
                return index, exc
        return len(chunk), None

    def _condemn(self, record: WireRecord, index: int, exc: PermanentError) -> FailedMcp:
        log.warning(
            "DataHub rejected %s of %s for good (HTTP %s): %s",
            record.aspect_name,
            record.urn,
            exc.status,
            exc.server_message or exc.message,
        )
        return FailedMcp(index=index, urn=record.urn, aspect_name=record.aspect_name, error=exc)

    # ------------------------------------------------------------------ HTTP

    def _timeouts(self, deadline: float | None) -> tuple[float, float]:
        """The connection's own timeouts. A caller's deadline decides whether a request starts
        (and whether a retry does), never how long a started one may take: a request cut
        short may still be processed by the server, and its events would be sent again."""
        if deadline is not None and deadline - time.monotonic() <= 0:
            raise DeadlineError("deadline passed before the request was sent")
        return self.config.connect_timeout_sec, self.config.timeout_sec

    def _post(self, action: str, body: str, deadline: float | None) -> None:
        """POST one Rest.li action with retries; return on 2xx, raise a TransportError."""
        url = f"{self.config.server}/aspects?action={action}"
        data = body.encode("utf-8")
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = self._session.post(url, data=data, timeout=self._timeouts(deadline))
            except requests.Timeout as exc:
                error: TransportError = self._network_error("timed out", url, exc, deadline)
            except requests.RequestException as exc:
                error = self._network_error("could not connect", url, exc, deadline)
            else:
                with response:
                    if answered_ok(response):
                        return
                    if action == "ingestProposalBatch" and _mentions_unsupported_batch(
                        response.status_code, server_message(response)
                    ):
                        raise _BatchUnsupportedError
                    message = redact(server_message(response), self.config.secrets)
                    error = self._errors.error("POST", url, response.status_code, message)
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if not self._should_retry(error, attempt):
                raise error
            delay = self.config.backoff.delay(attempt, retry_after)
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise error
            log.debug("retrying %s in %.2fs after: %s", action, delay, error)
            self._sleep(delay)
            attempt += 1

    def _should_retry(self, error: TransportError, attempt: int) -> bool:
        return attempt < self.config.retry_max_times and self._errors.retryable(error)

    def _network_error(
        self, what: str, url: str, exc: Exception, deadline: float | None
    ) -> TransportError:
        message = redact(f"{what}: {describe_exception(exc)}", self.config.secrets)
        if deadline is not None and time.monotonic() >= deadline:
            return DeadlineError(message, method="POST", url=url)
        return TransientError(message, method="POST", url=url)

    # ------------------------------------------------------------------ connection test

    def test_connection(self) -> tuple[bool, str]:
        """Check the address is a GMS and the token is accepted: ``(ok, one-line message)``.

        ``GET /config`` needs no token; a GMS answers it with ``"noCode": "true"`` (DataHub's
        frontend does not). The token is then checked with one authenticated read.
        """
        server = self.config.server
        timeouts = (self.config.connect_timeout_sec, min(self.config.timeout_sec, 10.0))
        try:
            response = self._session.get(f"{server}/config", timeout=timeouts)
        except requests.RequestException as exc:
            text = redact(describe_exception(exc), self.config.secrets)
            return False, f"Cannot reach {server}: {text}"
        with response:
            if response.status_code in AUTH_STATUS:
                return False, f"{server} refused the token (HTTP {response.status_code})"
            if response.status_code != 200:
                return False, (
                    f"{server}/config answered HTTP {response.status_code}; "
                    "this address is not DataHub GMS"
                )
            try:
                config = response.json()
            except ValueError:
                config = None
        if not isinstance(config, dict):
            return False, (
                f"{server} answered /config with a web page, not JSON: this is not DataHub GMS "
                "(GMS usually listens on port 8080, or <frontend>/api/gms)"
            )
        if config.get("noCode") != "true":
            return False, (
                f"{server} looks like DataHub's frontend, not GMS: point the connection at GMS "
                "(usually <host>:8080) or at <frontend>/api/gms"
            )
        version = _gms_version(config)
        ok, auth_message = self._check_token(timeouts)
        return ok, f"Connected to DataHub GMS {version} at {server}; {auth_message}"

    def _check_token(self, timeouts: tuple[float, float]) -> tuple[bool, str]:
        url = f"{self.config.server}/entitiesV2/{quote(_PROBE_URN, safe='')}"
        try:
            response = self._session.get(url, timeout=timeouts)
        except requests.RequestException as exc:
            text = redact(describe_exception(exc), self.config.secrets)
            return False, f"but an authenticated request failed: {text}"
        with response:
            status = response.status_code
            message = redact(server_message(response), self.config.secrets)
        if status in AUTH_STATUS:
            if not self.config.token:
                return False, f"but it requires a token (HTTP {status}); put it in the password"
            return False, f"but it refused the token (HTTP {status}: {message})"
        if status >= 500:
            return False, f"but an authenticated request failed (HTTP {status}: {message})"
        return True, "token accepted" if self.config.token else "no token needed"


def _gms_version(config: Mapping[str, Any]) -> str:
    versions = config.get("versions")
    if isinstance(versions, Mapping):
        for key in ("acryldata/datahub", "linkedin/datahub"):
            entry = versions.get(key)
            if isinstance(entry, Mapping) and entry.get("version"):
                return str(entry["version"])
    return "(version unknown)"
