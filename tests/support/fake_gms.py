"""A fake DataHub GMS: a real HTTP server on 127.0.0.1 that validates what it is sent.

Reusable by any test (and by ``bench/``). It answers like a GMS (DATAHUB_WIRE.md):

* ``GET /config`` (no token needed): ``{"noCode": "true", "versions": {...}}``, or a
  frontend-like answer when ``mode="frontend"``.
* ``GET /entitiesV2/<urn>``: 404 "not found" (after the token check), enough for a connection test.
* ``POST /aspects?action=ingestProposalBatch`` and ``?action=ingestProposal``.

Every ingestion request is checked: method, path, the Rest.li headers, ``Authorization`` when a
``token`` is set, the envelope (``{"proposals": [...], "async": "false"}`` with ``async`` a
STRING), at most 200 proposals and 16,000,000 characters, each MCP's fields (no unknown ones),
``aspect.value`` a JSON string holding an object and ``contentType`` application/json. A
request that breaks the protocol gets 400 and is listed in :attr:`FakeGms.violations`, which a
test should assert is empty.

Behaviours a test can switch on at any time (thread-safe):

* ``stop()`` / ``start()``: down (connection refused, open connections cut) and back on the
  same port;
* ``delay_sec``: answer every ingestion request after a pause (a slow GMS);
* ``fail_next(n, status=503, retry_after=None)``: the next ``n`` ingestion requests fail;
* ``reject_urns``: a request containing one of these urns gets 422 (GMS validation);
* ``batch_supported = False``: the batch action answers 404 "not supported" (an old GMS);
* ``keep_mcps = False``: count accepted MCPs without keeping them (benchmarks).

``python -m tests.support.fake_gms --port 0`` serves from a separate process (prints
``READY <port>``); ``POST /__control`` (JSON of the attributes above) and ``GET /__stats``
drive it from outside. ``GET /__stats?wait_for=N&timeout=T`` answers once ``N`` MCPs were
accepted (or after ``T`` seconds), so a benchmark waits without polling.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

MAX_PROPOSALS = 200
MAX_BODY_CHARS = 16_000_000
MCP_FIELDS = frozenset(
    {
        "entityType",
        "entityUrn",
        "entityKeyAspect",
        "changeType",
        "aspectName",
        "aspect",
        "systemMetadata",
        "auditHeader",
        "headers",
    }
)
REQUIRED_FIELDS = ("entityType", "entityUrn", "changeType", "aspectName", "aspect")
GMS_VERSION = "v1.2.0.1"


@attrs.define
class RequestLog:
    """One request as the server saw it."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body_chars: int
    proposals: int
    at: float


class _ViolationError(Exception):
    """The client broke the protocol (recorded, answered 400)."""


def _validate_mcp(mcp: Any, where: str) -> None:
    if not isinstance(mcp, dict):
        raise _ViolationError(f"{where}: a proposal must be an object")
    unknown = set(mcp) - MCP_FIELDS
    if unknown:
        raise _ViolationError(
            f"{where}: unrecognized field found but not allowed: {sorted(unknown)}"
        )
    for field in REQUIRED_FIELDS:
        if field not in mcp:
            raise _ViolationError(f"{where}: missing required field {field}")
    urn = mcp["entityUrn"]
    if not isinstance(urn, str) or not urn.startswith("urn:li:"):
        raise _ViolationError(f"{where}: bad entityUrn {urn!r}")
    if mcp["changeType"] not in ("UPSERT", "CREATE", "DELETE", "PATCH", "RESTATE"):
        raise _ViolationError(f"{where}: bad changeType {mcp['changeType']!r}")
    aspect = mcp["aspect"]
    if not isinstance(aspect, dict) or set(aspect) != {"value", "contentType"}:
        raise _ViolationError(f"{where}: aspect must be {{value, contentType}}, got {aspect!r:.80}")
    if aspect["contentType"] != "application/json":
        raise _ViolationError(f"{where}: contentType must be application/json")
    value = aspect["value"]
    if not isinstance(value, str):
        raise _ViolationError(
            f"{where}: aspect.value must be a JSON STRING, got {type(value).__name__}"
        )
    if not value.isascii():
        raise _ViolationError(f"{where}: aspect.value must be ASCII-escaped JSON")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise _ViolationError(f"{where}: aspect.value is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise _ViolationError(f"{where}: aspect.value must hold a JSON object")
    system = mcp.get("systemMetadata")
    if system is not None and not isinstance(system, dict):
        raise _ViolationError(f"{where}: systemMetadata must be an object")


class FakeGms:
    """See the module docstring. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        token: str | None = None,
        port: int = 0,
        mode: str = "gms",
        batch_supported: bool = True,
        keep_mcps: bool = True,
    ) -> None:
        self.token = token
        self.mode = mode
        self.batch_supported = batch_supported
        self.keep_mcps = keep_mcps
        self.delay_sec = 0.0
        self.reject_urns: set[str] = set()
        self.port = port or _free_port()
        self.mcps: list[dict[str, Any]] = []
        self.accepted_count = 0
        self.requests: list[RequestLog] = []
        self.violations: list[str] = []
        self._handling = 0  # ingestion requests received and not answered yet
        self._failures: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeGms:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: stop listening and cut every open connection (the port is kept)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGms:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ behaviours

    def fail_next(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    def accepted(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.mcps)

    def idle(self) -> bool:
        """No POST is being handled: every ingestion request received so far was answered
        (what a test waits for before it asserts that nothing more arrived)."""
        with self._lock:
            return self._handling == 0

    def ingest_requests(self) -> list[RequestLog]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/aspects")]

    def reset(self) -> None:
        with self._lock:
            self.mcps.clear()
            self.requests.clear()
            self.violations.clear()
            self._failures.clear()
            self.accepted_count = 0

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` MCPs were accepted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.accepted_count >= count:
                return True
            time.sleep(0.005)
        return self.accepted_count >= count

    def control(self, settings: dict[str, Any]) -> None:
        """Apply settings sent to ``/__control`` (for a server in another process)."""
        for key in ("delay_sec", "batch_supported", "keep_mcps", "mode"):
            if key in settings:
                setattr(self, key, settings[key])
        if "reject_urns" in settings:
            self.reject_urns = set(settings["reject_urns"])
        if "fail_next" in settings:
            spec = settings["fail_next"]
            self.fail_next(spec["count"], spec.get("status", 503), spec.get("retry_after"))
        if settings.get("reset"):
            self.reset()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "accepted": self.accepted_count,
                "requests": len(self.requests),
                "violations": list(self.violations),
            }

    # ------------------------------------------------------------------ request handling

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _log(self, handler: _Handler, status: int, body_chars: int, proposals: int) -> None:
        entry = RequestLog(
            method=handler.command,
            path=handler.path,
            status=status,
            headers={k: v for k, v in handler.headers.items()},
            body_chars=body_chars,
            proposals=proposals,
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(entry)

    def _authorized(self, handler: _Handler) -> bool:
        return self.token is None or handler.headers.get("Authorization") == f"Bearer {self.token}"

    def handle_get(self, handler: _Handler) -> tuple[int, Any, dict[str, str]]:
        path = urlsplit(handler.path).path
        if path == "/config":
            if self.mode == "frontend":
                return 200, {"config": {"application": "datahub-frontend"}}, {}
            if self.mode == "html":
                return 200, "<html><body>DataHub</body></html>", {}
            return (
                200,
                {"noCode": "true", "versions": {"acryldata/datahub": {"version": GMS_VERSION}}},
                {},
            )
        if path == "/__stats":
            query = parse_qs(urlsplit(handler.path).query)
            if "wait_for" in query:
                timeout = float(query.get("timeout", ["60"])[0])
                self.wait_for(int(query["wait_for"][0]), timeout)
            return 200, self.stats(), {}
        if path.startswith("/entitiesV2/"):
            if not self._authorized(handler):
                return 401, _error(401, "Unauthorized to perform this action."), {}
            urn = unquote(path[len("/entitiesV2/") :])
            return 404, _error(404, f"Entity {urn} not found"), {}
        return 404, _error(404, f"No resource for {path}"), {}

    def handle_post(self, handler: _Handler, body: str) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(handler.path)
        if parts.path == "/__control":
            self.control(json.loads(body or "{}"))
            return 200, {"value": "ok"}, {}
        if self.mode == "frontend" and parts.path.startswith("/aspects"):
            return 401, "<html>login</html>", {}
        action = parse_qs(parts.query).get("action", [""])[0]
        if parts.path != "/aspects" or action not in ("ingestProposal", "ingestProposalBatch"):
            return 404, _error(404, f"No resource for {handler.path}"), {}
        if self.delay_sec:
            time.sleep(self.delay_sec)
        if not self._authorized(handler):
            return 401, _error(401, "Unauthorized to perform this action."), {}
        if action == "ingestProposalBatch" and not self.batch_supported:
            return 404, _error(404, "Action 'ingestProposalBatch' is not supported"), {}
        try:
            proposals = self._validate(handler, action, body)
        except _ViolationError as exc:
            with self._lock:
                self.violations.append(str(exc))
            return 400, _error(400, f"Invalid request: {exc}"), {}
        with self._lock:
            if self._failures:
                status, retry_after = self._failures.pop(0)
                headers = {"Retry-After": retry_after} if retry_after else {}
                return status, _error(status, "temporarily unavailable"), headers
        for mcp in proposals:
            if mcp["entityUrn"] in self.reject_urns:
                message = (
                    f"Failed to validate record with class {mcp['aspectName']}: "
                    f"urn {mcp['entityUrn']} is not valid"
                )
                return 422, _error(422, message), {}
        with self._lock:
            if self.keep_mcps:
                self.mcps.extend(proposals)
            self.accepted_count += len(proposals)
        return 200, {"value": "success"}, {}

    def _validate(self, handler: _Handler, action: str, body: str) -> list[dict[str, Any]]:
        headers = handler.headers
        if headers.get("X-RestLi-Protocol-Version") != "2.0.0":
            raise _ViolationError("missing X-RestLi-Protocol-Version: 2.0.0")
        if not (headers.get("Content-Type") or "").startswith("application/json"):
            raise _ViolationError(
                f"Content-Type must be application/json, got {headers.get('Content-Type')}"
            )
        if not headers.get("User-Agent"):
            raise _ViolationError("no User-Agent")
        if len(body) > MAX_BODY_CHARS:
            raise _ViolationError(f"body of {len(body)} characters exceeds {MAX_BODY_CHARS}")
        try:
            envelope = json.loads(body)
        except ValueError as exc:
            raise _ViolationError(f"body is not JSON: {exc}") from None
        if not isinstance(envelope, dict):
            raise _ViolationError("body must be an object")
        if "async" in envelope and envelope["async"] not in ("true", "false"):
            raise _ViolationError(
                f"async must be the STRING 'true' or 'false', got {envelope['async']!r}"
            )
        if action == "ingestProposalBatch":
            if set(envelope) - {"proposals", "async"}:
                raise _ViolationError(
                    f"unexpected keys {sorted(set(envelope) - {'proposals', 'async'})}"
                )
            proposals = envelope.get("proposals")
            if not isinstance(proposals, list) or not proposals:
                raise _ViolationError("proposals must be a non-empty array")
            if len(proposals) > MAX_PROPOSALS:
                raise _ViolationError(f"{len(proposals)} proposals exceed {MAX_PROPOSALS}")
        else:
            if set(envelope) - {"proposal", "async"}:
                raise _ViolationError(
                    f"unexpected keys {sorted(set(envelope) - {'proposal', 'async'})}"
                )
            proposals = [envelope.get("proposal")]
        for index, mcp in enumerate(proposals):
            _validate_mcp(mcp, f"proposal {index}")
        return proposals


@attrs.frozen(kw_only=True)
class StubMcp:
    """A minimal object with the MCP protocol the sender needs (``to_wire`` etc.).

    Lets transport tests run without the domain package; ``seq`` goes into the aspect so a
    test can check order and completeness on the server side.
    """

    entity_urn: str
    seq: int = 0
    status: str = "STARTED"
    aspect_name: str = "dataProcessInstanceRunEvent"
    extra: str = ""

    def aspect(self) -> dict[str, Any]:
        value: dict[str, Any] = {"timestampMillis": self.seq, "status": self.status}
        if self.extra:
            value["messageId"] = self.extra
        return value

    def to_wire(
        self, *, run_id: str | None = None, last_observed: int | None = None
    ) -> dict[str, Any]:
        return {
            "entityType": "dataProcessInstance",
            "entityUrn": self.entity_urn,
            "changeType": "UPSERT",
            "aspectName": self.aspect_name,
            "aspect": {"value": json.dumps(self.aspect()), "contentType": "application/json"},
            "systemMetadata": {
                "lastObserved": last_observed if last_observed is not None else 0,
                "runId": run_id or "no-run-id-provided",
            },
        }


def run_events(accepted: list[dict[str, Any]]) -> dict[str, list[tuple[int, str]]]:
    """Accepted run events grouped by urn: ``{urn: [(timestampMillis, status), ...]}`` in
    arrival order (what an order/completeness test compares)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for mcp in accepted:
        value = json.loads(mcp["aspect"]["value"])
        out.setdefault(mcp["entityUrn"], []).append((value["timestampMillis"], value["status"]))
    return out


def _error(status: int, message: str) -> dict[str, Any]:
    return {
        "exceptionClass": "com.linkedin.restli.server.RestLiServiceException",
        "stackTrace": "com.linkedin.restli.server.RestLiServiceException [HTTP Status:...]",
        "message": message,
        "status": status,
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64
    fake: FakeGms


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # base signature
        """Silence the default stderr access log."""

    def _reply(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        if isinstance(payload, str):
            data, ctype = payload.encode(), "text/html"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def do_GET(self) -> None:
        status, payload, headers = self.server.fake.handle_get(self)
        self.server.fake._log(self, status, 0, 0)
        self._reply(status, payload, headers)

    def do_POST(self) -> None:
        fake = self.server.fake
        with fake._lock:
            fake._handling += 1
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
            status, payload, headers = fake.handle_post(self, body)
            count = body.count('"entityUrn"') if self.path.startswith("/aspects") else 0
            fake._log(self, status, len(body), count)
            self._reply(status, payload, headers)
        finally:
            with fake._lock:
                fake._handling -= 1


@contextlib.contextmanager
def running_fake_gms(**kwargs: Any) -> Iterator[FakeGms]:
    """``with running_fake_gms(token="t") as gms: ...``"""
    gms = FakeGms(**kwargs).start()
    try:
        yield gms
    finally:
        gms.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None)
    parser.add_argument("--no-keep", action="store_true", help="count MCPs, do not keep them")
    args = parser.parse_args(argv)
    gms = FakeGms(port=args.port, token=args.token, keep_mcps=not args.no_keep).start()
    print(f"READY {gms.port}", flush=True)
    try:
        sys.stdin.read()  # serve until the parent closes our stdin
    finally:
        gms.stop()


if __name__ == "__main__":
    main()
