"""Backoff arithmetic: exponential delays with jitter, and the server's ``Retry-After``.

Pure functions and one small frozen policy so the REST transport and the sender's per-sink
backoff compute delays the same way and tests can check them without sleeping.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

import attrs

__all__ = ["BackoffPolicy", "parse_retry_after"]


@attrs.frozen(kw_only=True)
class BackoffPolicy:
    """``delay(n)`` for the n-th retry (0-based): ``base * 2**n`` capped at ``cap``, jittered.

    Jitter keeps the delay in ``[delay/2, delay]`` ("equal jitter"): many task processes that
    saw the same outage do not come back in lockstep, yet nobody retries immediately.
    A server's ``Retry-After`` is honoured as a floor, itself capped at ``max_retry_after``
    so a hostile or confused header cannot park a sender for hours.
    """

    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 60.0

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        *,
        rand: random.Random | None = None,
    ) -> float:
        raw = min(self.cap, self.base * (2 ** max(0, attempt)))
        uniform = (rand or random).uniform  # jitter, not cryptography
        delay: float = raw / 2 + uniform(0.0, raw / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
