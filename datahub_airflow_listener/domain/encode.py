"""Fast path of the canonical serializer: an aspect straight to its JSON text.

``aspect_to_json(a)`` is, byte for byte, ``dumps(aspect_to_dict(a))`` (compact, ASCII-escaped,
None dropped, unions wrapped, keys in schema order); it exists because serialization is the
listener's hot path. For each attrs class it generates, once, a small Python function that
reads the fields in wire order and writes JSON text for them using the C string escaper, with
the wire names already quoted; no intermediate dict is built.

The generated code trusts the field types declared on the class. Whenever a value is not of
the declared kind (a bool in an int field, a non-str key in a map, ...) the generated function
raises, and the aspect is serialized again by the generic path, so the output never differs
from :func:`~datahub_airflow_listener.domain.aspects.aspect_to_dict` + :func:`dumps`.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

import attrs

from datahub_airflow_listener.domain.aspects import _plan, aspect_to_dict, to_json_value

__all__ = ["aspect_to_json", "dumps", "encoder_source"]

_DUMPS = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


def dumps(obj: Any) -> str:
    """Canonical compact JSON: ASCII-escaped, no NaN, keys in the order built."""
    return _DUMPS(obj)


def _generic(value: Any) -> str:
    return _DUMPS(to_json_value(value))


Encoder = Callable[[Any], str]
_ENCODERS: dict[type, Encoder] = {}
_SOURCES: dict[type, str] = {}


def _record(value: Any) -> str:
    """JSON of a nested attrs record, through its compiled encoder."""
    cls = value.__class__
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _compile(cls)
    return encoder(value)


# Names the generated code may use.
_NAMESPACE: dict[str, Any] = {
    "_s": encode_basestring_ascii,
    "_int": int.__repr__,
    "_g": _generic,
    "_rec": _record,
    "_tuple": tuple,
    "_dict": dict,
    "_int_t": int,
    "_bool_t": bool,
    "_map": map,
}


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def _expr(tp: Any, var: str) -> str:
    """A Python expression giving the JSON text of ``var``, a value of declared type ``tp``.

    It raises (TypeError / AttributeError) for a value of another kind; the caller then falls
    back to the generic serializer.
    """
    tp = _strip_optional(tp)
    origin = typing.get_origin(tp)
    if tp is str:
        return f"_s({var})"
    if tp is bool:
        return f"(('true' if {var} else 'false') if {var}.__class__ is _bool_t else _g({var}))"
    if tp is int:
        return f"(_int({var}) if {var}.__class__ is _int_t else _g({var}))"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        # A str-valued enum's string content is its value, so the C escaper writes the value.
        return f"_s({var})" if issubclass(tp, str) else f"_s({var}.value)"
    if isinstance(tp, type) and attrs.has(tp):
        return f"_rec({var})"
    if origin is tuple:
        args = typing.get_args(tp)
        item = _strip_optional(args[0]) if args else Any
        if item is str:
            inner = f"','.join(_map(_s, {var}))"
        else:
            inner = f"','.join([{_expr(item, '_x')} for _x in {var}])"
        return f"(('[' + {inner} + ']') if {var}.__class__ is _tuple else _g({var}))"
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        args = typing.get_args(tp)
        if args and _strip_optional(args[1]) is str:
            items = f"[_s(_k) + ':' + _s(_v) for _k, _v in {var}.items()]"
            return f"(('{{' + ','.join({items}) + '}}') if {var}.__class__ is _dict else _g({var}))"
    return f"_g({var})"


def _compile(cls: type) -> Encoder:
    """Generate, exec and cache the encoder of one attrs class (see module docstring)."""
    if not attrs.has(cls):
        raise TypeError(f"cannot serialize {cls.__name__}")
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # unresolvable annotations: every field takes the generic path
        hints = {}
    lines = ["def encode(o):", "    out = []", "    append = out.append"]
    for name, wire, union in _plan(cls):
        value = _expr(hints.get(name, Any), "v")
        if union:
            value = f"'{{{json.dumps(union)}:' + {value} + '}}'"
        key = json.dumps(json.dumps(wire) + ":")
        lines += [f"    v = o.{name}", "    if v is not None:", f"        append({key} + {value})"]
    lines.append("    return '{' + ','.join(out) + '}'")
    source = "\n".join(lines)
    namespace = dict(_NAMESPACE)
    exec(compile(source, f"<aspect encoder {cls.__name__}>", "exec"), namespace)  # noqa: S102  # our own generated code, see module docstring
    fast: Encoder = namespace["encode"]

    def encode(obj: Any) -> str:
        try:
            return fast(obj)
        except (TypeError, AttributeError, ValueError):
            return _DUMPS(aspect_to_dict(obj))

    _ENCODERS[cls] = encode
    _SOURCES[cls] = source
    return encode


def aspect_to_json(obj: Any) -> str:
    """The canonical JSON text of an aspect (or nested record): ``dumps(aspect_to_dict(obj))``."""
    encoder = _ENCODERS.get(obj.__class__)
    if encoder is None:
        encoder = _compile(obj.__class__)
    return encoder(obj)


def encoder_source(cls: type) -> str:
    """The generated source of ``cls``'s encoder (for debugging and tests)."""
    if cls not in _SOURCES:
        _compile(cls)
    return _SOURCES[cls]
