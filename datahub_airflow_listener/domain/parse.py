"""The inverse of the serializer: DataHub JSON back into this package's aspect classes.

Used to read the local store and files back (run history, export) and by the round-trip
tests that prove no field is dropped.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from datahub_airflow_listener.domain.aspects import UNION, _wire
from datahub_airflow_listener.domain.errors import InvalidAspectError

__all__ = ["aspect_from_dict"]

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        from datahub_airflow_listener.domain import aspects

        hints = typing.get_type_hints(cls, vars(aspects))
        _HINTS[cls] = hints
    return hints


def _strip_optional(tp: Any) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return non_none[0]
    return tp


def _convert(tp: Any, value: Any, field: str) -> Any:
    tp = _strip_optional(tp)
    origin = typing.get_origin(tp)
    if value is None:
        return None
    if origin is tuple:
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_convert(item_tp, v, field) for v in value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if isinstance(tp, type) and attrs.has(tp):
        return aspect_from_dict(tp, value)
    return value


def aspect_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Build ``cls`` from DataHub's JSON for it; unknown keys raise (nothing silently dropped)."""
    if not isinstance(data, Mapping):
        raise InvalidAspectError(cls.__name__, data, "expected a JSON object")
    hints = _hints(cls)
    known = {}
    for f in attrs.fields(cls):
        known[_wire(f.name)] = f
    unknown = set(data) - set(known)
    if unknown:
        raise InvalidAspectError(cls.__name__, sorted(unknown), "unknown fields")
    kwargs: dict[str, Any] = {}
    for wire, f in known.items():
        if wire not in data:
            continue
        value = data[wire]
        branch = f.metadata.get(UNION)
        if branch and isinstance(value, Mapping):
            value = next(iter(value.values()))
        kwargs[f.name] = _convert(hints[f.name], value, wire)
    return cls(**kwargs)
