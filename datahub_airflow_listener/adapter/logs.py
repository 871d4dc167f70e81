"""Log lines the listener writes: one line per problem, never a traceback above DEBUG."""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, shortened (SQL errors carry whole statements)."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
