"""What every client of a GMS here shares: one configured session and one table of errors.

Used by the REST transport (:mod:`.rest`, writes) and the GMS reader (:mod:`.gms_read`, reads
and deletes), so both send the same headers with the same TLS settings and turn the same
answer into the same error class.

* :func:`build_session` -- one ``requests.Session`` per client: the Rest.li headers, TLS
  verification on unless the config turns it off (or names a CA file), proxies and netrc read
  once. The token lives in the ``Authorization`` header only: :class:`~.rest.RestConfig`
  keeps it out of ``repr``, and every message built from an answer or an exception passes
  through :func:`~.errors.redact`.
* :class:`ErrorTable` -- an HTTP status to the classes of :mod:`.errors`, worded by the client
  (a writer and a reader say different things about the same 401), and whether an error is
  worth another try.
* :func:`answered_ok`, :func:`server_message`, :func:`describe_exception` -- reading an answer
  or a failure.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, Final

import attrs
import requests
from requests.adapters import HTTPAdapter

from datahub_airflow_listener import __version__
from datahub_airflow_listener.transport.errors import (
    AuthError,
    DeadlineError,
    NotGmsError,
    PermanentError,
    TransientError,
    TransportError,
)

if TYPE_CHECKING:
    from datahub_airflow_listener.transport.rest import RestConfig

__all__ = [
    "AUTH_STATUS",
    "DEFAULT_RETRY_STATUS",
    "ErrorTable",
    "answered_ok",
    "build_session",
    "describe_exception",
    "server_message",
]

log = logging.getLogger(__name__)

DEFAULT_RETRY_STATUS: Final = frozenset({429, 500, 502, 503, 504})
ALWAYS_TRANSIENT: Final = frozenset({408})
AUTH_STATUS: Final = frozenset({401, 403})
_WEB_PAGE = "the server answered with a web page, not DataHub GMS"


def build_session(config: RestConfig) -> requests.Session:
    """A session for one GMS: Rest.li headers, the token, TLS and proxy settings, no retries
    of its own (the callers retry, with backoff, what is worth retrying)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(
        {
            "Content-Type": "application/json",
            "X-RestLi-Protocol-Version": "2.0.0",
            "User-Agent": (
                f"datahub-airflow-listener/{__version__} python-requests/{requests.__version__}"
            ),
        }
    )
    session.headers.update(dict(config.extra_headers))
    if config.token:
        session.headers["Authorization"] = f"Bearer {config.token}"
    if config.disable_ssl_verification:
        session.verify = False
    elif config.ca_certificate_path:
        session.verify = config.ca_certificate_path
    # What requests reads from the environment (proxies, CA bundle variables, ~/.netrc) it
    # would read again on every request, a sixth of a batch request's CPU here. Read it
    # once, as requests merges it, and stop it reading again. Unlike requests' own merge,
    # an explicit setting here (no verification, a CA file) wins over REQUESTS_CA_BUNDLE.
    settings = session.merge_environment_settings(config.server, {}, None, session.verify, None)
    session.proxies = settings["proxies"]
    session.verify = settings["verify"]
    if not config.token:
        session.auth = requests.utils.get_netrc_auth(config.server)
    session.trust_env = False
    return session


def is_html(response: requests.Response) -> bool:
    return "text/html" in response.headers.get("Content-Type", "").lower()


def answered_ok(response: requests.Response) -> bool:
    """2xx and not a web page (a proxy or DataHub's frontend answers 200 with HTML)."""
    return 200 <= response.status_code < 300 and not is_html(response)


def server_message(response: requests.Response) -> str:
    """The ``message`` of a Rest.li error body, else the start of the text body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip()
    if isinstance(body, dict):
        for key in ("message", "error", "value"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return json.dumps(body)[:300]


_ERRNO = re.compile(r"\[Errno -?\d+\][^)\"'\]]*")


def describe_exception(exc: BaseException) -> str:
    """A short cause for a network failure: ``ConnectionError: [Errno 111] Connection refused``.

    requests wraps the socket error three levels deep in a long repr; the errno text is what a
    person needs.
    """
    text = str(exc)
    found = _ERRNO.search(text)
    if found:
        text = found.group(0).strip()
    elif len(text) > 200:
        text = f"{text[:200]}..."
    return f"{type(exc).__name__}: {text}"


@attrs.frozen(kw_only=True)
class ErrorTable:
    """An answer that is not a success, as one of the error classes of :mod:`.errors`.

    ======================================== ==================
    status                                   class
    ======================================== ==================
    2xx with a web page                      NotGmsError
    401, 403                                 AuthError
    ``retry_status``, 408                    TransientError
    ``no_endpoint_status``                   NotGmsError
    other 4xx                                PermanentError
    anything else (5xx not retried)          TransientError
    ======================================== ==================

    The classes are the same for every client; ``auth``, ``unavailable`` and ``no_endpoint``
    word the message for what the client was doing.
    """

    retry_status: frozenset[int] = DEFAULT_RETRY_STATUS
    no_endpoint_status: frozenset[int] = frozenset({404, 405})
    auth: str = "DataHub refused the credentials"
    unavailable: str = "DataHub is unavailable"
    no_endpoint: str = "no Rest.li ingestion endpoint at this address; is it DataHub GMS?"

    def error(self, method: str, url: str, status: int, message: str) -> TransportError:
        """The error for an answer with ``status``; ``message`` is the server's, redacted."""
        kw: dict[str, Any] = {
            "method": method,
            "url": url,
            "status": status,
            "server_message": message,
        }
        if 200 <= status < 300:
            return NotGmsError(_WEB_PAGE, **kw)
        if status in AUTH_STATUS:
            return AuthError(self.auth, **kw)
        if status in self.retry_status or status in ALWAYS_TRANSIENT:
            return TransientError(self.unavailable, **kw)
        if status in self.no_endpoint_status:
            return NotGmsError(self.no_endpoint, **kw)
        if 400 <= status < 500:
            return PermanentError("DataHub rejected the request", **kw)
        return TransientError("DataHub failed", **kw)

    def retryable(self, error: TransportError) -> bool:
        """Whether another try may heal ``error`` (how many tries are left is the caller's)."""
        if isinstance(error, DeadlineError) or not isinstance(error, TransientError):
            return False
        return error.status is None or error.status in (self.retry_status | ALWAYS_TRANSIENT)
