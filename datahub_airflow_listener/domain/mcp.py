"""The MetadataChangeProposal envelope and the one canonical serializer.

Two forms leave this module:

* the Rest.li wire form (:meth:`MetadataChangeProposal.to_wire`): the aspect is a JSON *string*
  with ASCII escaping (the field is bytes on the server), as ``ingestProposal`` expects;
* the file form (:meth:`MetadataChangeProposal.to_file_form`): the aspect inline as
  ``{"json": {...}}``, as DataHub's file source and ``datahub check metadata-file`` read it.

Keys come in a fixed order and None is dropped, so the output of the same MCP is byte-identical
from any process; golden files diff cleanly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

import attrs

from datahub_airflow_listener.domain.aspects import ASPECT_CLASSES, Aspect, aspect_to_dict
from datahub_airflow_listener.domain.encode import aspect_to_json, dumps
from datahub_airflow_listener.domain.errors import InvalidAspectError
from datahub_airflow_listener.domain.urns import parse_urn

__all__ = [
    "Envelope",
    "MetadataChangeProposal",
    "MetadataChangeProposalWrapper",
    "dumps",
    "from_wire",
]


def _entity_type_of(urn: str) -> str:
    if not isinstance(urn, str) or not urn.startswith("urn:li:"):
        # Raise the domain's typed error with the field name.
        parse_urn(urn)
    return urn[len("urn:li:") :].split(":", 1)[0]


def _check_aspect(instance: MetadataChangeProposal, attribute: Any, aspect: Any) -> None:
    if not isinstance(aspect, Aspect):
        raise InvalidAspectError("aspect", aspect, "not a DataHub aspect of this package")
    entity_type = _entity_type_of(instance.entity_urn)
    if entity_type not in aspect.ENTITY_TYPES:
        raise InvalidAspectError(
            "aspect", aspect.ASPECT_NAME, f"not allowed on a {entity_type} entity"
        )


class Envelope:
    """The MCP envelope around one aspect, in both forms; subclasses say what the aspect is
    (this package's :class:`MetadataChangeProposal`, or JSON another library produced)."""

    entity_urn: str
    change_type: str

    @property
    def entity_type(self) -> str:
        raise NotImplementedError

    @property
    def aspect_name(self) -> str:
        raise NotImplementedError

    def aspect_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def aspect_json(self) -> str:
        """The aspect as compact ASCII JSON text (the wire's ``aspect.value``)."""
        raise NotImplementedError

    def _envelope(
        self,
        aspect: dict[str, Any],
        run_id: str | None,
        last_observed: int | None,
        properties: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        system: dict[str, Any] = {
            "lastObserved": last_observed if last_observed is not None else int(time.time() * 1000),
            "runId": run_id or "no-run-id-provided",
        }
        if properties:
            system["properties"] = dict(properties)
        return {
            "entityType": self.entity_type,
            "entityUrn": self.entity_urn,
            "changeType": self.change_type,
            "aspectName": self.aspect_name,
            "aspect": aspect,
            "systemMetadata": system,
        }

    def to_wire(
        self,
        *,
        run_id: str | None = None,
        last_observed: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The Rest.li envelope for ``ingestProposal``: JSON-ready, aspect as a JSON string."""
        aspect = {"value": self.aspect_json(), "contentType": "application/json"}
        return self._envelope(aspect, run_id, last_observed, properties)

    def to_wire_json(
        self,
        *,
        run_id: str | None = None,
        last_observed: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> str:
        return dumps(
            self.to_wire(run_id=run_id, last_observed=last_observed, properties=properties)
        )

    def to_file_form(
        self,
        *,
        run_id: str | None = None,
        last_observed: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The form DataHub's file source reads: ``"aspect": {"json": {...}}``."""
        return self._envelope({"json": self.aspect_dict()}, run_id, last_observed, properties)

    def to_obj(self) -> dict[str, Any]:
        return self.to_wire()


@attrs.frozen(kw_only=True)
class MetadataChangeProposal(Envelope):
    """One UPSERT of one aspect on one entity."""

    entity_urn: str
    aspect: Aspect = attrs.field(validator=_check_aspect)
    change_type: str = "UPSERT"

    @property
    def entity_type(self) -> str:
        return _entity_type_of(self.entity_urn)

    @property
    def aspect_name(self) -> str:
        return self.aspect.ASPECT_NAME

    def aspect_dict(self) -> dict[str, Any]:
        return aspect_to_dict(self.aspect)

    def aspect_json(self) -> str:
        return aspect_to_json(self.aspect)

    def to_wire_json(
        self,
        *,
        run_id: str | None = None,
        last_observed: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> str:
        """``dumps(self.to_wire(...))``, byte for byte, written as text without the dict.

        The sender serializes every MCP once, on its hot path; this halves that cost.
        """
        observed = last_observed if last_observed is not None else int(time.time() * 1000)
        if properties or observed.__class__ is not int:  # rare: the generic path
            return dumps(self.to_wire(run_id=run_id, last_observed=observed, properties=properties))
        return (
            f'{{"entityType":{_quote(self.entity_type)},"entityUrn":{_quote(self.entity_urn)},'
            f'"changeType":{_quote(self.change_type)},"aspectName":{_quote(self.aspect_name)},'
            f'"aspect":{{"value":{_quote(aspect_to_json(self.aspect))},'
            f'"contentType":"application/json"}},"systemMetadata":{{"lastObserved":{observed!r},'
            f'"runId":{_quote(run_id or "no-run-id-provided")}}}}}'
        )

    # Seed-API conveniences (DataHub's MetadataChangeProposalWrapper has these names).
    @property
    def entityUrn(self) -> str:  # noqa: N802  # the seed's camelCase name
        return self.entity_urn

    @property
    def aspectName(self) -> str:  # noqa: N802  # the seed's camelCase name
        return self.aspect_name


def MetadataChangeProposalWrapper(  # noqa: N802  # the seed's class-like factory name
    *,
    entityUrn: str,  # noqa: N803  # seed names
    aspect: Aspect,
    changeType: str = "UPSERT",  # noqa: N803  # seed names
) -> MetadataChangeProposal:
    """The seed's constructor spelling for :class:`MetadataChangeProposal`."""
    return MetadataChangeProposal(entity_urn=entityUrn, aspect=aspect, change_type=changeType)


def file_form_to_wire(item: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one file-form MCP (``{"json": ...}``) into the Rest.li wire form."""
    out = dict(item)
    aspect = item.get("aspect") or {}
    if "json" in aspect:
        out["aspect"] = {"value": dumps(aspect["json"]), "contentType": "application/json"}
    return out


def wire_to_file_form(item: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one Rest.li wire MCP (aspect as a JSON string) into the file form."""
    out = dict(item)
    aspect = item.get("aspect") or {}
    if "value" in aspect:
        out["aspect"] = {"json": json.loads(aspect["value"])}
    return out


def from_wire(item: Mapping[str, Any]) -> MetadataChangeProposal:
    """Parse a wire- or file-form MCP produced by this package back into domain objects."""
    aspect_name = item["aspectName"]
    cls = ASPECT_CLASSES.get(aspect_name)
    if cls is None:
        raise InvalidAspectError("aspectName", aspect_name, "unknown to this package")
    raw = item["aspect"]
    data = raw["json"] if "json" in raw else json.loads(raw["value"])
    from datahub_airflow_listener.domain.parse import aspect_from_dict

    return MetadataChangeProposal(
        entity_urn=item["entityUrn"],
        aspect=aspect_from_dict(cls, data),
        change_type=item.get("changeType", "UPSERT"),
    )


def wire_batch(
    mcps: Iterable[MetadataChangeProposal], *, run_id: str | None = None
) -> list[dict[str, Any]]:
    """Serialize many MCPs with one shared lastObserved (what a batch request sends)."""
    now = int(time.time() * 1000)
    return [m.to_wire(run_id=run_id, last_observed=now) for m in mcps]
