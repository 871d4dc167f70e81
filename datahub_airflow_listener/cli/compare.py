"""The ``compare`` command: two MCP files side by side (e.g. the official plugin's and ours).

``compare OLD NEW`` reads two files in DataHub's file format (a JSON array of MCPs, the aspect
inline as ``{"json": ...}`` or as JSON text: what a ``datahub-file`` connection writes) and
lists, per entity and aspect, what only OLD has, what only NEW has, and what both have with
different fields; timeseries aspects (run events, operations) are counted, not compared.
It exits 1 when something OLD has is missing from NEW (a switch must keep at least what there
was), else 0. Reads only the two files: no Airflow, no network.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from datahub_airflow_listener.cli import CliError
from datahub_airflow_listener.cli.output import out

__all__ = ["Comparison", "cmd_compare", "compare_mcps"]

_TIMESERIES: Final = frozenset({"dataProcessInstanceRunEvent", "operation"})

Key = tuple[str, str]


class Comparison:
    """What two lists of MCPs say, entity by entity and aspect by aspect."""

    def __init__(self, old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> None:
        self.old, self.old_events = _index(old)
        self.new, self.new_events = _index(new)

    @property
    def only_old(self) -> list[Key]:
        keys = set(self.old) | set(self.old_events)
        return sorted(k for k in keys if k not in self.new and k not in self.new_events)

    @property
    def only_new(self) -> list[Key]:
        keys = set(self.new) | set(self.new_events)
        return sorted(k for k in keys if k not in self.old and k not in self.old_events)

    @property
    def different(self) -> list[tuple[Key, list[str]]]:
        out = []
        for key in sorted(set(self.old) & set(self.new)):
            fields = _different_fields(self.old[key], self.new[key])
            if fields:
                out.append((key, fields))
        return out

    @property
    def same(self) -> int:
        return len(set(self.old) & set(self.new)) - len(self.different)


def _aspect(mcp: Mapping[str, Any]) -> Any:
    raw = mcp.get("aspect") or {}
    if "json" in raw:
        return raw["json"]
    value = raw.get("value")
    return json.loads(value) if isinstance(value, str) else value


def _index(
    mcps: Iterable[Mapping[str, Any]],
) -> tuple[dict[Key, Any], Counter[Key]]:
    latest: dict[Key, Any] = {}
    events: Counter[Key] = Counter()
    for mcp in mcps:
        key = (str(mcp.get("entityUrn")), str(mcp.get("aspectName")))
        if key[1] in _TIMESERIES:
            events[key] += 1
        else:
            latest[key] = _aspect(mcp)  # a later version of an aspect replaces the earlier
    return latest, events


def _different_fields(old: Any, new: Any) -> list[str]:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return [] if old == new else ["<value>"]
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def compare_mcps(old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> Comparison:
    return Comparison(old, new)


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise CliError(f"{path} is not a JSON array of MCPs (DataHub's file format)")
    return data


def _entity(urn: str) -> str:
    return urn[len("urn:li:") :].split(":", 1)[0] if urn.startswith("urn:li:") else "?"


def cmd_compare(args: argparse.Namespace) -> int:
    old_path, new_path = Path(args.old).expanduser(), Path(args.new).expanduser()
    old, new = _read(old_path), _read(new_path)
    result = compare_mcps(old, new)
    out(f"comparing {old_path} ({len(old)} MCPs) with {new_path} ({len(new)} MCPs)")
    kinds = sorted({_entity(u) for u, _ in [*result.old, *result.new]})
    for kind in kinds:
        in_old = {u for u, _ in result.old if _entity(u) == kind}
        in_new = {u for u, _ in result.new if _entity(u) == kind}
        out(f"  {kind}: {len(in_old)} in {old_path.name}, {len(in_new)} in {new_path.name}")
    for urn, aspect in result.only_old:
        out(f"only in {old_path.name}: {aspect} of {urn}")
    for urn, aspect in result.only_new:
        out(f"only in {new_path.name}: {aspect} of {urn}")
    if args.fields:
        for (urn, aspect), fields in result.different:
            out(f"different: {aspect} of {urn}: {', '.join(fields)}")
    out(
        f"{result.same} aspect(s) the same, {len(result.different)} different, "
        f"{len(result.only_old)} only in {old_path.name}, "
        f"{len(result.only_new)} only in {new_path.name}"
    )
    return 1 if result.only_old else 0
