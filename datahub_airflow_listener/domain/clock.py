"""The wall clock in epoch milliseconds: the one place the package reads the time of day."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Milliseconds since the epoch, now (DataHub's timestamps)."""
    return time.time_ns() // 1_000_000
