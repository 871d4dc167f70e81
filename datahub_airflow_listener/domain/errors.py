"""Typed errors raised by the domain for input DataHub would reject."""

from __future__ import annotations


class DomainError(ValueError):
    """Base class: a value cannot be represented as DataHub would accept it."""


class InvalidUrnError(DomainError):
    """A urn, or a part of one, that a DataHub server would reject.

    Carries the name of the offending ``field`` and a shortened copy of its ``value`` so the
    one log line it produces says exactly what to fix.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = f"{shown[:60]}...({len(shown)} chars)"
        super().__init__(f"invalid {field} {shown}: {reason}")


class InvalidAspectError(DomainError):
    """An aspect field holds a value DataHub's schema does not allow."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"invalid {field} {value!r}: {reason}")
