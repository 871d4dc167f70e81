"""What every transport is, what it reports, and the registry that picks one by kind.

A transport turns wire-form MCPs (the Rest.li envelope, see ``domain.mcp.to_wire``) into a side
effect: a GMS request, a line in a file, a row in the local store. It is:

* built from a config class (``Config.from_dict(mapping)``; unknown keys are an error so a typo
  never silently becomes a default);
* ``emit_records(records, deadline=None) -> EmitReport`` (the sender's path: records already
  serialized once, on the background thread) and ``emit(wire_dicts, deadline=None)`` (the same
  for callers holding dicts);
* ``flush(timeout)`` and ``close()``.

``emit*`` never raises for a delivery problem: it reports how far it got (see
:class:`EmitReport`). MCPs are handled in order, so "settled" is always a prefix; that is what
lets the sender acknowledge exactly what is done and keep one run's events in order.

The registry maps a kind to (config class, transport class) through dotted paths imported on
first use, so importing this module (as the listener does in every Airflow process) never pays
for ``requests`` or ``sqlite3``.
"""

from __future__ import annotations

import abc
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import attrs

from datahub_airflow_listener.transport._settings import check_keys
from datahub_airflow_listener.transport.errors import PermanentError, TransportError

if TYPE_CHECKING:  # typing.Self is 3.11+; the package still imports on 3.10
    from typing import Self

__all__ = [
    "EmitReport",
    "FailedMcp",
    "McpLike",
    "Transport",
    "TransportBase",
    "TransportConfig",
    "TransportFactory",
    "TransportKind",
    "WireRecord",
    "check_keys",
    "create_transport",
    "get_transport_kind",
    "register_transport",
    "transport_factory",
    "transport_kinds",
]


@runtime_checkable
class McpLike(Protocol):
    """What the sender needs from a domain ``MetadataChangeProposal`` (see CONTRACT.md)."""

    @property
    def entity_urn(self) -> str: ...

    @property
    def aspect_name(self) -> str: ...

    def to_wire(
        self, *, run_id: str | None = None, last_observed: int | None = None
    ) -> dict[str, Any]: ...


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # reused: json.dumps(**kw) builds one per call


class WireRecord(NamedTuple):
    """One wire-form MCP serialized exactly once, plus the fields needed to route and log it.

    ``payload`` is the compact JSON of the Rest.li envelope. Transports that only forward it
    (REST, the local store, the outbox) never parse it again. A NamedTuple because the sender
    builds one per MCP on its hot path.
    """

    urn: str
    aspect_name: str
    entity_type: str
    payload: str

    def __repr__(self) -> str:
        return f"WireRecord(urn={self.urn!r}, aspect_name={self.aspect_name!r})"

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> WireRecord:
        return cls(
            str(wire.get("entityUrn", "")),
            str(wire.get("aspectName", "")),
            str(wire.get("entityType", "")),
            _ENCODER.encode(wire),
        )

    @classmethod
    def of(cls, mcp: McpLike, *, run_id: str | None, last_observed: int) -> WireRecord:
        """Serialize ``mcp``; through its ``to_wire_json`` text fast path when it has one
        (the domain's MCPs do: same bytes as encoding ``to_wire()``, half the time)."""
        to_json = getattr(mcp, "to_wire_json", None)
        entity_type = getattr(mcp, "entity_type", None)
        if to_json is None or entity_type is None:
            return cls.from_wire(mcp.to_wire(run_id=run_id, last_observed=last_observed))
        return cls(
            mcp.entity_urn,
            mcp.aspect_name,
            entity_type,
            to_json(run_id=run_id, last_observed=last_observed),
        )

    def wire(self) -> dict[str, Any]:
        """The envelope as a dict (parses ``payload``)."""
        value: dict[str, Any] = json.loads(self.payload)
        return value


@attrs.frozen(kw_only=True)
class FailedMcp:
    """An MCP the destination rejected for good (4xx validation). Never retried."""

    index: int
    urn: str
    aspect_name: str
    error: PermanentError


@attrs.frozen(kw_only=True)
class EmitReport:
    """How far one ``emit`` got.

    The first ``settled`` MCPs of the input are done: delivered, or listed in ``failed``
    (rejected for good). The rest (``pending``) were not delivered because of ``error``, a
    sink-level problem (outage, auth, deadline); the caller keeps them and retries later.
    """

    attempted: int
    settled: int
    failed: tuple[FailedMcp, ...] = ()
    error: TransportError | None = None

    @property
    def delivered(self) -> int:
        return self.settled - len(self.failed)

    @property
    def pending(self) -> int:
        return self.attempted - self.settled

    @property
    def ok(self) -> bool:
        """Everything delivered."""
        return self.pending == 0 and not self.failed

    @classmethod
    def all_delivered(cls, count: int) -> EmitReport:
        return cls(attempted=count, settled=count)


class TransportConfig(Protocol):
    """A transport's settings, built from a plain mapping (connection extras, config file)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self: ...


@runtime_checkable
class Transport(Protocol):
    """The interface the sender and the emitter facade use."""

    def emit(
        self, wire_mcps: Sequence[Mapping[str, Any]], *, deadline: float | None = None
    ) -> EmitReport: ...

    def emit_records(
        self, records: Sequence[WireRecord], *, deadline: float | None = None
    ) -> EmitReport: ...

    def flush(self, timeout: float = 2.0) -> None: ...

    def close(self) -> None: ...


TransportFactory = Callable[[], Transport]
"""Builds a transport on the sender's background thread (where resolving a connection may
take time without slowing an Airflow hook)."""


class TransportBase(abc.ABC):
    """Shared plumbing: ``emit`` via ``emit_records``, no-op ``flush``, context manager.

    ``deadline`` everywhere is a ``time.monotonic()`` value after which a transport should stop
    waiting and report :class:`~.errors.DeadlineError` for what it did not finish.
    """

    def emit(
        self, wire_mcps: Sequence[Mapping[str, Any]], *, deadline: float | None = None
    ) -> EmitReport:
        return self.emit_records([WireRecord.from_wire(w) for w in wire_mcps], deadline=deadline)

    @abc.abstractmethod
    def emit_records(
        self, records: Sequence[WireRecord], *, deadline: float | None = None
    ) -> EmitReport:
        """Deliver ``records`` in order; see :class:`EmitReport`."""

    def flush(self, timeout: float = 2.0) -> None:  # noqa: B027  # optional hook, no-op by default
        """Push anything buffered. Transports here write through, so this is a no-op."""

    def close(self) -> None:  # noqa: B027  # optional hook, no-op by default
        """Release sessions, files and connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@attrs.frozen(kw_only=True)
class TransportKind:
    """One registry entry: a kind name and where its config and transport classes live."""

    kind: str
    config_path: str
    transport_path: str

    @staticmethod
    def _load(path: str) -> Any:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    @property
    def config_class(self) -> type[TransportConfig]:
        cls: type[TransportConfig] = self._load(self.config_path)
        return cls

    @property
    def transport_class(self) -> Callable[[Any], Transport]:
        cls: Callable[[Any], Transport] = self._load(self.transport_path)
        return cls

    def create(self, config: Mapping[str, Any] | object) -> Transport:
        """Build the transport from a mapping or an already-built config object."""
        if isinstance(config, Mapping):
            config = self.config_class.from_dict(config)
        return self.transport_class(config)


_PKG = "datahub_airflow_listener.transport"
_REGISTRY: dict[str, TransportKind] = {}


def register_transport(kind: str, config_path: str, transport_path: str) -> TransportKind:
    """Register (or replace) a kind. Paths are ``"package.module.ClassName"``."""
    entry = TransportKind(kind=kind, config_path=config_path, transport_path=transport_path)
    _REGISTRY[kind] = entry
    return entry


def get_transport_kind(kind: str) -> TransportKind:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown transport kind {kind!r}; known: {sorted(_REGISTRY)}") from None


def transport_factory(kind: str, config: Mapping[str, Any] | object) -> TransportFactory:
    """A zero-argument factory for the sender: the transport is built when first needed.

    A mapping is validated now (a bad setting fails at configuration time, not later on the
    background thread).
    """
    entry = get_transport_kind(kind)
    if isinstance(config, Mapping):
        config = entry.config_class.from_dict(config)
    built = config
    return lambda: entry.create(built)


def transport_kinds() -> list[str]:
    return sorted(_REGISTRY)


def create_transport(kind: str, config: Mapping[str, Any] | object) -> Transport:
    """``create_transport("datahub-rest", {"server": ..., "token": ...})``."""
    return get_transport_kind(kind).create(config)


register_transport("datahub-rest", f"{_PKG}.rest.RestConfig", f"{_PKG}.rest.RestTransport")
register_transport("datahub-file", f"{_PKG}.file.FileConfig", f"{_PKG}.file.FileTransport")
register_transport("local", f"{_PKG}.local.LocalConfig", f"{_PKG}.local.LocalStore")
register_transport(
    "recording", f"{_PKG}.recording.RecordingConfig", f"{_PKG}.recording.RecordingTransport"
)
