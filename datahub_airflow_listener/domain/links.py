"""Links between runs: the other runs a run follows, and the asset events it consumed.

The adapter reads these facts from Airflow's metadata database; the rules that turn them into
``upstreamInstances`` and input edges live here, pure:

* :class:`RunRef` -- another run's process instance: a DAG run (no ``task_id``) or a task run
  (with its map index).
* :class:`ConsumedEvent` -- one asset event a DAG run consumed: the dataset it names, when it
  was recorded, its ``extra``, and the task run that produced it (None for an event created
  through the REST API or by an asset watcher).
* :class:`RunLinks` -- what a DAG run's instance links to: its upstream runs (the producers of
  the events it consumed, the task that triggered it) and its input edges, one per dataset:
  the latest event consumed (point-in-time lineage), ``created`` = that event's time and its
  ``extra`` as the edge's properties.
* :func:`upstream_map_indexes` -- which map indexes of an upstream task a task run follows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

__all__ = [
    "ConsumedEvent",
    "ConsumedInput",
    "RunLinks",
    "RunRef",
    "extra_properties",
    "sorted_refs",
    "upstream_map_indexes",
]

# An edge property is a string; a huge ``extra`` value is cut to keep the aspect small.
MAX_PROPERTY_CHARS: Final = 4000


@attrs.frozen(kw_only=True)
class RunRef:
    """Another run's instance: the DAG run ``(dag_id, run_id)`` when ``task_id`` is None,
    else the task run ``(dag_id, task_id, run_id, map_index)``."""

    dag_id: str
    run_id: str
    task_id: str | None = None
    map_index: int = -1

    @property
    def sort_key(self) -> tuple[str, str, int, str, int]:
        """DAG, run, then the DAG run before its task runs, by task id and map index."""
        has_task = 0 if self.task_id is None else 1
        return (self.dag_id, self.run_id, has_task, self.task_id or "", self.map_index)


def _props(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(sorted((value or {}).items()))


@attrs.frozen(kw_only=True)
class ConsumedEvent:
    """One asset event a DAG run consumed (see the module docstring). ``dataset_urn`` is None
    for an asset that names no dataset here (filtered out): its producer is still upstream."""

    dataset_urn: str | None
    timestamp_ms: int
    properties: Mapping[str, str] = attrs.field(factory=dict, converter=_props)
    producer: RunRef | None = None
    event_id: int = 0


@attrs.frozen(kw_only=True)
class ConsumedInput:
    """An input edge of a DAG run: a dataset, when the event consumed was recorded, its extra."""

    dataset_urn: str
    timestamp_ms: int
    properties: Mapping[str, str]


def sorted_refs(values: Iterable[RunRef]) -> tuple[RunRef, ...]:
    """Distinct refs in a stable order (:attr:`RunRef.sort_key`)."""
    return tuple(sorted(set(values), key=lambda r: r.sort_key))


def _events(values: Iterable[ConsumedEvent]) -> tuple[ConsumedEvent, ...]:
    return tuple(sorted(values, key=lambda e: (e.dataset_urn or "", e.timestamp_ms, e.event_id)))


@attrs.frozen(kw_only=True)
class RunLinks:
    """What a DAG run's instance links to (see the module docstring).

    ``triggered_by``: the task run that triggered this run (``TriggerDagRunOperator``).
    Equal facts give equal links whatever order they were read in.
    """

    triggered_by: tuple[RunRef, ...] = attrs.field(default=(), converter=sorted_refs)
    consumed: tuple[ConsumedEvent, ...] = attrs.field(default=(), converter=_events)

    @property
    def empty(self) -> bool:
        return not self.triggered_by and not self.consumed

    def upstream(self) -> tuple[RunRef, ...]:
        """The runs this run follows: who triggered it, who produced what it consumed."""
        producers = (e.producer for e in self.consumed if e.producer is not None)
        return sorted_refs((*self.triggered_by, *producers))

    def inputs(self) -> tuple[ConsumedInput, ...]:
        """One input per dataset: the latest event consumed (ties: the highest event id)."""
        latest: dict[str, ConsumedEvent] = {}
        for event in self.consumed:
            if event.dataset_urn is None:
                continue
            seen = latest.get(event.dataset_urn)
            if seen is None or (event.timestamp_ms, event.event_id) > (
                seen.timestamp_ms,
                seen.event_id,
            ):
                latest[event.dataset_urn] = event
        return tuple(
            ConsumedInput(dataset_urn=urn, timestamp_ms=e.timestamp_ms, properties=e.properties)
            for urn, e in sorted(latest.items())
        )


def extra_properties(extra: object) -> dict[str, str]:
    """An asset event's ``extra`` as edge properties: strings kept, other values as compact
    sorted JSON (so every process writes the same text), each cut at
    :data:`MAX_PROPERTY_CHARS`. Anything but a mapping gives no properties."""
    if not isinstance(extra, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, value in extra.items():
        if value is None:
            continue
        if isinstance(value, str):
            text = value
        else:
            try:
                text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
            except (TypeError, ValueError):
                text = str(value)
        out[str(key)] = text[:MAX_PROPERTY_CHARS]
    return out


def upstream_map_indexes(
    existing: Iterable[int],
    *,
    map_index: int,
    same_mapped_group: bool,
) -> tuple[int, ...]:
    """The map indexes of an upstream task that a task run (at ``map_index``) follows.

    ``existing``: the upstream task's instances in the run (-1 when it was not expanded).
    A task follows every instance of its upstream task, except inside one mapped task group,
    where index ``i`` follows index ``i`` only (Airflow's own rule for such groups).
    """
    indexes = sorted(set(existing))
    if same_mapped_group and map_index >= 0 and map_index in indexes:
        return (map_index,)
    return tuple(indexes)
