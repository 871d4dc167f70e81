"""Lineage annotations of a task -> DataHub urns: asset URIs, urn strings, entity objects.

Pure (stdlib + attrs): the adapter reduces Airflow objects to plain values first (an Asset to
its URI string, an alias to nothing until it is resolved) and hands them here.

**Asset URIs.** :func:`map_asset_uri` turns an Airflow Asset (3.x) / Dataset (2.x) URI into a
DataHub ``(platform, name)`` named the way DataHub's own ingestion sources name the same
dataset, so lineage from Airflow lands on the entities those sources create. The table is
:data:`SCHEMES`; in short:

==========================================  ===========  =======================================
URI                                         platform     name
==========================================  ===========  =======================================
``s3|s3a|s3n://bucket/key``                 s3           ``bucket/key``
``gs|gcs://bucket/path``                    gcs          ``bucket/path``
``abfs[s]|wasb[s]://container@account/p``   abs          ``container/p``
``hdfs://namenode:port/path``               hdfs         ``/path``
``file:///path`` (``file://host/p``)        file         ``/path`` (``/host/p``)
``sqlite:////abs/db.sqlite``                sqlite       ``/abs/db.sqlite``
``postgres[ql]://host:port/db/schema/tbl``  postgres     ``db.schema.tbl``
``mysql|mariadb://host:port/db/tbl``        mysql        ``db.tbl``
``mssql|sqlserver://host/db/schema/tbl``    mssql        ``db.schema.tbl``
``redshift://host:port/db/schema/tbl``      redshift     ``db.schema.tbl``
``snowflake://account/db/schema/tbl``       snowflake    ``db.schema.tbl`` (lower-cased)
``bigquery://project/dataset/tbl``          bigquery     ``project.dataset.tbl``
``trino|presto://host:port/cat/schema/t``   trino|presto ``cat.schema.t``
``databricks://host/catalog/schema/t``      databricks   ``catalog.schema.t``
``hive://host:port/db/tbl``                 hive         ``db.tbl``
``kafka://broker:port/topic``               kafka        ``topic``
``name`` (no scheme: ``@asset`` names)      airflow      ``name`` as written
``other://host:port/path`` (unknown)        other        ``host:port/path`` + a warning
==========================================  ===========  =======================================

Rules behind the table: the query and fragment never belong to the name; user and password
in the authority never reach a urn; percent-escapes in the path are decoded (the urn builder
re-encodes DataHub's reserved characters); a trailing ``/`` is dropped. SQL paths may also be
written OpenLineage-style, one dotted segment (``postgres://h:5432/db.schema.tbl``). A path
with a different number of segments than expected is still recorded, with a warning. A
``+driver`` suffix on a scheme (``postgresql+psycopg2``) is ignored. An unknown scheme is kept
as its own platform, with a warning: lineage is never dropped silently.

**Official naming.** ``naming="official"`` (config ``asset_naming = official``) names an
asset URI exactly as the official DataHub Airflow plugin's released version 1.7.0.17 does
(:func:`map_asset_uri_official`), for teams whose lineage already lives on those urns: the
authority stays in the name (``postgres://h:5432/db/s/t`` -> ``postgres``, ``h:5432/db/s/t``),
an unknown scheme is its own platform, ``abfs``/``wasb`` are ``abs`` and ``file:///p`` keeps
its leading ``/``. A password in the authority is still never part of a name (Airflow drops
it from asset URIs too); ``connections`` do not apply (that version has none).

**Connections.** Given ``connections`` (the ``asset_connections`` mapping of
:mod:`~.openlineage`), a URI whose ``<scheme>://<host>`` has an entry gets that entry's
platform instance, env, platform, lower-casing and database, exactly as an OpenLineage
dataset of the same connection does (:func:`~.openlineage.named_urn`); without an entry, or
without ``connections``, the urn is the one of the table above.

**Annotations.** :func:`normalize_annotations` takes a task's inlets and outlets as plain
values -- a urn string, an object with ``.urn`` (this package's ``entities.Dataset``/``Urn``,
the official plugin's entities, a domain :class:`~.urns.Urn`), an asset URI string, or the
``repr`` text Airflow's DAG serializer leaves of an entity object -- and returns the input
urns, output urns, upstream dataJob urns and one warning per malformed item. A dataJob urn
among the inlets is an upstream job; dataset and mlModel urns are inputs/outputs. The
``dataset_pattern`` allow/deny filter is matched against ``<platform>:<name>``.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple, Protocol
from urllib.parse import SplitResult, unquote, urlparse, urlsplit

import attrs

from datahub_airflow_listener.domain.errors import DomainError, InvalidUrnError
from datahub_airflow_listener.domain.openlineage import ConnectionDetail, named_urn
from datahub_airflow_listener.domain.urns import (
    FABRIC_TYPES,
    Urn,
    encode_part,
    make_dataset_urn,
    parse_urn,
)

log = logging.getLogger(__name__)

__all__ = [
    "AIRFLOW_ASSET_PLATFORM",
    "ASSET_NAMINGS",
    "OFFICIAL_SCHEMES",
    "SCHEMES",
    "AssetMapping",
    "DatasetPattern",
    "PatternLike",
    "TaskLineage",
    "Unresolved",
    "UriMappingError",
    "annotation_urn",
    "asset_uri_to_urn",
    "dataset_env",
    "dataset_key",
    "filter_urns",
    "map_asset_uri",
    "map_asset_uri_official",
    "normalize_annotations",
    "parse_entity_repr",
]

# Platform of an asset named without a URI scheme (``Asset("orders")``, ``@asset``): the
# official DataHub Airflow plugin names these ``urn:li:dataPlatform:airflow`` too.
AIRFLOW_ASSET_PLATFORM: Final = "airflow"

_URN_PREFIX: Final = "urn:li:"
_MAX_SHOWN: Final = 120


class UriMappingError(DomainError):
    """An asset URI that cannot name a dataset (no bucket, no table, nothing after the scheme)."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"asset URI {_shown(uri)}: {reason}")


@attrs.frozen(kw_only=True)
class AssetMapping:
    """Where an asset URI lands in DataHub; ``warning`` is set when the mapping is a guess."""

    platform: str
    name: str
    warning: str | None = None

    def urn(self, env: str = "PROD") -> str:
        return make_dataset_urn(self.platform, self.name, env)


@attrs.frozen(kw_only=True)
class Unresolved:
    """An annotation the adapter recognised but cannot name (e.g. an asset referenced only by
    name): reported with ``shown`` and ``reason`` like any malformed item, then skipped."""

    shown: str
    reason: str


# -- URI naming rules -----------------------------------------------------------------------------


class _Rule(NamedTuple):
    platform: str
    namer: Callable[[SplitResult, str], tuple[str, str | None]]
    depth: int = 0  # dotted parts of a table name on this platform (0: not a table)


def _host(parts: SplitResult) -> str:
    """The authority without user and password (they must never reach a urn)."""
    return parts.netloc.rpartition("@")[2]


def _segments(path: str) -> list[str]:
    return [unquote(s) for s in path.split("/") if s]


def _bucket_path(parts: SplitResult, uri: str) -> tuple[str, str | None]:
    """Object stores: ``<bucket>/<key>``, the way DataHub's S3/GCS sources name paths."""
    bucket = _host(parts)
    if not bucket:
        raise UriMappingError(uri, "has no bucket")
    return "/".join([bucket, *_segments(parts.path)]), None


def _container_path(parts: SplitResult, uri: str) -> tuple[str, str | None]:
    """Azure: ``<container>/<path>`` (DataHub's ABS source drops the account host).

    ``abfss://container@account.dfs.core.windows.net/p`` carries the container as the
    user part; ``abfs://container/p`` (fsspec style) as the host.
    """
    user, at, host = parts.netloc.rpartition("@")
    container = user if at else host
    if not container:
        raise UriMappingError(uri, "has no container")
    return "/".join([container, *_segments(parts.path)]), None


def _local_path(parts: SplitResult, uri: str) -> tuple[str, str | None]:
    """``file``/``sqlite``: the absolute path.

    Airflow rewrites ``file:////tmp/x`` as ``file://tmp/x``, so a host other than
    ``localhost`` is read back as the first path segment.
    """
    host = _host(parts)
    path = unquote(parts.path)
    if host and host.lower() != "localhost":
        path = f"/{host}{path}"
    path = path.rstrip("/")
    if not path:
        raise UriMappingError(uri, "has no path")
    if not path.startswith("/"):
        path = "/" + path
    return path, None


def _namenode_path(parts: SplitResult, uri: str) -> tuple[str, str | None]:
    """HDFS: the path; the namenode is the data source, not part of the name (OpenLineage)."""
    path = "/" + "/".join(_segments(parts.path))
    if path == "/":
        raise UriMappingError(uri, "has no path")
    return path, None


def _table(depth: int, shape: str, *, project_in_host: bool = False, lower: bool = False) -> Any:
    """SQL-like: path segments joined by ``.`` (``db.schema.table``)."""

    def namer(parts: SplitResult, uri: str) -> tuple[str, str | None]:
        segments = _segments(parts.path)
        if project_in_host and _host(parts):
            segments = [_host(parts), *segments]
        if not segments:
            raise UriMappingError(uri, f"has no table (expected {shape})")
        name = ".".join(segments)
        warning = None
        dotted = len(segments) == 1 and segments[0].count(".") == depth - 1
        if len(segments) != depth and not dotted:
            warning = f"expected {shape}, got {len(segments)} path part(s); named {name!r}"
        return (name.lower() if lower else name), warning

    return namer


def _topic(parts: SplitResult, uri: str) -> tuple[str, str | None]:
    """Kafka: the topic; the brokers are the data source."""
    segments = _segments(parts.path)
    if not segments:
        raise UriMappingError(uri, "has no topic (expected kafka://broker:port/topic)")
    if len(segments) > 1:
        return "/".join(segments), "a Kafka topic has no '/': named the whole path"
    return segments[0], None


def _generic(parts: SplitResult, uri: str) -> tuple[str, str | None]:
    name = "/".join(s for s in [_host(parts), *_segments(parts.path)] if s)
    if not name:
        raise UriMappingError(uri, "names nothing after the scheme")
    return name, None


def _sql(platform: str, depth: int, shape: str, **options: bool) -> _Rule:
    return _Rule(platform, _table(depth, shape, **options), depth)


_THREE = "/database/schema/table"
SCHEMES: Final[Mapping[str, _Rule]] = {
    "s3": _Rule("s3", _bucket_path),
    "s3a": _Rule("s3", _bucket_path),
    "s3n": _Rule("s3", _bucket_path),
    "gs": _Rule("gcs", _bucket_path),
    "gcs": _Rule("gcs", _bucket_path),
    "abfs": _Rule("abs", _container_path),
    "abfss": _Rule("abs", _container_path),
    "wasb": _Rule("abs", _container_path),
    "wasbs": _Rule("abs", _container_path),
    "hdfs": _Rule("hdfs", _namenode_path),
    "file": _Rule("file", _local_path),
    "sqlite": _Rule("sqlite", _local_path),
    "postgres": _sql("postgres", 3, _THREE),
    "postgresql": _sql("postgres", 3, _THREE),
    "mysql": _sql("mysql", 2, "/database/table"),
    "mariadb": _sql("mysql", 2, "/database/table"),
    "mssql": _sql("mssql", 3, _THREE),
    "sqlserver": _sql("mssql", 3, _THREE),
    "redshift": _sql("redshift", 3, _THREE),
    # DataHub's Snowflake source lower-cases urns by default (convert_urns_to_lowercase).
    "snowflake": _sql("snowflake", 3, _THREE, lower=True),
    "bigquery": _sql("bigquery", 3, "project/dataset/table", project_in_host=True),
    "trino": _sql("trino", 3, "/catalog/schema/table"),
    "presto": _sql("presto", 3, "/catalog/schema/table"),
    "databricks": _sql("databricks", 3, "/catalog/schema/table"),
    "hive": _sql("hive", 2, "/database/table"),
    "kafka": _Rule("kafka", _topic),
}


def map_asset_uri(uri: str) -> AssetMapping:
    """The DataHub platform and dataset name of an Airflow asset URI (table above).

    Raises :class:`UriMappingError` when the URI names nothing (``s3://``, ``postgres://h``)
    and :class:`InvalidUrnError` when the result could not be a DataHub name.
    """
    if not isinstance(uri, str):
        raise UriMappingError(repr(uri), f"must be a string, not {type(uri).__name__}")
    text = uri.strip()
    if not text:
        raise UriMappingError(uri, "is empty")
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unbalanced '[' in the authority
        raise UriMappingError(uri, f"cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower().split("+", 1)[0]
    if not scheme or (len(scheme) == 1 and not parts.netloc):
        # No scheme (an @asset / plain name), or a Windows drive letter ("C:\x").
        return AssetMapping(platform=AIRFLOW_ASSET_PLATFORM, name=text)
    rule = SCHEMES.get(scheme)
    if rule is None:
        name, _ = _generic(parts, text)
        platform = encode_part(scheme, "platform")
        note = f"unknown URI scheme {scheme!r}: recorded as DataHub platform {platform!r}"
        return AssetMapping(platform=platform, name=name, warning=note)
    name, warning = rule.namer(parts, text)
    return AssetMapping(platform=rule.platform, name=name, warning=warning)


# The official plugin's scheme -> platform table (released version 1.7.0.17); any other
# scheme is its own platform.
OFFICIAL_SCHEMES: Final[Mapping[str, str]] = {
    "s3": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "abfs": "abs",
    "abfss": "abs",
    "wasb": "abs",
    "wasbs": "abs",
    "dbfs": "dbfs",
    "file": "file",
    "hdfs": "hdfs",
    "postgresql": "postgres",
    "mysql": "mysql",
    "bigquery": "bigquery",
    "snowflake": "snowflake",
}
ASSET_NAMINGS: Final = ("datahub", "official")


def map_asset_uri_official(uri: str) -> AssetMapping:
    """The platform and name the official plugin (1.7.0.17) gives an asset URI.

    Its rule: ``<authority><path>`` without the slashes around it (``file`` URIs without an
    authority keep the leading ``/``); a URI without a scheme is a name on the ``airflow``
    platform, as written. Raises :class:`UriMappingError` when that leaves no name (the
    official plugin skips such an asset).
    """
    if not isinstance(uri, str):
        raise UriMappingError(repr(uri), f"must be a string, not {type(uri).__name__}")
    if not uri:
        raise UriMappingError(uri, "is empty")
    try:
        parts = urlparse(uri)
    except ValueError as exc:
        raise UriMappingError(uri, f"cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme:
        return AssetMapping(platform=AIRFLOW_ASSET_PLATFORM, name=uri)
    platform = OFFICIAL_SCHEMES.get(scheme, scheme)
    netloc = parts.netloc.rpartition("@")[2] if parts.password else parts.netloc
    if netloc:
        name = f"{netloc}{parts.path}".strip("/")
    elif scheme == "file":
        name = parts.path.rstrip("/")
    else:
        name = parts.path.strip("/")
    if not name:
        raise UriMappingError(uri, "names nothing after the scheme")
    return AssetMapping(platform=encode_part(platform, "platform"), name=name)


def asset_uri_to_urn(
    uri: str,
    env: str = "PROD",
    connections: Mapping[str, ConnectionDetail] | None = None,
    naming: str = "datahub",
) -> tuple[str, str | None]:
    """(dataset urn, warning or None) of an asset URI; raises like :func:`map_asset_uri`.

    ``connections`` (keyed as :func:`~.openlineage.parse_connections` returns them) applies
    the entry of the URI's connection, if there is one (see the module docstring).
    ``naming="official"`` names it as the official plugin does (no connections then).
    """
    if naming == "official":
        return map_asset_uri_official(uri).urn(env), None
    mapping = map_asset_uri(uri)
    if connections and mapping.platform != AIRFLOW_ASSET_PLATFORM:
        parts = urlsplit(uri.strip())
        scheme = parts.scheme.lower().split("+", 1)[0]
        rule = SCHEMES.get(scheme)
        urn, note = named_urn(
            scheme,
            parts.netloc,
            mapping.platform,
            mapping.name,
            env=env,
            connections=connections,
            depth=rule.depth if rule is not None else 0,
        )
        return urn, "; ".join(w for w in (mapping.warning, note) if w) or None
    return mapping.urn(env), mapping.warning


def dataset_env(cluster: str | None) -> str:
    """The dataset env for asset URIs: the cluster if it is a DataHub fabric, else PROD."""
    if isinstance(cluster, str) and cluster.strip().upper() in FABRIC_TYPES:
        return cluster.strip().upper()
    return "PROD"


# -- entity reprs (what Airflow's DAG serializer leaves of an entity object) ----------------------

_REPR_RE: Final = re.compile(r"^(?P<cls>Dataset|Urn)\((?P<args>.*)\)$", re.DOTALL)
_DATASET_FIELDS: Final = ("platform", "name", "env", "platform_instance")


def parse_entity_repr(text: str) -> str | None:
    """The urn of an entity object's ``repr``, or None if ``text`` is not one.

    Airflow serializes inlet/outlet objects it does not know with ``str()``, so the DAG the
    scheduler holds has ``"Dataset(platform='hive', name='db.t', env='PROD',
    platform_instance=None)"`` where the DAG file had ``entities.Dataset("hive", "db.t")``.
    Both this package's entities and the official plugin's (``Urn(_urn=...)``) are read back;
    arguments are literals only (``ast.literal_eval``), nothing is executed.
    """
    match = _REPR_RE.match(text.strip()) if isinstance(text, str) else None
    literal = _literal_arguments(match["args"]) if match is not None else None
    if match is None or literal is None:
        return None
    args, kwargs = literal
    if match["cls"] == "Urn":
        values = [*args, *kwargs.values()]
        return values[0] if len(values) == 1 and isinstance(values[0], str) else None
    fields = dict(zip(_DATASET_FIELDS, args, strict=False)) | kwargs
    if set(fields) - set(_DATASET_FIELDS) or not {"platform", "name"} <= set(fields):
        return None
    return make_dataset_urn(
        fields["platform"],
        fields["name"],
        fields.get("env") or "PROD",
        fields.get("platform_instance"),
    )


def _literal_arguments(text: str) -> tuple[list[Any], dict[str, Any]] | None:
    """Positional and keyword arguments of a call's argument text, if all are literals."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        if not isinstance(call, ast.Call):
            return None
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return args, kwargs


# -- annotations ----------------------------------------------------------------------------------


class TaskLineage(NamedTuple):
    """The lineage a task declares: urns in declaration order, without duplicates."""

    inlets: tuple[str, ...]
    outlets: tuple[str, ...]
    upstream_jobs: tuple[str, ...]
    warnings: tuple[str, ...]


_IOLET_TYPES: Final = frozenset({"dataset", "mlModel"})


def annotation_urn(
    value: object,
    env: str = "PROD",
    connections: Mapping[str, ConnectionDetail] | None = None,
    naming: str = "datahub",
) -> tuple[Urn, str | None]:
    """The urn one annotation names, and a warning if its mapping was a guess.

    Raises :class:`DomainError` (an :class:`InvalidUrnError` or :class:`UriMappingError`)
    for a value that names nothing, or a dataset/mlModel urn whose env is not a DataHub
    fabric (the server would reject it); the caller turns that into the task's warning.
    ``connections`` and ``naming`` apply to asset URIs (see :func:`asset_uri_to_urn`).
    """
    urn, warning = _annotation_urn(value, env, connections, naming)
    if urn.entity_type in _IOLET_TYPES and urn.parts[2] not in FABRIC_TYPES:
        raise InvalidUrnError("env", urn.parts[2], "not a DataHub fabric (e.g. PROD, DEV)")
    return urn, warning


def _annotation_urn(
    value: object,
    env: str,
    connections: Mapping[str, ConnectionDetail] | None,
    naming: str = "datahub",
) -> tuple[Urn, str | None]:
    if isinstance(value, Urn):
        return value, None
    if isinstance(value, Unresolved):
        raise InvalidUrnError("annotation", value.shown, value.reason)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(_URN_PREFIX):
            return parse_urn(text), None
        from_repr = parse_entity_repr(text)
        if from_repr is not None:
            return parse_urn(from_repr), None
        urn, warning = asset_uri_to_urn(text, env, connections, naming)
        return parse_urn(urn), warning
    if isinstance(value, bytes | bytearray | int | float | bool) or value is None:
        raise InvalidUrnError("annotation", value, f"unsupported type {type(value).__name__}")
    try:
        attr = value.urn  # type: ignore[attr-defined]  # duck-typed entity objects
    except AttributeError:
        raise InvalidUrnError(
            "annotation",
            value,
            f"unsupported type {type(value).__name__} (expected a urn, an entity or an asset)",
        ) from None
    except Exception as exc:  # an entity whose .urn raises (invalid platform, env...)
        raise InvalidUrnError("annotation", value, f"its .urn failed: {exc}") from None
    if callable(attr):
        attr = attr()
    if isinstance(attr, Urn):
        return attr, None
    if not isinstance(attr, str):
        raise InvalidUrnError("annotation", value, f".urn is a {type(attr).__name__}, not a str")
    return parse_urn(attr.strip()), None


def normalize_annotations(
    task: str,
    inlets: Iterable[object] | None,
    outlets: Iterable[object] | None,
    *,
    env: str = "PROD",
    dataset_pattern: PatternLike | None = None,
    connections: Mapping[str, ConnectionDetail] | None = None,
    naming: str = "datahub",
) -> TaskLineage:
    """Inputs, outputs, upstream jobs and warnings of one task's annotations.

    ``task`` names the task in warnings (e.g. ``"etl.load"``). Every malformed item gets
    exactly one warning naming the task and the value, and is left out; everything else is
    kept. Datasets rejected by ``dataset_pattern`` are left out without a warning (that is
    configuration, not a mistake). ``connections`` and ``naming`` apply to asset URIs (see
    :func:`asset_uri_to_urn`). Never raises for any item.
    """
    ins: dict[str, None] = {}
    outs: dict[str, None] = {}
    jobs: dict[str, None] = {}
    warnings: list[str] = []
    for side, values, target in (("inlet", inlets, ins), ("outlet", outlets, outs)):
        for value in _items(values, side, task, warnings):
            try:
                urn, guess = annotation_urn(value, env, connections, naming)
            except DomainError as exc:
                warnings.append(_warning(task, side, value, f"ignored: {_reason(exc)}"))
                continue
            except Exception as exc:  # a hostile object; still only one warning
                warnings.append(_warning(task, side, value, f"ignored: {type(exc).__name__}"))
                continue
            text = str(urn)
            if urn.entity_type == "dataJob":
                if side == "outlet":
                    warnings.append(
                        _warning(
                            task,
                            side,
                            value,
                            "ignored: a dataJob is an upstream job, list it in inlets",
                        )
                    )
                    continue
                jobs[text] = None
                continue
            if urn.entity_type not in _IOLET_TYPES:
                warnings.append(
                    _warning(
                        task,
                        side,
                        value,
                        f"ignored: a {urn.entity_type} urn is not a dataset, mlModel or dataJob",
                    )
                )
                continue
            if guess is not None:
                warnings.append(_warning(task, side, value, guess))
            if not _allowed(text, dataset_pattern):
                continue
            target[text] = None
    return TaskLineage(
        inlets=tuple(ins), outlets=tuple(outs), upstream_jobs=tuple(jobs), warnings=tuple(warnings)
    )


def _items(
    values: Iterable[object] | None, side: str, task: str, warnings: list[str]
) -> list[object]:
    """The annotations as a list: None is none, one bare value is a list of one."""
    if values is None:
        return []
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        return [values]
    try:
        return list(values)
    except Exception as exc:
        warnings.append(_warning(task, side + "s", values, f"ignored: not iterable ({exc})"))
        return []


def _shown(value: object) -> str:
    if isinstance(value, Unresolved):
        return value.shown
    try:
        shown = value if isinstance(value, str) else repr(value)
    except Exception:
        shown = f"<{type(value).__name__}>"
    shown = repr(shown) if isinstance(value, str) else shown
    if len(shown) > _MAX_SHOWN:
        shown = f"{shown[: _MAX_SHOWN - 20]}...({len(shown)} chars)"
    return shown


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else str(exc)


def _warning(task: str, side: str, value: object, what: str) -> str:
    return f"task {task}: {side} {_shown(value)}: {what}"


# -- dataset_pattern ------------------------------------------------------------------------------


class PatternLike(Protocol):
    """Anything that says whether a ``<platform>:<name>`` key is allowed (the adapter's
    ``AllowDeny`` config object, or :class:`DatasetPattern`)."""

    def allowed(self, value: str) -> bool: ...


@attrs.frozen(kw_only=True)
class DatasetPattern:
    """Allow/deny regexes on ``<platform>:<name>``; deny wins; ``re.match`` (anchored at the
    start), case-insensitive by default -- the shape DataHub's ``AllowDenyPattern`` has."""

    allow: tuple[str, ...] = attrs.field(default=(".*",), converter=tuple)
    deny: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    ignore_case: bool = True
    _compiled: tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]] = attrs.field(
        init=False, repr=False, eq=False
    )

    def __attrs_post_init__(self) -> None:
        flags = re.IGNORECASE if self.ignore_case else 0
        compiled = (
            tuple(re.compile(p, flags) for p in self.allow),
            tuple(re.compile(p, flags) for p in self.deny),
        )
        object.__setattr__(self, "_compiled", compiled)

    def allowed(self, value: str) -> bool:
        allow, deny = self._compiled
        if any(p.match(value) for p in deny):
            return False
        return any(p.match(value) for p in allow)


_DECODE: Final = {"%2C": ",", "%28": "(", "%29": ")", "%E2%90%9F": "\u241f"}
_DECODE_RE: Final = re.compile("|".join(re.escape(k) for k in _DECODE))


def dataset_key(urn: str) -> str | None:
    """``<platform>:<name>`` of a dataset urn (name as written, reserved characters decoded);
    None for any other urn."""
    try:
        parsed = parse_urn(urn)
    except InvalidUrnError:
        return None
    if parsed.entity_type != "dataset":
        return None
    platform = parsed.parts[0][len("urn:li:dataPlatform:") :]
    name = _DECODE_RE.sub(lambda m: _DECODE[m.group(0)], parsed.parts[1])
    return f"{platform}:{name}"


def _allowed(urn: str, pattern: PatternLike | None) -> bool:
    if pattern is None:
        return True
    key = dataset_key(urn)
    return True if key is None else bool(pattern.allowed(key))


def filter_urns(urns: Iterable[str], pattern: PatternLike | None) -> tuple[str, ...]:
    """``urns`` without the datasets ``pattern`` rejects (other entity types are kept)."""
    return tuple(u for u in urns if _allowed(u, pattern))
