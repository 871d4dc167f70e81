"""A task's lineage out of Airflow objects: inlets/outlets and what asset aliases resolved to.

Entry points (all never raise; problems come back as warning texts):

* :func:`task_lineage` ``(task, ti=None, *, config=None) -> TaskLineage`` -- the task's
  declared inlets/outlets as urns ``(inlets, outlets, upstream_jobs, warnings)``. With
  ``ti`` (call it when the try ENDS, in the process that ran it) the outlets also hold the
  assets the task's asset aliases resolved to. ``config`` supplies ``cluster`` (dataset env)
  and ``dataset_pattern``.
* :func:`asset_urn` ``(asset, env="PROD") -> str | None`` -- one Airflow Asset/Dataset.
* :func:`log_warnings` -- log each warning once per process (bounded).

What an inlet/outlet may be, on every supported Airflow:

==============================================  ============================================
item                                            read as
==============================================  ============================================
``airflow.sdk.Asset`` / 2.x ``Dataset`` /        its URI, mapped by ``domain.lineage``
3.x scheduler's ``SerializedAsset``
``Asset.ref(uri=...)`` (``AssetUriRef``)         its URI
``Asset.ref(name=...)`` (``AssetNameRef``)       a warning: only the name is known here
``AssetAlias`` / ``DatasetAlias`` (+serialized)  nothing statically; resolved at task end
this package's ``entities.Dataset`` / ``Urn``,   their ``.urn``
the official plugin's entities
their ``repr`` text (what the DAG serializer     the urn it spells (scheduler side)
leaves of them), a ``"urn:li:..."`` string
any other string                                 an asset URI (``domain.lineage``)
==============================================  ============================================

Objects are recognised by class name (and the attribute they carry), not ``isinstance``:
the SDK, the serialized DAG and Airflow 2 each have their own classes.

Asset aliases (``outlet_events[AssetAlias("x")].add(Asset(...))`` inside the task) are
resolved from the task's own outlet events: on Airflow 3 the runner's cached template
context (``ti._cached_template_context["outlet_events"]``, the object the task wrote into);
on Airflow 2 the context is gone when the hook fires, so the try's alias-sourced
``DatasetEvent`` rows are read through the task instance's own session (read-only, no flush,
no commit). The version differences (where the outlet events are) live in :mod:`.compat`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Final

from datahub_airflow_listener.adapter import compat
from datahub_airflow_listener.domain.lineage import (
    PatternLike,
    TaskLineage,
    Unresolved,
    asset_uri_to_urn,
    dataset_env,
    normalize_annotations,
    parse_entity_repr,
)

log = logging.getLogger(__name__)

__all__ = [
    "alias_event_uris",
    "asset_urn",
    "iolet_values",
    "log_warnings",
    "pattern_of",
    "resolved_alias_uris",
    "task_lineage",
]

_ASSET_CLASSES: Final = frozenset({"Asset", "Dataset", "SerializedAsset"})
_URI_REF_CLASSES: Final = frozenset({"AssetUriRef", "SerializedAssetUriRef"})
_NAME_REF_CLASSES: Final = frozenset({"AssetNameRef", "SerializedAssetNameRef"})
_ALIAS_CLASSES: Final = frozenset({"AssetAlias", "DatasetAlias", "SerializedAssetAlias"})
_ALL_ASSET_CLASSES: Final = _ASSET_CLASSES | _URI_REF_CLASSES | _NAME_REF_CLASSES | _ALIAS_CLASSES


def _class_names(item: Any) -> set[str]:
    try:
        return {c.__name__ for c in type(item).__mro__}
    except Exception:
        return set()


def _is_entity(item: Any) -> bool:
    """Has a class-level ``urn`` (a property or method): this package's / the official
    plugin's entities, or a domain Urn. Checked on the class so a bad entity's property is
    not evaluated here (the domain reports it)."""
    return hasattr(type(item), "urn")


def iolet_values(items: Any, *, capture_assets: bool = True) -> tuple[list[object], list[str]]:
    """(plain values for ``domain.lineage``, alias names) of one inlets/outlets list.

    ``capture_assets`` False (config ``capture_airflow_assets``): Airflow Assets, aliases and
    strings that are not urns are left out; entities and urn strings are kept.
    """
    if items is None:
        return [], []
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        items = [items]
    values: list[object] = []
    aliases: list[str] = []
    try:
        listed = list(items)
    except Exception as exc:
        return [Unresolved(shown=f"<{type(items).__name__}>", reason=f"not readable: {exc}")], []
    for item in listed:
        if isinstance(item, str) and not capture_assets:
            if item.strip().startswith("urn:li:") or parse_entity_repr(item) is not None:
                values.append(item)
            continue
        if isinstance(item, str) or _is_entity(item):
            values.append(item)
            continue
        names = _class_names(item)
        if not capture_assets and names & _ALL_ASSET_CLASSES:
            continue
        uri = _safe_attr(item, "uri")
        if names & _ALIAS_CLASSES:
            name = _safe_attr(item, "name")
            if isinstance(name, str) and name:
                aliases.append(name)
            continue
        if names & (_ASSET_CLASSES | _URI_REF_CLASSES) and isinstance(uri, str):
            values.append(uri)
        elif names & _NAME_REF_CLASSES:
            name = _safe_attr(item, "name")
            values.append(
                Unresolved(
                    shown=f"Asset.ref(name={name!r})",
                    reason="only the asset's name is known here "
                    "(use the Asset itself or Asset.ref(uri=...))",
                )
            )
        else:
            values.append(item)  # the domain names its type in the warning
    return values, aliases


def _safe_attr(item: Any, name: str) -> Any:
    try:
        return getattr(item, name, None)
    except Exception:
        return None


def _task_label(task: Any) -> str:
    dag_id = _safe_attr(task, "dag_id")
    task_id = _safe_attr(task, "task_id")
    if isinstance(dag_id, str) and dag_id:
        return f"{dag_id}.{task_id}"
    return str(task_id)


def pattern_of(config: Any) -> PatternLike | None:
    """The configured ``dataset_pattern``, or None when it lets everything through."""
    pattern = _safe_attr(config, "dataset_pattern")
    if pattern is None or not callable(getattr(pattern, "allowed", None)):
        return None
    if getattr(pattern, "allows_all", False):
        return None
    return pattern  # type: ignore[no-any-return]  # checked: has .allowed


def task_lineage(task: Any, ti: Any = None, *, config: Any = None) -> TaskLineage:
    """Inlets, outlets, upstream dataJobs and warnings of ``task`` (never raises).

    ``ti``: the ending try's task instance; when given, the assets its asset aliases resolved
    to are added to the outlets (Airflow 3 in the task process; Airflow 2 where the try ran).
    ``config``: anything with ``cluster``, ``dataset_pattern``, ``capture_airflow_assets``,
    ``asset_connections`` and ``asset_naming`` (the adapter's config); None means defaults.
    """
    label = _task_label(task)
    env = dataset_env(_safe_attr(config, "cluster"))
    pattern = pattern_of(config)
    capture = _safe_attr(config, "capture_airflow_assets") is not False
    try:
        inlets, _ = iolet_values(_safe_attr(task, "inlets"), capture_assets=capture)
        outlets, _aliases = iolet_values(_safe_attr(task, "outlets"), capture_assets=capture)
        warnings: list[str] = []
        if ti is not None and capture:
            resolved, problem = resolved_alias_uris(ti)
            outlets.extend(resolved)
            if problem:
                warnings.append(f"task {label}: asset aliases not resolved: {problem}")
        lineage = normalize_annotations(
            label,
            inlets,
            outlets,
            env=env,
            dataset_pattern=pattern,
            connections=_safe_attr(config, "asset_connections") or None,
            naming=_safe_attr(config, "asset_naming") or "datahub",
        )
    except Exception as exc:  # defensive: a hostile task object
        return TaskLineage((), (), (), (f"task {label}: lineage not read: {exc!r}",))
    if warnings:
        return lineage._replace(warnings=(*lineage.warnings, *warnings))
    return lineage


def asset_urn(asset: Any, env: str = "PROD") -> str | None:
    """The dataset urn of one Airflow Asset/Dataset (None if it names nothing).

    An unknown scheme still gets a urn (the warning is
    only available through :func:`task_lineage`).
    """
    uri = _safe_attr(asset, "uri")
    if not isinstance(uri, str):
        return None
    try:
        urn, _warning = asset_uri_to_urn(uri, env)
    except Exception:
        return None
    return urn


# -- asset aliases --------------------------------------------------------------------------------


def alias_event_uris(outlet_events: Any) -> list[str]:
    """URIs of the assets added through aliases in an ``outlet_events`` accessor.

    Airflow 3: iterating gives Assets and AssetAliases; ``events[alias].asset_alias_events``
    holds ``AssetAliasEvent(dest_asset_key=AssetUniqueKey(name, uri))``. Airflow 2:
    ``events[key].dataset_alias_events`` holds dicts with ``dest_dataset_uri``.
    """
    uris: dict[str, None] = {}
    if outlet_events is None:
        return []
    for key in list(outlet_events):
        accessor = outlet_events[key]
        for event in _alias_events(accessor):
            uri = _event_uri(event)
            if uri:
                uris[uri] = None
    return list(uris)


def _alias_events(accessor: Any) -> Iterator[Any]:
    for name in ("asset_alias_events", "dataset_alias_events"):
        events = getattr(accessor, name, None)
        if events:
            yield from list(events)


def _event_uri(event: Any) -> str | None:
    if isinstance(event, dict):
        uri = event.get("dest_dataset_uri") or event.get("dest_asset_uri")
        return uri if isinstance(uri, str) else None
    key = getattr(event, "dest_asset_key", None)
    uri = getattr(key, "uri", None)
    return uri if isinstance(uri, str) else None


def resolved_alias_uris(ti: Any) -> tuple[list[str], str | None]:
    """(asset URIs the ending try's aliases resolved to, a problem text or None)."""
    try:
        outlet_events = compat.runtime_outlet_events(ti)
        if outlet_events is not None:
            return alias_event_uris(outlet_events), None
        if compat.is_orm_try_of_this_process(ti):
            return compat.alias_uris_from_db(ti), None
    except Exception as exc:
        log.debug("alias resolution failed", exc_info=True)
        return [], f"{type(exc).__name__}: {exc}"
    return [], None


# -- logging --------------------------------------------------------------------------------------


def log_warnings(warnings: Iterable[str]) -> None:
    """Log each lineage warning once per process (the same DAG is seen by many hooks)."""
    from datahub_airflow_listener.adapter.logs import log_once

    for text in warnings:
        log_once(log, logging.WARNING, f"lineage:{text}", text)
