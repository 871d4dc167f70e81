"""DataHub aspects used by process instances and their templates, as frozen attrs classes.

Python names are snake_case; :func:`aspect_to_dict` is the one place that turns them into
DataHub's camelCase JSON (None dropped, enums to their values, unions wrapped where DataHub
wraps them, keys in the order DataHub's schema declares them). Each aspect class names the
entity types it is allowed on, so an MCP can refuse, say, browsePathsV2 on a process instance.
The wire path uses :func:`~datahub_airflow_listener.domain.encode.aspect_to_json`, a compiled
equivalent of ``dumps(aspect_to_dict(...))`` that gives the same bytes (tested as a property).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

__all__ = [
    "ASPECT_CLASSES",
    "Aspect",
    "AuditStamp",
    "BrowsePathEntry",
    "BrowsePathsV2",
    "Container",
    "DataFlowInfo",
    "DataJobInfo",
    "DataJobInputOutput",
    "DataPlatformInstance",
    "DataProcessInstanceInput",
    "DataProcessInstanceOutput",
    "DataProcessInstanceProperties",
    "DataProcessInstanceRelationships",
    "DataProcessInstanceRunEvent",
    "DataProcessRunStatus",
    "DataProcessType",
    "DataTransform",
    "DataTransformLogic",
    "DatasetKey",
    "Edge",
    "FineGrainedLineage",
    "FineGrainedLineageDownstreamType",
    "FineGrainedLineageUpstreamType",
    "GlobalTags",
    "MlModelKey",
    "Operation",
    "OperationSourceType",
    "OperationType",
    "Owner",
    "Ownership",
    "OwnershipSource",
    "OwnershipSourceType",
    "OwnershipType",
    "QueryLanguage",
    "QueryStatement",
    "RunResult",
    "RunResultType",
    "Status",
    "SubTypes",
    "TagAssociation",
    "TimeStamp",
    "aspect_to_dict",
    "to_json_value",
]

DEFAULT_ACTOR = "urn:li:corpuser:datahub"


class DataProcessType(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    BATCH_SCHEDULED = "BATCH_SCHEDULED"
    BATCH_AD_HOC = "BATCH_AD_HOC"
    STREAMING = "STREAMING"


class DataProcessRunStatus(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    STARTED = "STARTED"
    COMPLETE = "COMPLETE"


class RunResultType(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"
    UP_FOR_RETRY = "UP_FOR_RETRY"


class OwnershipType(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    TECHNICAL_OWNER = "TECHNICAL_OWNER"
    BUSINESS_OWNER = "BUSINESS_OWNER"
    DATA_STEWARD = "DATA_STEWARD"
    NONE = "NONE"
    DEVELOPER = "DEVELOPER"
    DATAOWNER = "DATAOWNER"


class OwnershipSourceType(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    AUDIT = "AUDIT"
    DATABASE = "DATABASE"
    FILE_SYSTEM = "FILE_SYSTEM"
    ISSUE_TRACKING_SYSTEM = "ISSUE_TRACKING_SYSTEM"
    MANUAL = "MANUAL"
    SERVICE = "SERVICE"
    SOURCE_CONTROL = "SOURCE_CONTROL"
    OTHER = "OTHER"


class OperationType(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    CREATE = "CREATE"
    ALTER = "ALTER"
    DROP = "DROP"
    CUSTOM = "CUSTOM"
    UNKNOWN = "UNKNOWN"


class OperationSourceType(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    DATA_PROCESS = "DATA_PROCESS"
    DATA_PLATFORM = "DATA_PLATFORM"


class FineGrainedLineageUpstreamType(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    FIELD_SET = "FIELD_SET"
    DATASET = "DATASET"
    NONE = "NONE"


class FineGrainedLineageDownstreamType(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    FIELD = "FIELD"
    FIELD_SET = "FIELD_SET"


class QueryLanguage(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    SQL = "SQL"
    UNKNOWN = "UNKNOWN"


def _wire(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


def _opt_tuple(value: Any) -> tuple[Any, ...] | None:
    return tuple(value) if value is not None else None


def _frozen_map(value: Mapping[str, object] | None) -> Mapping[str, str]:
    """A private copy; DataHub's maps are string to string, so keys and values become str
    (None values are dropped, like None fields)."""
    if not value:
        return {}
    return {str(k): v if v.__class__ is str else str(v) for k, v in value.items() if v is not None}


def _opt_map(value: Mapping[str, object] | None) -> Mapping[str, str] | None:
    return _frozen_map(value) if value is not None else None


# Field metadata key: wrap the value as a one-key union object, e.g. {"string": "COMMAND"}.
UNION = "datahub_union"


# -- records used inside aspects ---------------------------------------------------------


@attrs.frozen(kw_only=True)
class AuditStamp:
    time: int
    actor: str = DEFAULT_ACTOR


@attrs.frozen(kw_only=True)
class TimeStamp:
    time: int
    actor: str | None = None


@attrs.frozen(kw_only=True)
class Edge:
    destination_urn: str
    source_urn: str | None = None
    created: AuditStamp | None = None
    last_modified: AuditStamp | None = None
    properties: Mapping[str, str] | None = None

    WIRE_ORDER: ClassVar[tuple[str, ...]] = (
        "source_urn",
        "destination_urn",
        "created",
        "last_modified",
        "properties",
    )


@attrs.frozen(kw_only=True)
class RunResult:
    type: RunResultType
    native_result_type: str


@attrs.frozen(kw_only=True)
class OwnershipSource:
    """Where an owner came from: ``SERVICE`` for owners an orchestrator reports (DataHub's own
    SDK marks a DAG's owners so), which tells them apart from owners set by hand."""

    type: OwnershipSourceType
    url: str | None = None


@attrs.frozen(kw_only=True)
class Owner:
    owner: str
    type: OwnershipType = OwnershipType.TECHNICAL_OWNER
    source: OwnershipSource | None = None


@attrs.frozen(kw_only=True)
class TagAssociation:
    tag: str


@attrs.frozen(kw_only=True)
class BrowsePathEntry:
    id: str
    urn: str | None = None


@attrs.frozen(kw_only=True)
class FineGrainedLineage:
    """Column-level lineage inside ``dataJobInputOutput``: ``upstreams`` and ``downstreams``
    are schemaField (or dataset) urns. ``query`` is the urn of a DataHub query entity, not SQL
    text. ``confidence_score`` is a float on the wire (DataHub's schema default is 1.0)."""

    upstream_type: FineGrainedLineageUpstreamType
    upstreams: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    downstream_type: FineGrainedLineageDownstreamType
    downstreams: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    transform_operation: str | None = None
    confidence_score: float = attrs.field(default=1.0, converter=float)
    query: str | None = None


@attrs.frozen(kw_only=True)
class QueryStatement:
    value: str
    language: QueryLanguage = QueryLanguage.SQL


@attrs.frozen(kw_only=True)
class DataTransform:
    query_statement: QueryStatement | None = None


# -- aspects -------------------------------------------------------------------------------


class Aspect:
    """Marker base: every aspect has a DataHub name and the entity types it may go on."""

    ASPECT_NAME: ClassVar[str] = ""
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset()
    TIMESERIES: ClassVar[bool] = False


_DPI = frozenset({"dataProcessInstance"})
_TEMPLATES = frozenset({"dataFlow", "dataJob"})


@attrs.frozen(kw_only=True)
class DataProcessInstanceProperties(Aspect):
    ASPECT_NAME: ClassVar[str] = "dataProcessInstanceProperties"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _DPI

    custom_properties: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    external_url: str | None = None
    name: str
    type: DataProcessType | None = None
    created: AuditStamp


@attrs.frozen(kw_only=True)
class DataProcessInstanceRelationships(Aspect):
    ASPECT_NAME: ClassVar[str] = "dataProcessInstanceRelationships"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _DPI

    parent_template: str | None = None
    parent_instance: str | None = None
    upstream_instances: tuple[str, ...] = attrs.field(default=(), converter=_tuple)


@attrs.frozen(kw_only=True)
class DataProcessInstanceInput(Aspect):
    ASPECT_NAME: ClassVar[str] = "dataProcessInstanceInput"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _DPI

    inputs: tuple[str, ...] = attrs.field(converter=_tuple)
    input_edges: tuple[Edge, ...] | None = attrs.field(default=None, converter=_opt_tuple)


@attrs.frozen(kw_only=True)
class DataProcessInstanceOutput(Aspect):
    ASPECT_NAME: ClassVar[str] = "dataProcessInstanceOutput"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _DPI

    outputs: tuple[str, ...] = attrs.field(converter=_tuple)
    output_edges: tuple[Edge, ...] | None = attrs.field(default=None, converter=_opt_tuple)


@attrs.frozen(kw_only=True)
class DataProcessInstanceRunEvent(Aspect):
    """Timeseries: stored by (urn, timestamp_millis, partition, message id) on the server."""

    ASPECT_NAME: ClassVar[str] = "dataProcessInstanceRunEvent"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _DPI
    TIMESERIES: ClassVar[bool] = True

    timestamp_millis: int
    message_id: str | None = None
    external_url: str | None = None
    status: DataProcessRunStatus
    attempt: int | None = None
    result: RunResult | None = None
    duration_millis: int | None = None


@attrs.frozen(kw_only=True)
class DataFlowInfo(Aspect):
    ASPECT_NAME: ClassVar[str] = "dataFlowInfo"
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset({"dataFlow"})

    custom_properties: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    external_url: str | None = None
    name: str
    description: str | None = None
    project: str | None = None
    created: TimeStamp | None = None
    last_modified: TimeStamp | None = None
    env: str | None = None


@attrs.frozen(kw_only=True)
class DataJobInfo(Aspect):
    """``type`` is DataHub's ``enum | string`` union: always sent wrapped, ``{"string": ...}``."""

    ASPECT_NAME: ClassVar[str] = "dataJobInfo"
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset({"dataJob"})

    custom_properties: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    external_url: str | None = None
    name: str
    description: str | None = None
    type: str = attrs.field(default="COMMAND", metadata={UNION: "string"})
    flow_urn: str | None = None
    created: TimeStamp | None = None
    last_modified: TimeStamp | None = None
    env: str | None = None


@attrs.frozen(kw_only=True)
class DataJobInputOutput(Aspect):
    ASPECT_NAME: ClassVar[str] = "dataJobInputOutput"
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset({"dataJob"})

    input_datasets: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    input_dataset_edges: tuple[Edge, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    output_datasets: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    output_dataset_edges: tuple[Edge, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    input_datajobs: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    input_datajob_edges: tuple[Edge, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    fine_grained_lineages: tuple[FineGrainedLineage, ...] | None = attrs.field(
        default=None, converter=_opt_tuple
    )


@attrs.frozen(kw_only=True)
class DataTransformLogic(Aspect):
    """The code a job runs (its SQL), shown on the job's page in DataHub."""

    ASPECT_NAME: ClassVar[str] = "dataTransformLogic"
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset({"dataJob"})

    transforms: tuple[DataTransform, ...] = attrs.field(converter=_tuple)


@attrs.frozen(kw_only=True)
class Status(Aspect):
    ASPECT_NAME: ClassVar[str] = "status"
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset(
        {"dataProcessInstance", "dataFlow", "dataJob", "dataset", "mlModel", "container", "tag"}
    )

    removed: bool = False


@attrs.frozen(kw_only=True)
class Ownership(Aspect):
    ASPECT_NAME: ClassVar[str] = "ownership"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _TEMPLATES | {"dataset", "mlModel", "container"}

    owners: tuple[Owner, ...] = attrs.field(converter=_tuple)
    last_modified: AuditStamp | None = None


@attrs.frozen(kw_only=True)
class GlobalTags(Aspect):
    ASPECT_NAME: ClassVar[str] = "globalTags"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _TEMPLATES | {"dataset", "mlModel", "container"}

    tags: tuple[TagAssociation, ...] = attrs.field(converter=_tuple)


@attrs.frozen(kw_only=True)
class BrowsePathsV2(Aspect):
    """Valid on dataFlow/dataJob (and datasets), never on a process instance."""

    ASPECT_NAME: ClassVar[str] = "browsePathsV2"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _TEMPLATES | {"dataset", "mlModel", "container"}

    path: tuple[BrowsePathEntry, ...] = attrs.field(converter=_tuple)


@attrs.frozen(kw_only=True)
class DataPlatformInstance(Aspect):
    ASPECT_NAME: ClassVar[str] = "dataPlatformInstance"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _DPI | _TEMPLATES | {"dataset", "mlModel", "container"}

    platform: str
    instance: str | None = None


@attrs.frozen(kw_only=True)
class SubTypes(Aspect):
    ASPECT_NAME: ClassVar[str] = "subTypes"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _DPI | _TEMPLATES | {"dataset", "mlModel", "container"}

    type_names: tuple[str, ...] = attrs.field(converter=_tuple)


@attrs.frozen(kw_only=True)
class Container(Aspect):
    ASPECT_NAME: ClassVar[str] = "container"
    ENTITY_TYPES: ClassVar[frozenset[str]] = _DPI | _TEMPLATES | {"dataset", "mlModel", "container"}

    container: str


@attrs.frozen(kw_only=True)
class DatasetKey(Aspect):
    """Key aspect: emitting it makes a dataset exist in DataHub ("materialize_iolets")."""

    ASPECT_NAME: ClassVar[str] = "datasetKey"
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset({"dataset"})

    platform: str
    name: str
    origin: str


@attrs.frozen(kw_only=True)
class MlModelKey(Aspect):
    ASPECT_NAME: ClassVar[str] = "mlModelKey"
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset({"mlModel"})

    platform: str
    name: str
    origin: str


@attrs.frozen(kw_only=True)
class Operation(Aspect):
    """Timeseries, on a dataset: something changed it at ``last_updated_timestamp`` (what
    DataHub shows as a dataset's last update). Stored by (urn, timestamp_millis, partition,
    message id), so the same operation sent twice is one."""

    ASPECT_NAME: ClassVar[str] = "operation"
    ENTITY_TYPES: ClassVar[frozenset[str]] = frozenset({"dataset"})
    TIMESERIES: ClassVar[bool] = True

    timestamp_millis: int
    message_id: str | None = None
    actor: str | None = None
    operation_type: OperationType
    custom_operation_type: str | None = None
    num_affected_rows: int | None = None
    affected_datasets: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    source_type: OperationSourceType | None = None
    custom_properties: Mapping[str, str] | None = attrs.field(default=None, converter=_opt_map)
    last_updated_timestamp: int


ASPECT_CLASSES: Mapping[str, type[Aspect]] = {
    cls.ASPECT_NAME: cls
    for cls in (
        DataProcessInstanceProperties,
        DataProcessInstanceRelationships,
        DataProcessInstanceInput,
        DataProcessInstanceOutput,
        DataProcessInstanceRunEvent,
        DataFlowInfo,
        DataJobInfo,
        DataJobInputOutput,
        DataTransformLogic,
        Status,
        Ownership,
        GlobalTags,
        BrowsePathsV2,
        DataPlatformInstance,
        SubTypes,
        Container,
        DatasetKey,
        MlModelKey,
        Operation,
    )
}


# -- serialization ---------------------------------------------------------------------------

_Plan = tuple[tuple[str, str, str | None], ...]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    """(python name, wire name, union branch) per field, in DataHub's schema order."""
    plan = _PLANS.get(cls)
    if plan is None:
        fields = {f.name: f for f in attrs.fields(cls)}
        order = getattr(cls, "WIRE_ORDER", tuple(fields))
        plan = tuple((n, _wire(n), fields[n].metadata.get(UNION)) for n in order)
        _PLANS[cls] = plan
    return plan


def to_json_value(value: Any) -> Any:
    """Convert a domain value to plain JSON data (attrs records, enums, tuples, mappings)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return value
    if isinstance(value, tuple | list):
        return [to_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return aspect_to_dict(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def aspect_to_dict(obj: Any) -> dict[str, Any]:
    """An aspect (or nested record) as DataHub JSON: camelCase keys, None dropped."""
    out: dict[str, Any] = {}
    for name, wire, union in _plan(type(obj)):
        value = getattr(obj, name)
        if value is None:
            continue
        value = to_json_value(value)
        out[wire] = {union: value} if union else value
    return out
