"""DataFlow and DataJob templates: what a pipeline and a task *are* (their runs are instances).

These are the seed API's mutable builders (the seed's examples assign attributes after
construction); every MCP they produce is built from frozen aspects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from datahub_airflow_listener.domain.aspects import (
    AuditStamp,
    BrowsePathEntry,
    BrowsePathsV2,
    DataFlowInfo,
    DataJobInfo,
    DataJobInputOutput,
    DataPlatformInstance,
    DatasetKey,
    Edge,
    FineGrainedLineage,
    GlobalTags,
    MlModelKey,
    Owner,
    Ownership,
    OwnershipSource,
    OwnershipSourceType,
    OwnershipType,
    Status,
    TagAssociation,
)
from datahub_airflow_listener.domain.errors import InvalidUrnError
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.urns import (
    FABRIC_TYPES,
    DataFlowUrn,
    DataJobUrn,
    Urn,
    make_data_platform_instance_urn,
    make_data_platform_urn,
    make_group_urn,
    make_tag_urn,
    make_user_urn,
    parse_urn,
)

__all__ = ["DataFlow", "DataJob", "iolet_key_mcps", "ownership_aspect", "tags_aspect"]


def _fabric(env: str | None) -> str | None:
    """DataHub's env field takes only known fabrics; any other cluster name is left out."""
    if env and env.upper() in FABRIC_TYPES:
        return env.upper()
    return None


# Owners an orchestrator reports, as DataHub's own SDK marks them (set by hand they'd be MANUAL).
_SERVICE = OwnershipSource(type=OwnershipSourceType.SERVICE)


def ownership_aspect(
    owners: Iterable[str], group_owners: Iterable[str], actor_platform: str
) -> Ownership | None:
    urns = sorted({make_user_urn(o) for o in owners} | {make_group_urn(g) for g in group_owners})
    if not urns:
        return None
    return Ownership(
        owners=tuple(Owner(owner=u, type=OwnershipType.DEVELOPER, source=_SERVICE) for u in urns),
        last_modified=AuditStamp(time=0, actor=make_user_urn(actor_platform)),
    )


def tags_aspect(tags: Iterable[str]) -> GlobalTags | None:
    names = sorted(set(tags))
    if not names:
        return None
    return GlobalTags(tags=tuple(TagAssociation(tag=make_tag_urn(t)) for t in names))


def _as_urn(value: Any, field: str) -> Urn:
    if isinstance(value, Urn):
        return value
    if isinstance(value, str):
        return parse_urn(value)
    urn = getattr(value, "urn", None)
    if urn is not None:
        return _as_urn(urn() if callable(urn) else urn, field)
    raise InvalidUrnError(field, value, "expected a urn string or urn object")


def iolet_key_mcps(iolets: Iterable[Any]) -> list[MetadataChangeProposal]:
    """Key aspects that make each dataset / ML model exist in DataHub (materialize_iolets)."""
    out: list[MetadataChangeProposal] = []
    seen: set[str] = set()
    for item in iolets:
        urn = _as_urn(item, "iolet")
        text = str(urn)
        if text in seen:
            continue
        seen.add(text)
        if urn.entity_type == "dataset":
            platform, name, env = urn.parts
            out.append(
                MetadataChangeProposal(
                    entity_urn=text, aspect=DatasetKey(platform=platform, name=name, origin=env)
                )
            )
        elif urn.entity_type == "mlModel":
            platform, name, env = urn.parts
            out.append(
                MetadataChangeProposal(
                    entity_urn=text, aspect=MlModelKey(platform=platform, name=name, origin=env)
                )
            )
    return out


def _platform_instance_mcps(
    urn: str, orchestrator: str, instance: str | None
) -> list[MetadataChangeProposal]:
    if not instance:
        return []
    return [
        MetadataChangeProposal(
            entity_urn=urn,
            aspect=DataPlatformInstance(
                platform=make_data_platform_urn(orchestrator),
                instance=make_data_platform_instance_urn(orchestrator, instance),
            ),
        )
    ]


@attrs.define(kw_only=True)
class DataFlow:
    """A pipeline definition (an Airflow DAG). ``env`` (or legacy ``cluster``) is its cluster."""

    id: str
    orchestrator: str
    env: str | None = None
    cluster: str | None = None
    name: str | None = None
    description: str | None = None
    properties: dict[str, str] = attrs.field(factory=dict)
    url: str | None = None
    tags: set[str] = attrs.field(factory=set)
    owners: set[str] = attrs.field(factory=set)
    group_owners: set[str] = attrs.field(factory=set)
    platform_instance: str | None = None

    @property
    def urn(self) -> DataFlowUrn:
        cluster = self.env if self.env is not None else self.cluster
        if cluster is None:
            raise InvalidUrnError("env", None, "a DataFlow needs env (or cluster)")
        return DataFlowUrn.create(self.orchestrator, self.id, cluster, self.platform_instance)

    def generate_mcp(self) -> list[MetadataChangeProposal]:
        urn = str(self.urn)
        out = [
            MetadataChangeProposal(
                entity_urn=urn,
                aspect=DataFlowInfo(
                    name=self.name if self.name is not None else self.id,
                    description=self.description,
                    custom_properties=self.properties,
                    external_url=self.url,
                    env=_fabric(self.env if self.env is not None else self.cluster),
                ),
            ),
            MetadataChangeProposal(entity_urn=urn, aspect=Status(removed=False)),
        ]
        out += _platform_instance_mcps(urn, self.orchestrator, self.platform_instance)
        ownership = ownership_aspect(self.owners, self.group_owners, self.orchestrator)
        if ownership is not None:
            out.append(MetadataChangeProposal(entity_urn=urn, aspect=ownership))
        tags = tags_aspect(self.tags)
        if tags is not None:
            out.append(MetadataChangeProposal(entity_urn=urn, aspect=tags))
        path: tuple[BrowsePathEntry, ...] = ()
        if self.platform_instance:
            inst = make_data_platform_instance_urn(self.orchestrator, self.platform_instance)
            path = (BrowsePathEntry(id=inst, urn=inst),)
        out.append(MetadataChangeProposal(entity_urn=urn, aspect=BrowsePathsV2(path=path)))
        return out

    def emit(self, emitter: Any, callback: Any = None) -> None:
        _emit_all(emitter, self.generate_mcp())


def _to_flow_urn(value: DataFlowUrn | str) -> DataFlowUrn:
    if isinstance(value, DataFlowUrn):
        return value
    return DataFlowUrn.from_string(value, "flow_urn")


@attrs.define(kw_only=True)
class DataJob:
    """A task definition inside a DataFlow, with its declared lineage."""

    id: str
    flow_urn: DataFlowUrn = attrs.field(converter=_to_flow_urn)
    name: str | None = None
    description: str | None = None
    type: str = "COMMAND"
    properties: dict[str, str] = attrs.field(factory=dict)
    url: str | None = None
    tags: set[str] = attrs.field(factory=set)
    owners: set[str] = attrs.field(factory=set)
    group_owners: set[str] = attrs.field(factory=set)
    inlets: list[Any] = attrs.field(factory=list)
    outlets: list[Any] = attrs.field(factory=list)
    upstream_urns: list[Any] = attrs.field(factory=list)
    platform_instance: str | None = None
    fine_grained_lineages: list[FineGrainedLineage] = attrs.field(factory=list)

    @property
    def urn(self) -> DataJobUrn:
        return DataJobUrn.create(self.flow_urn, self.id)

    def generate_mcp(
        self, generate_lineage: bool = True, materialize_iolets: bool = True
    ) -> list[MetadataChangeProposal]:
        urn = str(self.urn)
        orchestrator = self.flow_urn.orchestrator
        out = [
            MetadataChangeProposal(
                entity_urn=urn,
                aspect=DataJobInfo(
                    name=self.name if self.name is not None else self.id,
                    type=self.type,
                    description=self.description,
                    custom_properties=self.properties,
                    external_url=self.url,
                    flow_urn=str(self.flow_urn),
                    env=_fabric(self.flow_urn.cluster),
                ),
            ),
            MetadataChangeProposal(entity_urn=urn, aspect=Status(removed=False)),
        ]
        out += _platform_instance_mcps(urn, orchestrator, self.platform_instance)
        ownership = ownership_aspect(self.owners, self.group_owners, orchestrator)
        if ownership is not None:
            out.append(MetadataChangeProposal(entity_urn=urn, aspect=ownership))
        tags = tags_aspect(self.tags)
        if tags is not None:
            out.append(MetadataChangeProposal(entity_urn=urn, aspect=tags))
        flow = str(self.flow_urn)
        out.append(
            MetadataChangeProposal(
                entity_urn=urn,
                aspect=BrowsePathsV2(path=(BrowsePathEntry(id=flow, urn=flow),)),
            )
        )
        if generate_lineage:
            out += self.lineage_mcps(materialize_iolets=materialize_iolets)
        return out

    def lineage_mcps(self, materialize_iolets: bool = True) -> list[MetadataChangeProposal]:
        inputs = _urn_strings(self.inlets, "inlets")
        outputs = _urn_strings(self.outlets, "outlets")
        upstream = _urn_strings(self.upstream_urns, "upstream_urns")
        aspect = DataJobInputOutput(
            input_datasets=inputs,
            input_dataset_edges=tuple(Edge(destination_urn=u) for u in inputs),
            output_datasets=outputs,
            output_dataset_edges=tuple(Edge(destination_urn=u) for u in outputs),
            input_datajobs=upstream,
            input_datajob_edges=tuple(Edge(destination_urn=u) for u in upstream),
            fine_grained_lineages=tuple(self.fine_grained_lineages) or None,
        )
        out = [MetadataChangeProposal(entity_urn=str(self.urn), aspect=aspect)]
        if materialize_iolets:
            out += iolet_key_mcps([*inputs, *outputs])
        return out

    def emit(self, emitter: Any, callback: Any = None) -> None:
        _emit_all(emitter, self.generate_mcp())


def _urn_strings(values: Sequence[Any], field: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(_as_urn(v, field)) for v in values))


def _emit_all(emitter: Any, mcps: list[MetadataChangeProposal]) -> None:
    """Send through ``emitter.emit_mcps`` when it batches, else one ``emit`` per MCP."""
    batch = getattr(emitter, "emit_mcps", None)
    if callable(batch):
        batch(mcps)
        return
    for mcp in mcps:
        emitter.emit(mcp)
