"""Waiting for a condition instead of sleeping a fixed time.

A fixed sleep is either too short on a loaded machine (the test flakes) or longer than needed
everywhere else (the suite is slow). Tests poll what they wait for, with a deadline that only
a broken run reaches.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    condition: Callable[[], object], timeout: float = 5.0, interval: float = 0.005
) -> bool:
    """Poll ``condition()`` every ``interval`` seconds until it is true or ``timeout`` seconds
    have passed; whether it held (looked at once more at the deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
