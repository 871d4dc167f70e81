"""Log lines the listener writes: one line per problem, each said once, never a traceback above
DEBUG."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Final

__all__ = ["forget_said", "log_once", "one_line"]

_MAX_REMEMBERED: Final = 5000
_said: OrderedDict[str, None] = OrderedDict()
_said_lock = threading.Lock()


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, shortened (SQL errors carry whole statements)."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def log_once(logger: logging.Logger, level: int, key: str, message: str) -> bool:
    """Log ``message`` the first time ``key`` is seen in this process (the newest 5,000 keys
    are remembered); True if it was logged."""
    with _said_lock:
        if key in _said:
            _said.move_to_end(key)
            return False
        _said[key] = None
        if len(_said) > _MAX_REMEMBERED:
            _said.popitem(last=False)
    logger.log(level, "datahub-airflow-listener: %s", message)
    return True


def forget_said() -> None:
    """Say everything again from now on (tests; a reconfigured process)."""
    with _said_lock:
        _said.clear()
