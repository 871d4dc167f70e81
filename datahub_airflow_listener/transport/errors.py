"""The small table of delivery errors, and the one function that keeps secrets out of them.

Every error carries ``method``, ``url``, ``status`` (None when no HTTP answer arrived) and the
server's ``server_message``. None of them ever holds a token: whoever builds one passes the
message through :func:`redact` with the secrets it knows, and URLs never carry credentials here
(the token travels in a header only).

Which class a failure gets decides what the sender does with the MCPs:

=================== ======================================================= ==================
class               when                                                    the MCPs
=================== ======================================================= ==================
TransientError      429, 5xx, 408, connection refused/reset, timeouts       kept, retried later
AuthError           401, 403: the token is missing, wrong or lacks rights   kept, retried later
NotGmsError         404/405/HTML: the address is not a GMS (e.g. frontend)  kept, retried later
DeadlineError    the caller's deadline ran out before an answer          kept, retried later
PermanentError      400, 413, 422 and other 4xx: the server rejects the MCP dead-lettered
=================== ======================================================= ==================

Only :class:`PermanentError` condemns an MCP; every other error is about the *sink* (server,
network, configuration) and must never cost an event.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AuthError",
    "DeadlineError",
    "NotGmsError",
    "PermanentError",
    "TransientError",
    "TransportError",
    "redact",
]

_MAX_MESSAGE = 500
REDACTED = "***"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***`` and cut to a sane length.

    Server messages are echoed into logs and exceptions; a server could in principle echo a
    header back, so every message built from a response goes through here.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    if len(text) > _MAX_MESSAGE:
        text = f"{text[:_MAX_MESSAGE]}...({len(text)} chars)"
    return text


class TransportError(Exception):
    """Base class: a delivery attempt failed.

    ``retryable`` says whether the MCPs involved may be sent again later (True for everything
    except :class:`PermanentError`).
    """

    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.server_message = server_message
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.method or self.url:
            parts.append(f"({self.method or '?'} {self.url or '?'}")
            parts[-1] += f" -> HTTP {self.status})" if self.status is not None else ")"
        if self.server_message and self.server_message not in self.message:
            parts.append(f"server said: {self.server_message}")
        return " ".join(parts)


class TransientError(TransportError):
    """The server or the network failed in a way that may heal: retry with backoff."""


class DeadlineError(TransientError):
    """The caller's deadline (e.g. a bounded flush) ran out before the server answered."""


class AuthError(TransportError):
    """The server refused the credentials (401/403). Events are kept until it is fixed."""


class NotGmsError(TransportError):
    """The address answers, but not as DataHub GMS would (wrong path, the frontend, a proxy)."""


class PermanentError(TransportError):
    """The server rejected the request's content (4xx validation): resending cannot help."""

    retryable = False
