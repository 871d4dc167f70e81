"""A fake GMS that also answers the read and delete endpoints the CLI uses.

:class:`FakeGmsRead` extends :class:`tests.support.fake_gms.FakeGms` (ingestion, ``/config``,
auth, failure switches) with what ``runs`` and ``cleanup --source gms`` call, answering from
the MCPs it accepted (or was :meth:`seed`-ed with), as a GMS would (DATAHUB_WIRE.md):

* ``GET /relationships?direction=INCOMING&urn=<urn>&types=<T>|List(T,...)&start=&count=`` --
  ``InstanceOf`` (``dataProcessInstanceRelationships.parentTemplate``), ``ChildOf``
  (``parentInstance``), ``IsPartOf`` (a DataJob's flow, for DataJobs with an aspect); answered
  ``{"start", "count", "total", "relationships": [{"type", "entity"}]}``; soft-deleted
  entities are still returned (as a GMS's graph does).
* ``GET /entitiesV2/<urn>[?aspects=List(a,b)]`` -- ``{"urn", "aspects": {name: {"name",
  "type", "version", "value"}}}`` with the latest of each versioned aspect; 404 if unknown.
* ``POST /aspects?action=getTimeseriesAspectValues`` -- run events newest first, each
  ``{"aspect": {"value": "<json>", "contentType"}, "systemMetadata"}``, keyed like the server
  (same timestamp/partition/messageId overwrite).
* ``POST /entities?action=listUrns`` and ``POST /entities?action=delete`` (hard delete:
  every aspect and run event of the urn; ``{"value": {"urn", "rows", "timeseriesRows"}}``).

``fail_reads_next(n, status)`` makes the next ``n`` of these requests fail (a flaky GMS).
Requests are validated: the Rest.li protocol header, the token, required parameters and body
fields, no unknown body fields, a urn that parses; a violation is answered 400 and listed in
:attr:`violations` (assert it stays empty). Every delete is listed in :attr:`deleted`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.fake_gms import FakeGms, _error, _Handler

TIMESERIES = frozenset({"dataProcessInstanceRunEvent"})
RELATIONSHIP_TYPES = frozenset({"InstanceOf", "ChildOf", "IsPartOf"})


def _aspect_of(mcp: dict[str, Any]) -> dict[str, Any]:
    aspect = mcp["aspect"]
    if "json" in aspect:
        return dict(aspect["json"])
    return dict(json.loads(aspect["value"]))


def _entity_type(urn: str) -> str:
    return urn[len("urn:li:") :].split(":", 1)[0]


def _list_param(value: str) -> list[str]:
    """``X`` or Rest.li 2.0's ``List(X,Y)``."""
    if value.startswith("List(") and value.endswith(")"):
        value = value[len("List(") : -1]
    return [v for v in value.split(",") if v]


class _BadRequestError(Exception):
    pass


class FakeGmsRead(FakeGms):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deleted: list[str] = []
        self._read_failures: list[int] = []

    def fail_reads_next(self, count: int, status: int = 503) -> None:
        """The next ``count`` read/delete requests fail with ``status`` (after the auth check)."""
        with self._lock:
            self._read_failures.extend([status] * count)

    # ------------------------------------------------------------------ state

    def seed(self, mcps: list[dict[str, Any]]) -> None:
        """Load MCPs (wire or file form) as if they had been ingested."""
        with self._lock:
            for mcp in mcps:
                wire = dict(mcp)
                if "json" in wire["aspect"]:
                    value = json.dumps(wire["aspect"]["json"])
                    wire["aspect"] = {"value": value, "contentType": "application/json"}
                self.mcps.append(wire)
                self.accepted_count += 1

    def _state(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[Any, dict[str, Any]]]]:
        """(urn -> {aspect: value}, urn -> {event key: mcp}) from what was accepted."""
        with self._lock:
            mcps = list(self.mcps)
        aspects: dict[str, dict[str, Any]] = {}
        events: dict[str, dict[Any, dict[str, Any]]] = {}
        for mcp in mcps:
            urn, name = mcp["entityUrn"], mcp["aspectName"]
            value = _aspect_of(mcp)
            if name in TIMESERIES:
                key = (
                    value.get("timestampMillis"),
                    value.get("partitionSpec")
                    and json.dumps(value["partitionSpec"], sort_keys=True),
                    value.get("messageId"),
                )
                events.setdefault(urn, {})[key] = mcp
            else:
                aspects.setdefault(urn, {})[name] = value
        return aspects, events

    def removed(self, urn: str) -> bool:
        aspects, _ = self._state()
        return bool(aspects.get(urn, {}).get("status", {}).get("removed"))

    def urns(self) -> set[str]:
        aspects, events = self._state()
        return set(aspects) | set(events)

    def _relationships(self, urn: str, types: list[str]) -> list[tuple[str, str]]:
        aspects, _ = self._state()
        out = []
        for source, values in aspects.items():
            rel = values.get("dataProcessInstanceRelationships", {})
            if "InstanceOf" in types and rel.get("parentTemplate") == urn:
                out.append(("InstanceOf", source))
            if "ChildOf" in types and rel.get("parentInstance") == urn:
                out.append(("ChildOf", source))
            if (
                "IsPartOf" in types
                and source.startswith("urn:li:dataJob:(")
                and source[len("urn:li:dataJob:(") :].startswith(urn + ",")
            ):
                out.append(("IsPartOf", source))
        return sorted(out, key=lambda r: r[1])

    # ------------------------------------------------------------------ requests

    def _violation(self, message: str) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.violations.append(message)
        return 400, _error(400, f"Invalid request: {message}"), {}

    def _check_common(self, handler: _Handler) -> tuple[int, Any, dict[str, str]] | None:
        if handler.headers.get("X-RestLi-Protocol-Version") != "2.0.0":
            return self._violation("missing X-RestLi-Protocol-Version: 2.0.0")
        if not self._authorized(handler):
            return 401, _error(401, "Unauthorized to perform this action."), {}
        with self._lock:
            if self._read_failures:
                status = self._read_failures.pop(0)
                return status, _error(status, "temporarily unavailable"), {}
        return None

    def handle_get(self, handler: _Handler) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(handler.path)
        if parts.path == "/relationships":
            refused = self._check_common(handler)
            return refused or self._get_relationships(parse_qs(parts.query))
        if parts.path.startswith("/entitiesV2/"):
            refused = self._check_common(handler)
            if refused:
                return refused
            urn = unquote(parts.path[len("/entitiesV2/") :])
            return self._get_entity(urn, parse_qs(parts.query))
        return super().handle_get(handler)

    def _get_relationships(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        try:
            for name in query:
                if name not in {"direction", "urn", "types", "start", "count"}:
                    raise _BadRequestError(f"unknown query parameter {name}")
            direction = query.get("direction", [""])[0]
            if direction != "INCOMING":
                raise _BadRequestError(f"direction must be INCOMING here, got {direction!r}")
            urn = query.get("urn", [""])[0]
            if not urn.startswith("urn:li:"):
                raise _BadRequestError(f"bad urn {urn!r}")
            types = [t for v in query.get("types", []) for t in _list_param(v)]
            if not types or set(types) - RELATIONSHIP_TYPES:
                raise _BadRequestError(
                    f"types must be among {sorted(RELATIONSHIP_TYPES)}, got {types}"
                )
            start = int(query.get("start", ["0"])[0])
            count = int(query.get("count", ["100"])[0])
        except (_BadRequestError, ValueError) as exc:
            return self._violation(f"/relationships: {exc}")
        found = self._relationships(urn, types)
        page = found[start : start + count]
        body = {
            "start": start,
            "count": len(page),
            "total": len(found),
            "relationships": [{"type": t, "entity": e} for t, e in page],
        }
        return 200, body, {}

    def _get_entity(self, urn: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        if not urn.startswith("urn:li:") or ("(" in urn and not urn.endswith(")")):
            return self._violation(f"/entitiesV2: bad urn {urn!r}")
        aspects, _ = self._state()
        values = aspects.get(urn)
        if not values:
            return 404, _error(404, f"Entity {urn} not found"), {}
        wanted = [a for v in query.get("aspects", []) for a in _list_param(v)]
        body = {
            "urn": urn,
            "aspects": {
                name: {"name": name, "type": "VERSIONED", "version": 0, "value": value}
                for name, value in values.items()
                if not wanted or name in wanted
            },
        }
        return 200, body, {}

    def handle_post(self, handler: _Handler, body: str) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(handler.path)
        action = parse_qs(parts.query).get("action", [""])[0]
        read_actions = {
            ("/aspects", "getTimeseriesAspectValues"): self._timeseries,
            ("/entities", "listUrns"): self._list_urns,
            ("/entities", "delete"): self._delete,
        }
        handle = read_actions.get((parts.path, action))
        if handle is None:
            return super().handle_post(handler, body)
        refused = self._check_common(handler)
        if refused:
            return refused
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("body must be a JSON object")
            return handle(payload)
        except (ValueError, _BadRequestError) as exc:
            return self._violation(f"{parts.path}?action={action}: {exc}")

    def _timeseries(self, payload: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        allowed = {"urn", "entity", "aspect", "limit", "startTimeMillis", "endTimeMillis", "filter"}
        if set(payload) - allowed:
            raise _BadRequestError(f"unrecognized field(s) {sorted(set(payload) - allowed)}")
        for field in ("urn", "entity", "aspect"):
            if not isinstance(payload.get(field), str):
                raise _BadRequestError(f"missing {field}")
        if payload["entity"] != _entity_type(payload["urn"]):
            raise _BadRequestError(f"entity {payload['entity']!r} does not match the urn")
        if payload["aspect"] not in TIMESERIES:
            raise _BadRequestError(f"{payload['aspect']} is not a timeseries aspect")
        limit = payload.get("limit", 10000)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _BadRequestError(f"limit must be a positive integer, got {limit!r}")
        _, events = self._state()
        values = sorted(
            events.get(payload["urn"], {}).values(),
            key=lambda m: _aspect_of(m)["timestampMillis"],
            reverse=True,
        )
        start = payload.get("startTimeMillis")
        end = payload.get("endTimeMillis")
        values = [
            m
            for m in values
            if (start is None or _aspect_of(m)["timestampMillis"] >= start)
            and (end is None or _aspect_of(m)["timestampMillis"] <= end)
        ][:limit]
        body = {
            "value": {
                "entityName": payload["entity"],
                "aspectName": payload["aspect"],
                "limit": limit,
                "values": [
                    {
                        "aspect": {
                            "value": json.dumps(_aspect_of(m)),
                            "contentType": "application/json",
                        },
                        "systemMetadata": m.get("systemMetadata", {}),
                    }
                    for m in values
                ],
            }
        }
        return 200, body, {}

    def _list_urns(self, payload: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if set(payload) - {"entity", "start", "count"} or not isinstance(
            payload.get("entity"), str
        ):
            raise _BadRequestError(f"expected entity, start, count; got {sorted(payload)}")
        start, count = int(payload.get("start", 0)), int(payload.get("count", 100))
        aspects, _ = self._state()
        urns = sorted(u for u in aspects if _entity_type(u) == payload["entity"])
        page = urns[start : start + count]
        body = {"value": {"entities": page, "start": start, "count": len(page), "total": len(urns)}}
        return 200, body, {}

    def _delete(self, payload: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if set(payload) != {"urn"} or not isinstance(payload["urn"], str):
            raise _BadRequestError(f"expected exactly {{'urn': ...}}, got {sorted(payload)}")
        urn = payload["urn"]
        if not urn.startswith("urn:li:"):
            raise _BadRequestError(f"bad urn {urn!r}")
        with self._lock:
            mine = [m for m in self.mcps if m["entityUrn"] == urn]
            self.mcps = [m for m in self.mcps if m["entityUrn"] != urn]
            self.deleted.append(urn)
        rows = len({m["aspectName"] for m in mine if m["aspectName"] not in TIMESERIES})
        series = sum(1 for m in mine if m["aspectName"] in TIMESERIES)
        return 200, {"value": {"urn": urn, "rows": rows, "timeseriesRows": series}}, {}
