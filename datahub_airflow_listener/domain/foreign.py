"""MCPs built by other code, carried in their wire form: what DAGs hand to the emitter operator.

Pure (stdlib + attrs). :func:`proposals_of` accepts, duck-typed, whatever a DAG written for
the official DataHub plugin passes to ``DatahubEmitterOperator(mces=[...])``:

* this package's :class:`~.mcp.MetadataChangeProposal` (kept as is);
* anything with ``to_obj()`` returning a wire-form MCP (acryl-datahub's
  ``MetadataChangeProposalWrapper`` and ``MetadataChangeProposalClass``), or such a dict
  itself, with the aspect as ``{"value": "<JSON text>", "contentType": "application/json"}``
  or inline as ``{"json": {...}}``;
* a MetadataChangeEvent (acryl-datahub's ``MetadataChangeEventClass``, e.g. from
  ``make_lineage_mce``): one proposal per aspect of its snapshot, named by the aspect's own
  ``ASPECT_NAME`` (or, from a plain dict, by its record's class name).

Each foreign item becomes a :class:`WireProposal`, which the sender serializes like any other
MCP (same envelope, this process's ``lastObserved`` and ``runId``). Its aspect is kept as
JSON, not checked against DataHub's schemas: the server validates it, as it would have for
the official emitter. :func:`map_strings` rewrites every string of a proposal (the operator
renders Jinja templates with it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from datahub_airflow_listener.domain.encode import dumps
from datahub_airflow_listener.domain.errors import InvalidAspectError
from datahub_airflow_listener.domain.mcp import Envelope, MetadataChangeProposal
from datahub_airflow_listener.domain.urns import parse_urn

__all__ = ["WireProposal", "map_strings", "proposals_of", "to_wire_proposal"]

_CONTENT_TYPE: Final = "application/json"
_SNAPSHOT_KEY: Final = "proposedSnapshot"


@attrs.frozen(kw_only=True)
class WireProposal(Envelope):
    """One UPSERT (or other change type) whose aspect is JSON another library produced."""

    entity_urn: str
    entity_type: str
    aspect_name: str
    aspect: Mapping[str, Any] = attrs.field(repr=False)
    change_type: str = "UPSERT"

    def aspect_dict(self) -> dict[str, Any]:
        return dict(self.aspect)

    def aspect_json(self) -> str:
        return dumps(self.aspect)


Proposal = MetadataChangeProposal | WireProposal


def _bad(item: object, reason: str) -> InvalidAspectError:
    return InvalidAspectError("mces", type(item).__name__, reason)


def _entity_type(urn: str) -> str:
    return parse_urn(urn).entity_type


def _from_wire_dict(data: Mapping[str, Any], item: object) -> WireProposal:
    urn, name = data.get("entityUrn"), data.get("aspectName")
    if not isinstance(urn, str) or not isinstance(name, str) or not name:
        raise _bad(item, "not an MCP: it needs entityUrn and aspectName")
    raw = data.get("aspect")
    if isinstance(raw, Mapping) and "json" in raw:
        aspect = raw["json"]
    elif isinstance(raw, Mapping) and isinstance(raw.get("value"), str | bytes):
        content_type = raw.get("contentType") or _CONTENT_TYPE
        if content_type != _CONTENT_TYPE:
            raise _bad(item, f"aspect content type {content_type!r} is not {_CONTENT_TYPE}")
        try:
            aspect = json.loads(raw["value"])
        except ValueError as exc:
            raise _bad(item, f"its aspect is not JSON ({exc})") from None
    else:
        raise _bad(item, "no aspect (a patch or a delete cannot be sent this way)")
    if not isinstance(aspect, Mapping):
        raise _bad(item, "its aspect is not a JSON object")
    change = data.get("changeType") or "UPSERT"
    change = getattr(change, "value", change)  # an enum
    entity_type = data.get("entityType") or _entity_type(urn)
    return WireProposal(
        entity_urn=urn,
        entity_type=str(entity_type),
        aspect_name=name,
        aspect=dict(aspect),
        change_type=str(change),
    )


def _aspect_name_of_record(key: str) -> str:
    """``com.linkedin...UpstreamLineage`` -> ``upstreamLineage`` (DataHub's convention)."""
    short = key.rsplit(".", 1)[-1]
    return short[:1].lower() + short[1:]


def _from_snapshot_dict(snapshot: Mapping[str, Any], item: object) -> list[WireProposal]:
    if len(snapshot) != 1:
        raise _bad(item, "a MetadataChangeEvent's snapshot has one entity")
    (body,) = snapshot.values()
    urn = body.get("urn") if isinstance(body, Mapping) else None
    if not isinstance(urn, str):
        raise _bad(item, "its snapshot has no urn")
    out = []
    for wrapped in body.get("aspects") or []:
        if not isinstance(wrapped, Mapping) or len(wrapped) != 1:
            raise _bad(item, "a snapshot aspect is a one-key object")
        ((record, aspect),) = wrapped.items()
        out.append(
            WireProposal(
                entity_urn=urn,
                entity_type=_entity_type(urn),
                aspect_name=_aspect_name_of_record(record),
                aspect=dict(aspect),
            )
        )
    return out


def _from_snapshot_object(snapshot: Any, item: object) -> list[WireProposal] | None:
    """An acryl-datahub snapshot object: each aspect names itself (``ASPECT_NAME``)."""
    urn = getattr(snapshot, "urn", None)
    aspects = getattr(snapshot, "aspects", None)
    if not isinstance(urn, str) or aspects is None:
        return None
    out = []
    for aspect in aspects:
        name = getattr(aspect, "ASPECT_NAME", None)
        to_obj = getattr(aspect, "to_obj", None)
        if not isinstance(name, str) or not callable(to_obj):
            return None
        out.append(
            WireProposal(
                entity_urn=urn,
                entity_type=_entity_type(urn),
                aspect_name=name,
                aspect=dict(to_obj()),
            )
        )
    return out


def proposals_of(item: object) -> list[Proposal]:
    """The proposals one item stands for (see the module docstring); InvalidAspectError
    (a :class:`~.errors.DomainError`) naming the problem for anything else."""
    if isinstance(item, MetadataChangeProposal | WireProposal):
        return [item]
    snapshot = getattr(item, _SNAPSHOT_KEY, None) if not isinstance(item, Mapping) else None
    if snapshot is not None:
        found = _from_snapshot_object(snapshot, item)
        if found is not None:
            return list(found)
    data: Any = item
    if not isinstance(item, Mapping):
        to_obj = getattr(item, "to_obj", None)
        if not callable(to_obj):
            raise _bad(item, "not an MCP, a MetadataChangeEvent or anything with to_obj()")
        data = to_obj()
        if not isinstance(data, Mapping):
            raise _bad(item, "its to_obj() is not a JSON object")
    if _SNAPSHOT_KEY in data:
        return list(_from_snapshot_dict(data[_SNAPSHOT_KEY], item))
    return [_from_wire_dict(data, item)]


def to_wire_proposal(proposal: Proposal) -> WireProposal:
    """Any proposal as a :class:`WireProposal` (a domain MCP through its file form)."""
    if isinstance(proposal, WireProposal):
        return proposal
    return _from_wire_dict(proposal.to_file_form(last_observed=0), proposal)


def map_strings(proposal: Proposal, fn: Callable[[str], str]) -> WireProposal:
    """``proposal`` with ``fn`` applied to its urn and every string inside its aspect (keys
    too). The entity type follows the urn."""
    wire = to_wire_proposal(proposal)
    urn = fn(wire.entity_urn)
    return attrs.evolve(
        wire,
        entity_urn=urn,
        entity_type=_entity_type(urn) if urn != wire.entity_urn else wire.entity_type,
        aspect=_map(wire.aspect, fn),
    )


def _map(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, Mapping):
        return {fn(str(k)): _map(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map(v, fn) for v in value]
    return value
