"""OpenLineage datasets -> DataHub urns, named as DataHub's own ingestion sources name them.

Pure (stdlib + attrs): the adapter reduces OpenLineage objects to plain ``(namespace, name)``
strings first. The point of the naming is that lineage reported by an operator lands on the
very entities DataHub's warehouse, lake and stream sources create, instead of on look-alikes.

**The table.** :data:`NAMESPACES` maps a namespace scheme (the part before ``://``) to a
DataHub platform and to how the OpenLineage name becomes the DataHub name; in short:

====================================================  ==========  ==================================
OpenLineage namespace, name                           platform    DataHub name
====================================================  ==========  ==================================
``postgres[ql]://host:port``, ``db.schema.t``         postgres    ``db.schema.t``
``redshift://cluster.region:port``, ``db.schema.t``   redshift    ``db.schema.t``
``mysql://host:port``, ``db.t``                       mysql       ``db.t``
``mariadb://host:port``, ``db.t``                     mariadb     ``db.t``
``snowflake://org-account``, ``DB.SCHEMA.T``          snowflake   ``db.schema.t`` (lower-cased)
``bigquery``, ``project.dataset.t``                   bigquery    ``project.dataset.t``
``mssql|sqlserver://host:port``, ``db.schema.t``      mssql       ``db.schema.t``
``oracle://host:port``, ``SERVICE.SCHEMA.T``          oracle      ``schema.t`` (lower-cased)
``trino://host:port``, ``catalog.schema.t``           trino       ``catalog.schema.t``
``presto://host:port``, ``catalog.schema.t``          presto      ``catalog.schema.t``
``awsathena|athena://athena.<region>``, ``cat.db.t``  athena      ``db.t``
``databricks://host``, ``catalog.schema.t``           databricks  ``catalog.schema.t``
``hive://host:port``, ``db.t``                        hive        ``db.t``
``teradata://host:port``, ``db.t``                    teradata    ``db.t``
``sqlite`` or ``sqlite://path``, ``db.t``             sqlite      ``db.t`` (``db``: the file's stem)
``s3|s3a|s3n://bucket``, ``key``                      s3          ``bucket/key``
``gs|gcs://bucket``, ``key``                          gcs         ``bucket/key``
``abfs[s]|wasb[s]://container@account``, ``p``        abs         ``container/p``
``hdfs://namenode:port``, ``/path``                   hdfs        ``/path``
``file`` or ``file://host``, ``/path``                file        ``/path``
``kafka://broker:port``, ``topic``                    kafka       ``topic``
``other://...``, ``name`` (not in the table)          other       ``name`` + a warning
====================================================  ==========  ==================================

Rules behind the table:

* The namespace's authority (host, account, cluster) identifies a connection, never a part of
  the name -- except the bucket or container of object stores, which DataHub's S3, GCS and
  ABS sources put first in the name. A ``+driver`` suffix on a scheme is ignored.
* Table names are split at ``.``. Empty parts and literal ``None`` parts (a producer that
  formatted an unset schema into the name) are dropped. A leading part that DataHub's source
  leaves out is dropped: Oracle's service name (the source names ``schema.table``), Athena's
  catalog (``database.table``). A name with fewer parts than the platform's sources use gets
  the connection's ``database`` in front (for SQLite also the stem of a database file named in
  the namespace); any other count is kept, with a warning.
* Casing follows each source's default: the Snowflake and Oracle sources lower-case names
  (and column names, see :func:`column_lineage`); every other platform keeps them as written.
  A connection's ``convert_urns_to_lowercase`` overrides the default, for any platform.
* A scheme that is not in the table becomes its own platform (lower-cased), the name is kept
  as given, and a warning names the scheme: lineage is never dropped silently.

**Connections.** :func:`parse_connections` reads the ``[datahub] asset_connections`` setting
of the official DataHub Airflow plugin: a JSON object keyed by ``<scheme>://<authority>``
whose entries may set ``platform``, ``platform_instance``, ``database``, ``env`` and
``convert_urns_to_lowercase``. Keys are canonical (:func:`connection_key`): the scheme becomes
its platform, so ``postgresql://h:5432`` and ``postgres://h:5432`` are one connection. An
entry supplies what a namespace cannot carry: the platform instance the warehouse was
ingested with (the name becomes ``<instance>.<name>``, as DataHub's
``make_dataset_urn_with_platform_instance`` does), an env, casing and a missing database.

:func:`ol_dataset_urn` never raises for a non-blank name: a name with surrounding whitespace
is stripped, characters that are not text are replaced, and a name too long for a urn is
shortened with a digest of the whole, each with a warning. A blank name names nothing and
raises :class:`OpenLineageNameError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

import attrs

from datahub_airflow_listener.domain.aspects import (
    FineGrainedLineage,
    FineGrainedLineageDownstreamType,
    FineGrainedLineageUpstreamType,
)
from datahub_airflow_listener.domain.errors import DomainError, InvalidUrnError
from datahub_airflow_listener.domain.urns import (
    FABRIC_TYPES,
    encode_part,
    make_dataset_urn,
    parse_urn,
)

log = logging.getLogger(__name__)

__all__ = [
    "NAMESPACES",
    "ConnectionDetail",
    "OpenLineageNameError",
    "column_lineage",
    "connection_key",
    "named_urn",
    "ol_dataset_urn",
    "parse_connections",
    "platform_for_scheme",
    "schema_field_urn",
]

_MAX_SHOWN: Final = 80
_FALLBACK_PLATFORM: Final = "unknown"


class OpenLineageNameError(DomainError):
    """An OpenLineage dataset that names nothing: a blank name (or one that is not text)."""

    def __init__(self, namespace: str, name: str, reason: str) -> None:
        self.namespace = namespace
        self.name = name
        self.reason = reason
        super().__init__(f"OpenLineage dataset {_shown(name)} in {_shown(namespace)}: {reason}")


@attrs.frozen(kw_only=True)
class ConnectionDetail:
    """How one connection's datasets are named in DataHub (one ``asset_connections`` entry).

    Every field is optional; None leaves the platform's own rule in force. ``lowercase`` is
    the entry's ``convert_urns_to_lowercase``.
    """

    platform: str | None = None
    platform_instance: str | None = None
    database: str | None = None
    env: str | None = None
    lowercase: bool | None = None


# -- the naming table -----------------------------------------------------------------------------


class _Naming(NamedTuple):
    """How one namespace scheme is named in DataHub.

    ``kind``: ``table`` (dotted parts), ``bucket`` / ``container`` (object stores: the
    authority, then the path), ``path`` (a file-system path), ``topic`` (kept as is).
    ``depth``: the parts DataHub's source uses; ``extra``: leading parts a producer adds that
    the source leaves out; ``lowercase``: the source lower-cases names by default.
    """

    platform: str
    kind: str
    shape: str = ""
    depth: int = 0
    extra: int = 0
    lowercase: bool = False
    file_database: bool = False


_T3: Final = "database.schema.table"
_T2: Final = "database.table"
_C3: Final = "catalog.schema.table"

NAMESPACES: Final[Mapping[str, _Naming]] = {
    "postgres": _Naming("postgres", "table", _T3, 3),
    "postgresql": _Naming("postgres", "table", _T3, 3),
    "redshift": _Naming("redshift", "table", _T3, 3),
    "mysql": _Naming("mysql", "table", _T2, 2),
    "mariadb": _Naming("mariadb", "table", _T2, 2),
    # DataHub's Snowflake source lower-cases urns by default (convert_urns_to_lowercase).
    "snowflake": _Naming("snowflake", "table", _T3, 3, lowercase=True),
    "bigquery": _Naming("bigquery", "table", "project.dataset.table", 3),
    "mssql": _Naming("mssql", "table", _T3, 3),
    "sqlserver": _Naming("mssql", "table", _T3, 3),
    # DataHub's Oracle source names schema.table (add_database_name_to_urn is off by default)
    # and reads names through SQLAlchemy, which lower-cases Oracle's upper-case identifiers.
    "oracle": _Naming("oracle", "table", "schema.table", 2, extra=1, lowercase=True),
    "trino": _Naming("trino", "table", _C3, 3),
    "presto": _Naming("presto", "table", _C3, 3),
    # DataHub's Athena source names database.table; the catalog is not part of the name.
    "awsathena": _Naming("athena", "table", _T2, 2, extra=1),
    "athena": _Naming("athena", "table", _T2, 2, extra=1),
    "databricks": _Naming("databricks", "table", _C3, 3),
    "hive": _Naming("hive", "table", _T2, 2),
    "teradata": _Naming("teradata", "table", _T2, 2),
    "sqlite": _Naming("sqlite", "table", _T2, 2, file_database=True),
    "s3": _Naming("s3", "bucket"),
    "s3a": _Naming("s3", "bucket"),
    "s3n": _Naming("s3", "bucket"),
    "gs": _Naming("gcs", "bucket"),
    "gcs": _Naming("gcs", "bucket"),
    "abfs": _Naming("abs", "container"),
    "abfss": _Naming("abs", "container"),
    "wasb": _Naming("abs", "container"),
    "wasbs": _Naming("abs", "container"),
    "hdfs": _Naming("hdfs", "path"),
    "file": _Naming("file", "file"),
    "kafka": _Naming("kafka", "topic"),
}

_LOWERCASE_PLATFORMS: Final = frozenset(n.platform for n in NAMESPACES.values() if n.lowercase)
_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_PLATFORM_RE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_NOT_PLATFORM_RE: Final = re.compile(r"[^a-z0-9_.\-]+")


def _scheme(text: str) -> str:
    return text.strip().lower().split("+", 1)[0]


def platform_for_scheme(scheme: str) -> str:
    """The DataHub platform of a namespace or URI scheme: the table's, else the scheme itself
    (lower-cased, ``+driver`` dropped)."""
    key = _scheme(scheme)
    naming = NAMESPACES.get(key)
    return naming.platform if naming is not None else key


def _platform_token(text: str) -> str:
    """A urn-safe platform made of ``text`` (schemes not in the table can be anything)."""
    token = _NOT_PLATFORM_RE.sub("-", text.lower()).strip("-.")[:64].strip("-.")
    return token or _FALLBACK_PLATFORM


def _split_namespace(namespace: str) -> tuple[str, str]:
    """(scheme, authority): ``postgres://h:5432`` -> (postgres, h:5432); ``bigquery`` ->
    (bigquery, ""). The authority keeps anything after it (a path some producers add)."""
    text = namespace.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, sep, rest = text.partition(":")
        if not sep or not _SCHEME_RE.fullmatch(scheme):
            scheme, rest = text, ""
    return _scheme(scheme), rest.strip()


# -- connections ----------------------------------------------------------------------------------


def connection_key(scheme: str, authority: str) -> str:
    """The canonical ``asset_connections`` key of a connection: ``<platform>://<authority>``,
    lower-cased, no trailing ``/``, no user or password. ``postgresql``/``postgres`` and
    ``sqlserver``/``mssql`` give one key. An Azure authority (``container@account``) is kept
    whole: its ``@`` does not separate a user."""
    platform = platform_for_scheme(scheme)
    host = authority.strip()
    if platform != "abs":
        host = host.rpartition("@")[2]
    return f"{platform}://{host}".rstrip("/").lower()


def _canonical_key(key: str) -> str:
    text = key.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = text, ""
    return connection_key(scheme, rest)


_FIELDS: Final = {
    "platform": "platform",
    "platform_instance": "platform_instance",
    "database": "database",
    "env": "env",
    "convert_urns_to_lowercase": "lowercase",
}


def parse_connections(
    value: str | Mapping[str, object] | None,
) -> tuple[dict[str, ConnectionDetail], tuple[str, ...]]:
    """``asset_connections`` (JSON text or an already decoded object) -> (connections keyed by
    :func:`connection_key`, one warning text per problem).

    Never raises: a value that is not a JSON object maps nothing; an entry that is not an
    object is left out; a field of the wrong type or value is left unset; an unknown field is
    reported and the rest of its entry is used. Two keys naming one connection: the later wins.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}, ()
    decoded: object = value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError) as exc:
            return {}, (f"not valid JSON ({exc}); no connection is mapped",)
    if not isinstance(decoded, Mapping):
        got = type(decoded).__name__
        return {}, (f"expected a JSON object of connection -> settings, got {got}",)
    connections: dict[str, ConnectionDetail] = {}
    seen: dict[str, str] = {}
    problems: list[str] = []
    for key, entry in decoded.items():
        if not isinstance(key, str) or not key.strip():
            problems.append(f"entry key {_shown(key)} is not a connection; ignored")
            continue
        detail = _detail(key, entry, problems)
        if detail is None:
            continue
        canonical = _canonical_key(key)
        if canonical in seen:
            problems.append(
                f"{key!r} and {seen[canonical]!r} name one connection ({canonical}); "
                f"{key!r} is used"
            )
        seen[canonical] = key
        connections[canonical] = detail
    return connections, tuple(problems)


def _detail(key: str, entry: object, problems: list[str]) -> ConnectionDetail | None:
    if isinstance(entry, ConnectionDetail):
        return entry
    if not isinstance(entry, Mapping):
        problems.append(f"{key!r}: expected an object of settings, got {type(entry).__name__}")
        return None
    unknown = sorted(str(k) for k in entry if k not in _FIELDS)
    if unknown:
        known = ", ".join(_FIELDS)
        problems.append(
            f"{key!r}: unknown setting(s) {', '.join(unknown)} ignored (known: {known})"
        )
    values: dict[str, object] = {}
    for field, attr in _FIELDS.items():
        raw = entry.get(field)
        if raw is None:
            continue
        checked = _setting(field, raw)
        if isinstance(checked, _Bad):
            problems.append(f"{key!r}: {field} {_shown(raw)} {checked.reason}; ignored")
            continue
        values[attr] = checked
    return ConnectionDetail(**values)  # type: ignore[arg-type]  # each value checked by _setting


class _Bad(NamedTuple):
    reason: str


def _setting(field: str, raw: object) -> object:
    if field == "convert_urns_to_lowercase":
        return raw if isinstance(raw, bool) else _Bad("is not true or false")
    if not isinstance(raw, str) or not raw.strip():
        return _Bad("is not a non-empty string")
    text = raw.strip()
    if field == "env":
        return text.upper() if text.upper() in FABRIC_TYPES else _Bad("is not a DataHub fabric")
    if field == "platform" and not _PLATFORM_RE.fullmatch(text):
        return _Bad("is not a platform name (letters, digits, '_', '.', '-')")
    try:
        encode_part(text, field)
    except InvalidUrnError as exc:
        return _Bad(exc.reason)
    return text


def _lookup(
    connections: Mapping[str, ConnectionDetail] | None, scheme: str, authority: str
) -> ConnectionDetail | None:
    if not connections:
        return None
    detail = connections.get(connection_key(scheme, authority))
    return detail if isinstance(detail, ConnectionDetail) else None


# -- naming ---------------------------------------------------------------------------------------


def ol_dataset_urn(
    namespace: str,
    name: str,
    *,
    env: str = "PROD",
    connections: Mapping[str, ConnectionDetail] | None = None,
) -> tuple[str, str | None]:
    """(dataset urn, warning or None) of an OpenLineage dataset, named per the table above.

    ``connections`` is keyed as :func:`parse_connections` returns it. ``env`` that is not a
    DataHub fabric is recorded as PROD, with a warning. Raises :class:`OpenLineageNameError`
    only for a blank ``name``; for any other text it returns a urn :func:`~.urns.parse_urn`
    accepts.
    """
    named = _resolve(namespace, name, env, connections)
    return named.urn, _joined(named.warnings)


def named_urn(
    scheme: str,
    authority: str,
    platform: str,
    name: str,
    *,
    env: str = "PROD",
    connections: Mapping[str, ConnectionDetail] | None = None,
    depth: int = 0,
) -> tuple[str, str | None]:
    """(urn, warning or None) of a dataset already named in DataHub's form (as the Airflow
    Asset mapping names it), with the connection ``<scheme>://<authority>`` applied: its
    platform, platform instance and env, lower-casing when it sets
    ``convert_urns_to_lowercase`` (false cannot restore a case the name no longer has), and
    its database in front of a table name with fewer than ``depth`` dotted parts (0: the name
    is not a table). Without a matching connection the urn is ``make_dataset_urn(platform,
    name, env)``. Raises :class:`OpenLineageNameError` for a blank name only.
    """
    warnings: list[str] = []
    text = _clean(name, warnings)
    if not text:
        raise OpenLineageNameError(f"{scheme}://{authority}", name, "the name is empty")
    detail = _lookup(connections, scheme, authority)
    if detail is not None:
        platform = detail.platform or platform
        if detail.database and len(text.split(".")) < depth:
            text = f"{detail.database}.{text}"
    lowercase = bool(detail.lowercase) if detail is not None else False
    urn = _finish(platform, text, env=env, detail=detail, lowercase=lowercase, warnings=warnings)
    return urn, _joined(warnings)


class _Named(NamedTuple):
    urn: str
    platform: str
    warnings: tuple[str, ...]


def _resolve(
    namespace: str,
    name: str,
    env: str,
    connections: Mapping[str, ConnectionDetail] | None,
) -> _Named:
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise OpenLineageNameError(str(namespace), str(name), "namespace and name must be strings")
    warnings: list[str] = []
    text = _clean(name, warnings)
    if not text:
        raise OpenLineageNameError(namespace, name, "the name is empty")
    scheme, authority = _split_namespace(_clean(namespace, warnings))
    naming = NAMESPACES.get(scheme)
    detail = _lookup(connections, scheme, authority)
    configured = detail.platform if detail is not None else None
    if naming is None:
        platform = configured or _platform_token(scheme)
        if configured is None:
            shown = scheme or "(none)"
            warnings.append(
                f"namespace scheme {shown!r} is not in the naming table: recorded as "
                f"DataHub platform {platform!r} with the name as given"
            )
    else:
        platform = configured or naming.platform
        text = _rename(naming, authority, text, detail, warnings)
    if detail is not None and detail.lowercase is not None:
        lowercase = detail.lowercase
    else:
        lowercase = platform in _LOWERCASE_PLATFORMS
    urn = _finish(platform, text, env=env, detail=detail, lowercase=lowercase, warnings=warnings)
    return _Named(urn, platform, tuple(warnings))


def _rename(
    naming: _Naming,
    authority: str,
    name: str,
    detail: ConnectionDetail | None,
    warnings: list[str],
) -> str:
    """The name in DataHub's form for a scheme in the table (casing aside)."""
    host = authority.split("/", 1)[0]
    if naming.kind == "table":
        database = detail.database if detail is not None else None
        if database is None and naming.file_database:
            database = _file_stem(authority)
        return _table(naming, name, database, warnings)
    if naming.kind == "bucket":
        return "/".join(p for p in (host, name.strip("/")) if p) or name
    if naming.kind == "container":
        user, at, account = host.rpartition("@")
        container = user if at else account
        return "/".join(p for p in (container, name.strip("/")) if p) or name
    if naming.kind == "path":
        return "/" + name.strip("/")
    if naming.kind == "file":
        return name.rstrip("/") or name
    return name


def _table(naming: _Naming, name: str, database: str | None, warnings: list[str]) -> str:
    parts = name.split(".")
    kept = [p for p in parts if p.strip() and p != "None"]
    if not kept:
        warnings.append(f"table name {_shown(name)} has no usable part; kept as given")
        return name
    if len(kept) != len(parts):
        warnings.append(f"table name {_shown(name)}: empty or 'None' parts dropped")
    if naming.extra and len(kept) == naming.depth + naming.extra:
        kept = kept[naming.extra :]
    if len(kept) < naming.depth and database:
        kept = [database, *kept]
    if len(kept) != naming.depth:
        hint = ""
        if len(kept) < naming.depth:
            hint = "; a missing database can be set on the connection in asset_connections"
        warnings.append(
            f"{naming.platform} datasets are named {naming.shape}, got {len(kept)} part(s) in "
            f"{_shown(name)}{hint}"
        )
    return ".".join(kept)


def _file_stem(authority: str) -> str | None:
    """``/data/app.db`` -> ``app``: the database name of a SQLite file named in a namespace."""
    if "/" not in authority:
        return None
    base = authority.rstrip("/").rpartition("/")[2]
    stem = base.rsplit(".", 1)[0] if "." in base[1:] else base
    return stem.strip() or None


def _clean(text: str, warnings: list[str]) -> str:
    """``text`` without surrounding whitespace, lone surrogates replaced (they are not text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        warnings.append(f"{_shown(text)} is not valid unicode; replaced what is not text")
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.strip()


def _finish(
    platform: str,
    name: str,
    *,
    env: str,
    detail: ConnectionDetail | None,
    lowercase: bool,
    warnings: list[str],
) -> str:
    """Casing, env and platform instance applied; a urn whatever the parts hold."""
    if lowercase:
        name = name.lower()
    name = name.strip() or name
    fabric = _fabric(detail.env if detail is not None and detail.env else env, warnings)
    instance = detail.platform_instance if detail is not None else None
    if not _PLATFORM_RE.fullmatch(platform):
        warnings.append(f"platform {_shown(platform)} is not a platform name; made one of it")
        platform = _platform_token(platform)
    if instance is not None:
        try:
            encode_part(instance, "platform_instance")
        except InvalidUrnError as exc:
            warnings.append(f"platform instance {_shown(instance)} {exc.reason}; left out")
            instance = None
    try:
        return make_dataset_urn(platform, name, fabric, instance)
    except InvalidUrnError:
        pass  # the only failure left: the urn is too long once URL-encoded
    warnings.append(f"name {_shown(name)} is too long for a urn; shortened with a digest")
    return _shortened(platform, name, fabric, instance)


def _shortened(platform: str, name: str, env: str, instance: str | None) -> str:
    """The longest prefix of ``name`` that fits, plus ``~`` and a digest of the whole name:
    deterministic, and distinct for distinct names."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    for inst in (instance, None):
        best: str | None = None
        low, high = 0, len(name)
        while low <= high:
            mid = (low + high) // 2
            candidate = f"{name[:mid].rstrip()}~{digest}"
            try:
                best = make_dataset_urn(platform, candidate, env, inst)
            except InvalidUrnError:
                high = mid - 1
            else:
                low = mid + 1
        if best is not None:
            return best
    return make_dataset_urn(platform, digest, env)


def _fabric(env: str, warnings: list[str]) -> str:
    fabric = env.strip().upper() if isinstance(env, str) else ""
    if fabric in FABRIC_TYPES:
        return fabric
    warnings.append(f"env {_shown(env)} is not a DataHub fabric; recorded as PROD")
    return "PROD"


# -- columns --------------------------------------------------------------------------------------


def schema_field_urn(dataset_urn: str, field_path: str) -> str:
    """``urn:li:schemaField:(<dataset urn>,<field>)``, the field encoded like any urn part.

    Raises :class:`~.errors.InvalidUrnError` for a dataset urn that does not parse, a blank
    field or a urn too long for DataHub.
    """
    parse_urn(dataset_urn)
    urn = f"urn:li:schemaField:({dataset_urn},{encode_part(field_path, 'field_path')})"
    parse_urn(urn)
    return urn


def column_lineage(
    output_urn: str,
    fields: Mapping[str, Sequence[tuple[str, str, str]]],
    *,
    env: str = "PROD",
    connections: Mapping[str, ConnectionDetail] | None = None,
) -> tuple[FineGrainedLineage, ...]:
    """One :class:`FineGrainedLineage` per output column of ``output_urn``, sorted by column.

    ``fields`` maps an output column to its input fields as ``(namespace, name, field)``
    (OpenLineage's ``columnLineage`` facet as plain values). Input datasets are named like
    :func:`ol_dataset_urn`; upstreams are their fields' schemaField urns, sorted and without
    duplicates. Field names on platforms whose source lower-cases column names (Snowflake,
    Oracle) are lower-cased. An input that cannot be named (blank dataset name or field) is
    left out, and a column left with no input gets no record. Never raises for string input.
    """
    try:
        output_platform = parse_urn(output_urn).parts[0].rpartition(":")[2]
    except InvalidUrnError:
        log.debug("column lineage of %r skipped: not a urn", output_urn)
        return ()
    named: dict[tuple[str, str], _Named | None] = {}
    out: list[FineGrainedLineage] = []
    for column in sorted(fields):
        upstreams: set[str] = set()
        for namespace, name, field in fields[column]:
            key = (namespace, name)
            if key not in named:
                try:
                    named[key] = _resolve(namespace, name, env, connections)
                except DomainError:
                    named[key] = None
            dataset = named[key]
            if dataset is None:
                continue
            try:
                upstreams.add(schema_field_urn(dataset.urn, _field(dataset.platform, field)))
            except (DomainError, AttributeError):
                continue
        if not upstreams:
            continue
        try:
            downstream = schema_field_urn(output_urn, _field(output_platform, column))
        except (DomainError, AttributeError):
            continue
        out.append(
            FineGrainedLineage(
                upstream_type=FineGrainedLineageUpstreamType.FIELD_SET,
                upstreams=tuple(sorted(upstreams)),
                downstream_type=FineGrainedLineageDownstreamType.FIELD,
                downstreams=(downstream,),
            )
        )
    return tuple(out)


def _field(platform: str, field: str) -> str:
    text = field.strip()
    return text.lower() if platform in _LOWERCASE_PLATFORMS else text


# -- text -----------------------------------------------------------------------------------------


def _joined(warnings: Sequence[str]) -> str | None:
    return "; ".join(warnings) if warnings else None


def _shown(value: object) -> str:
    try:
        shown = repr(value)
    except Exception:
        shown = f"<{type(value).__name__}>"
    if len(shown) > _MAX_SHOWN:
        shown = f"{shown[: _MAX_SHOWN - 20]}...({len(shown)} chars)"
    return shown
