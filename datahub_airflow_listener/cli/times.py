"""Times as the command line reads them (``--since``/``--until``) and shows them (UTC)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["format_duration", "format_ms", "parse_time"]

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SEC = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now_ms: int) -> int:
    """Epoch ms of ``text``: ISO 8601 (a date, or date and time; no zone means UTC) or an age
    such as ``30m``, ``12h``, ``7d``, ``2w`` (that long before ``now_ms``). ValueError if bad."""
    match = _RELATIVE.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT_SEC[match.group(2).lower()]
        return now_ms - int(seconds * 1000)
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a time: use ISO 8601 (2024-05-01, 2024-05-01T12:00) "
            "or an age (30m, 12h, 7d, 2w)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def format_ms(ms: int | None) -> str:
    """``2024-05-01 12:00:03Z`` (UTC), or ``-``."""
    if ms is None:
        return "-"
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return when.strftime("%Y-%m-%d %H:%M:%SZ")


def format_duration(ms: int | None) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``2h03m``, or ``-``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    delta = timedelta(milliseconds=ms)
    minutes, seconds = divmod(int(delta.total_seconds()), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
