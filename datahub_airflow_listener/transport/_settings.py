"""Coercion of settings that arrive as strings (connection extras, ``AIRFLOW__...`` variables).

Each function names the setting in its error so a bad value is fixed in one look.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

__all__ = ["as_bool", "as_float", "as_int", "as_int_set", "as_str_map", "check_keys"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def check_keys(data: Mapping[str, Any], allowed: Collection[str], kind: str) -> None:
    """Refuse unknown keys (a typo must not silently become a default)."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {kind} setting(s) {unknown}; allowed: {sorted(allowed)}")


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false, got {value!r}")


def as_float(name: str, value: Any, *, minimum: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def as_int(name: str, value: Any, *, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def as_int_set(name: str, value: Any) -> frozenset[int]:
    """Accept ``[429, 503]``, ``"429,503"`` or a single number."""
    items: Iterable[Any]
    if isinstance(value, str):
        items = [v for v in value.replace(" ", "").split(",") if v]
    elif isinstance(value, int):
        items = [value]
    else:
        items = value
    return frozenset(as_int(name, v) for v in items)


def as_str_map(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping of strings, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}
