"""DataHub urns: builders, a parser, and the deterministic guid behind process-instance urns.

Rules followed (they are what a DataHub GMS accepts, see DATAHUB_WIRE.md):

* ``,`` ``(`` ``)`` and U+241F inside a part are percent-encoded (``%2C %28 %29 %E2%90%9F``),
  exactly as DataHub's own SDK does, so urns built here equal the ones it builds.
* A part may not be empty or carry leading/trailing whitespace, a dataset's env must be a
  known fabric, and the whole urn may not exceed 512 characters once URL-encoded. Anything
  else raises :class:`InvalidUrnError` naming the field; nothing is truncated.
* A process instance's urn is ``urn:li:dataProcessInstance:<md5>`` over the canonical JSON of
  ``{"cluster", "orchestrator", "id"}`` (None dropped), so the same run gets the same urn from
  any process.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import ClassVar, TypeVar
from urllib.parse import quote

import attrs

from datahub_airflow_listener.domain.errors import InvalidUrnError

__all__ = [
    "FABRIC_TYPES",
    "ContainerUrn",
    "CorpGroupUrn",
    "CorpUserUrn",
    "DataFlowUrn",
    "DataJobUrn",
    "DataPlatformInstanceUrn",
    "DataPlatformUrn",
    "DataProcessInstanceUrn",
    "DatasetUrn",
    "MlModelUrn",
    "TagUrn",
    "Urn",
    "datahub_guid",
    "encode_part",
    "make_container_urn",
    "make_data_flow_urn",
    "make_data_job_urn",
    "make_data_platform_instance_urn",
    "make_data_platform_urn",
    "make_data_process_instance_urn",
    "make_dataset_urn",
    "make_group_urn",
    "make_ml_model_urn",
    "make_tag_urn",
    "make_user_urn",
    "parse_urn",
]

FABRIC_TYPES = frozenset(
    [
        "CERT",
        "CORP",
        "DEV",
        "EI",
        "NON_PROD",
        "PRD",
        "PRE",
        "PROD",
        "QA",
        "RVW",
        "SANDBOX",
        "SBX",
        "SIT",
        "STG",
        "TEST",
        "TST",
        "UAT",
    ]
)
MAX_URN_LENGTH = 512
_PREFIX = "urn:li:"
_RESERVED = {",": "%2C", "(": "%28", ")": "%29", "\u241f": "%E2%90%9F"}
_RESERVED_RE = re.compile("[,()\u241f]")
_JAVA_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_ ")
_JAVA_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9.\-*_ ]")
_GUID_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def datahub_guid(key: Mapping[str, object]) -> str:
    """md5 hex of the compact, key-sorted, ASCII-escaped JSON of ``key``, None values dropped."""
    cleaned = {k: v for k, v in key.items() if v is not None}
    text = _GUID_JSON(cleaned)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def encode_part(value: object, field: str) -> str:
    """Validate one urn part and percent-encode DataHub's reserved characters in it."""
    if not isinstance(value, str):
        raise InvalidUrnError(field, value, f"must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidUrnError(field, value, "must not be empty")
    if value != value.strip():
        raise InvalidUrnError(field, value, "must not start or end with whitespace")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidUrnError(field, value, "is not valid unicode (lone surrogate)") from None
    if _RESERVED_RE.search(value):
        return _RESERVED_RE.sub(lambda m: _RESERVED[m.group(0)], value)
    return value


def _encoded_length(urn: str) -> int:
    """Length of ``urn`` after Java's URLEncoder, which is what the server measures."""
    if urn.isascii():
        return len(urn) + 2 * len(_JAVA_UNSAFE_ASCII.findall(urn))
    return sum(1 if c in _JAVA_SAFE else 3 * len(c.encode("utf-8")) for c in urn)


def _check_length(urn: str, field: str) -> str:
    # Encoding grows a character to at most 3 (ASCII) or 12 (4 UTF-8 bytes) characters: most
    # urns are too short to need counting.
    if len(urn) * (3 if urn.isascii() else 12) <= MAX_URN_LENGTH:
        return urn
    if len(urn) > MAX_URN_LENGTH or _encoded_length(urn) > MAX_URN_LENGTH:
        raise InvalidUrnError(
            field, urn, f"urn is longer than {MAX_URN_LENGTH} characters once URL-encoded"
        )
    return urn


def _split_parts(body: str, text: str) -> tuple[str, ...]:
    """Split ``(a,(b,c),d)`` at top-level commas; ``body`` excludes the outer parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(body):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InvalidUrnError("urn", text, "unbalanced parentheses")
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    if depth != 0:
        raise InvalidUrnError("urn", text, "unbalanced parentheses")
    parts.append(body[start:])
    return tuple(parts)


U = TypeVar("U", bound="Urn")


@attrs.frozen(kw_only=True)
class Urn:
    """Any DataHub urn: an entity type and its (already encoded) parts.

    ``str(urn)`` is the wire form. Subclasses add typed accessors and validating builders;
    :func:`parse_urn` returns the most specific class it knows for the entity type.
    """

    entity_type: str
    parts: tuple[str, ...]

    ENTITY_TYPE: ClassVar[str] = ""
    PART_COUNT: ClassVar[int] = 0

    def __str__(self) -> str:
        if len(self.parts) == 1 and not self.parts[0].startswith("("):
            return f"{_PREFIX}{self.entity_type}:{self.parts[0]}"
        return f"{_PREFIX}{self.entity_type}:({','.join(self.parts)})"

    def urn(self) -> str:
        """The urn as a string (same as ``str(self)``)."""
        return str(self)

    @classmethod
    def from_string(cls: type[U], text: str, field: str = "urn") -> U:
        """Parse ``text``; on a subclass, the entity type must match that subclass.

        ``field`` names the caller's argument in the error, e.g. ``flow_urn``.
        """
        try:
            parsed = parse_urn(text)
        except InvalidUrnError as exc:
            if field == "urn":
                raise
            raise InvalidUrnError(field, text, exc.reason) from None
        if cls is not Urn and not isinstance(parsed, cls):
            raise InvalidUrnError(
                field, text, f"expected a {cls.ENTITY_TYPE} urn, got {parsed.entity_type}"
            )
        return parsed  # type: ignore[return-value]  # checked by isinstance above

    @classmethod
    def create_from_string(cls: type[U], text: str) -> U:
        """Alias of :meth:`from_string` (the name DataHub's SDK uses)."""
        return cls.from_string(text)

    def get_type(self) -> str:
        return self.entity_type


@attrs.frozen(kw_only=True)
class DataPlatformUrn(Urn):
    ENTITY_TYPE: ClassVar[str] = "dataPlatform"
    PART_COUNT: ClassVar[int] = 1

    @classmethod
    def create(cls, platform: str) -> DataPlatformUrn:
        """From a platform name (``hive``) or an existing dataPlatform urn."""
        if isinstance(platform, str) and platform.startswith(_PREFIX):
            return cls.from_string(platform, "platform")
        return cls(entity_type=cls.ENTITY_TYPE, parts=(encode_part(platform, "platform"),))

    @property
    def platform_name(self) -> str:
        return self.parts[0]


@attrs.frozen(kw_only=True)
class DataPlatformInstanceUrn(Urn):
    ENTITY_TYPE: ClassVar[str] = "dataPlatformInstance"
    PART_COUNT: ClassVar[int] = 2

    @classmethod
    def create(cls, platform: str, instance: str) -> DataPlatformInstanceUrn:
        plat = str(DataPlatformUrn.create(platform))
        return cls(entity_type=cls.ENTITY_TYPE, parts=(plat, encode_part(instance, "instance")))


@attrs.frozen(kw_only=True)
class DatasetUrn(Urn):
    ENTITY_TYPE: ClassVar[str] = "dataset"
    PART_COUNT: ClassVar[int] = 3

    @classmethod
    def create(
        cls,
        platform: str,
        name: str,
        env: str = "PROD",
        platform_instance: str | None = None,
    ) -> DatasetUrn:
        """Build and validate; ``env`` is upper-cased and must be a known fabric."""
        plat = str(DataPlatformUrn.create(platform))
        if platform_instance is not None:
            encode_part(platform_instance, "platform_instance")
            name = f"{platform_instance}.{name}" if isinstance(name, str) else name
        fabric = env.upper() if isinstance(env, str) else env
        if fabric not in FABRIC_TYPES:
            raise InvalidUrnError(
                "env", env, f"not a DataHub fabric ({', '.join(sorted(FABRIC_TYPES))})"
            )
        urn = cls(entity_type=cls.ENTITY_TYPE, parts=(plat, encode_part(name, "name"), fabric))
        _check_length(str(urn), "name")
        return urn

    @classmethod
    def create_from_ids(
        cls, platform_id: str, table_name: str, env: str, platform_instance: str | None = None
    ) -> DatasetUrn:
        return cls.create(platform_id, table_name, env, platform_instance)

    @property
    def platform(self) -> str:
        return self.parts[0]

    @property
    def name(self) -> str:
        return self.parts[1]

    @property
    def env(self) -> str:
        return self.parts[2]


@attrs.frozen(kw_only=True)
class MlModelUrn(DatasetUrn):
    """An ML model urn; same shape as a dataset's (platform, name, env)."""

    ENTITY_TYPE: ClassVar[str] = "mlModel"
    PART_COUNT: ClassVar[int] = 3

    @classmethod
    def create(
        cls, platform: str, name: str, env: str = "PROD", platform_instance: str | None = None
    ) -> MlModelUrn:
        base = DatasetUrn.create(platform, name, env, platform_instance)
        return cls(entity_type=cls.ENTITY_TYPE, parts=base.parts)


@attrs.frozen(kw_only=True)
class DataFlowUrn(Urn):
    ENTITY_TYPE: ClassVar[str] = "dataFlow"
    PART_COUNT: ClassVar[int] = 3

    @classmethod
    def create(
        cls,
        orchestrator: str,
        flow_id: str,
        cluster: str = "prod",
        platform_instance: str | None = None,
    ) -> DataFlowUrn:
        """``urn:li:dataFlow:(<orchestrator>,[<instance>.]<flow_id>,<cluster>)``.

        The cluster is kept as given (DataHub does not upper-case it).
        """
        if platform_instance is not None:
            encode_part(platform_instance, "platform_instance")
            if isinstance(flow_id, str):
                flow_id = f"{platform_instance}.{flow_id}"
        urn = cls(
            entity_type=cls.ENTITY_TYPE,
            parts=(
                encode_part(orchestrator, "orchestrator"),
                encode_part(flow_id, "flow_id"),
                encode_part(cluster, "cluster"),
            ),
        )
        _check_length(str(urn), "flow_id")
        return urn

    @classmethod
    def create_from_ids(
        cls, orchestrator: str, flow_id: str, env: str, platform_instance: str | None = None
    ) -> DataFlowUrn:
        return cls.create(orchestrator, flow_id, env, platform_instance)

    @property
    def orchestrator(self) -> str:
        return self.parts[0]

    @property
    def flow_id(self) -> str:
        return self.parts[1]

    @property
    def cluster(self) -> str:
        return self.parts[2]

    def get_orchestrator_name(self) -> str:
        return self.orchestrator

    def get_flow_id(self) -> str:
        return self.flow_id

    def get_env(self) -> str:
        return self.cluster


@attrs.frozen(kw_only=True)
class DataJobUrn(Urn):
    ENTITY_TYPE: ClassVar[str] = "dataJob"
    PART_COUNT: ClassVar[int] = 2

    @classmethod
    def create(cls, flow_urn: DataFlowUrn | str, job_id: str) -> DataJobUrn:
        if isinstance(flow_urn, DataFlowUrn):
            flow = flow_urn
        else:
            flow = DataFlowUrn.from_string(flow_urn, "flow_urn")
        urn = cls(entity_type=cls.ENTITY_TYPE, parts=(str(flow), encode_part(job_id, "job_id")))
        _check_length(str(urn), "job_id")
        return urn

    @classmethod
    def create_from_ids(cls, data_flow_urn: str, job_id: str) -> DataJobUrn:
        return cls.create(data_flow_urn, job_id)

    @property
    def flow_urn(self) -> DataFlowUrn:
        return DataFlowUrn.from_string(self.parts[0])

    @property
    def job_id(self) -> str:
        return self.parts[1]

    def get_data_flow_urn(self) -> DataFlowUrn:
        return self.flow_urn

    def get_job_id(self) -> str:
        return self.job_id


@attrs.frozen(kw_only=True)
class DataProcessInstanceUrn(Urn):
    ENTITY_TYPE: ClassVar[str] = "dataProcessInstance"
    PART_COUNT: ClassVar[int] = 1

    @classmethod
    def create(cls, orchestrator: str, cluster: str | None, id: str) -> DataProcessInstanceUrn:
        """The urn DataHub derives for a run ``id`` of ``orchestrator`` in ``cluster``."""
        for field, value in (("orchestrator", orchestrator), ("id", id)):
            if not isinstance(value, str) or not value:
                raise InvalidUrnError(field, value, "must be a non-empty string")
        if cluster is not None and not isinstance(cluster, str):
            raise InvalidUrnError("cluster", cluster, "must be a string or None")
        guid = datahub_guid({"cluster": cluster, "orchestrator": orchestrator, "id": id})
        return cls(entity_type=cls.ENTITY_TYPE, parts=(guid,))

    @property
    def id(self) -> str:
        return self.parts[0]

    def get_dataprocessinstance_id(self) -> str:
        return self.id


@attrs.frozen(kw_only=True)
class _OnePartUrn(Urn):
    """A urn with one free-text part (tag, user, group, container)."""

    PART_COUNT: ClassVar[int] = 1
    FIELD: ClassVar[str] = "id"

    @classmethod
    def create(cls: type[U], value: str) -> U:
        """Build from the bare value, or accept an existing urn of this type."""
        if isinstance(value, str) and value.startswith(_PREFIX):
            return cls.from_string(value, cls.FIELD)  # type: ignore[attr-defined]  # FIELD is on _OnePartUrn
        urn = cls(entity_type=cls.ENTITY_TYPE, parts=(encode_part(value, cls.FIELD),))  # type: ignore[attr-defined]  # FIELD is on _OnePartUrn
        _check_length(str(urn), cls.FIELD)  # type: ignore[attr-defined]  # FIELD is on _OnePartUrn
        return urn


@attrs.frozen(kw_only=True)
class TagUrn(_OnePartUrn):
    ENTITY_TYPE: ClassVar[str] = "tag"
    FIELD: ClassVar[str] = "tag"


@attrs.frozen(kw_only=True)
class CorpUserUrn(_OnePartUrn):
    ENTITY_TYPE: ClassVar[str] = "corpuser"
    FIELD: ClassVar[str] = "user"


@attrs.frozen(kw_only=True)
class CorpGroupUrn(_OnePartUrn):
    ENTITY_TYPE: ClassVar[str] = "corpGroup"
    FIELD: ClassVar[str] = "group"


@attrs.frozen(kw_only=True)
class ContainerUrn(_OnePartUrn):
    ENTITY_TYPE: ClassVar[str] = "container"
    FIELD: ClassVar[str] = "container"


_BY_TYPE: dict[str, type[Urn]] = {
    cls.ENTITY_TYPE: cls
    for cls in (
        DataPlatformUrn,
        DataPlatformInstanceUrn,
        DatasetUrn,
        MlModelUrn,
        DataFlowUrn,
        DataJobUrn,
        DataProcessInstanceUrn,
        TagUrn,
        CorpUserUrn,
        CorpGroupUrn,
        ContainerUrn,
    )
}


def parse_urn(text: str) -> Urn:
    """Parse any ``urn:li:<type>:<id>`` string; known types get their specific class.

    Nested urns in parts are validated recursively for the known types (a dataJob's flow
    part must itself be a dataFlow urn).
    """
    if not isinstance(text, str):
        raise InvalidUrnError("urn", text, f"must be a string, not {type(text).__name__}")
    if text != text.strip():
        raise InvalidUrnError("urn", text, "must not start or end with whitespace")
    if not text.startswith(_PREFIX):
        raise InvalidUrnError("urn", text, f"must start with {_PREFIX!r}")
    entity_type, sep, rest = text[len(_PREFIX) :].partition(":")
    if not entity_type or not sep or not rest:
        raise InvalidUrnError("urn", text, "expected urn:li:<entity type>:<id>")
    if rest.startswith("(") and rest.endswith(")"):
        parts = _split_parts(rest[1:-1], text)
    else:
        parts = (rest,)
    if any(not p for p in parts):
        raise InvalidUrnError("urn", text, "has an empty part")
    _check_length(text, "urn")
    cls = _BY_TYPE.get(entity_type, Urn)
    if cls is not Urn:
        if len(parts) != cls.PART_COUNT:
            raise InvalidUrnError(
                "urn", text, f"a {entity_type} urn has {cls.PART_COUNT} parts, got {len(parts)}"
            )
        if cls is DataJobUrn:
            DataFlowUrn.from_string(parts[0])
        elif cls is DatasetUrn or cls is MlModelUrn:
            DataPlatformUrn.from_string(parts[0])
    return cls(entity_type=entity_type, parts=parts)


# Plain-string builders: the form most callers want.


def make_data_platform_urn(platform: str) -> str:
    return str(DataPlatformUrn.create(platform))


def make_data_platform_instance_urn(platform: str, instance: str) -> str:
    return str(DataPlatformInstanceUrn.create(platform, instance))


def make_dataset_urn(
    platform: str, name: str, env: str = "PROD", platform_instance: str | None = None
) -> str:
    return str(DatasetUrn.create(platform, name, env, platform_instance))


def make_ml_model_urn(
    platform: str, name: str, env: str = "PROD", platform_instance: str | None = None
) -> str:
    return str(MlModelUrn.create(platform, name, env, platform_instance))


def make_data_flow_urn(
    orchestrator: str, flow_id: str, cluster: str = "prod", platform_instance: str | None = None
) -> str:
    return str(DataFlowUrn.create(orchestrator, flow_id, cluster, platform_instance))


def make_data_job_urn(flow_urn: str | DataFlowUrn, job_id: str) -> str:
    return str(DataJobUrn.create(flow_urn, job_id))


def make_data_process_instance_urn(orchestrator: str, cluster: str | None, id: str) -> str:
    return str(DataProcessInstanceUrn.create(orchestrator, cluster, id))


def make_tag_urn(tag: str) -> str:
    return str(TagUrn.create(tag))


def make_user_urn(user: str) -> str:
    """A corpuser urn; an existing user or group urn is returned as is (owners may be either)."""
    if isinstance(user, str) and user.startswith(f"{_PREFIX}corpGroup:"):
        return str(CorpGroupUrn.create(user))
    return str(CorpUserUrn.create(user))


def make_group_urn(group: str) -> str:
    """A corpGroup urn; an existing user or group urn is returned as is (owners may be either)."""
    if isinstance(group, str) and group.startswith(f"{_PREFIX}corpuser:"):
        return str(CorpUserUrn.create(group))
    return str(CorpGroupUrn.create(group))


def make_container_urn(guid: str) -> str:
    return str(ContainerUrn.create(guid))


def quote_urn(urn: str) -> str:
    """URL-encode a urn for use in a REST path (``/entitiesV2/<urn>``)."""
    return quote(urn, safe="")
