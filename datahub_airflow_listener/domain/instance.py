"""The seed's process-instance API: one execution of a DataFlow, a DataJob or a standalone process.

:class:`DataProcessInstance` mirrors the constructor and methods of DataHub's Python SDK so the
seed's examples run unchanged but for their imports. It is a mutable builder (the examples set
attributes after construction); the urn is derived from (orchestrator, cluster, id) each time,
so it is always consistent with them. Methods named ``*_mcps`` / ``*_mcp`` only return MCPs
(for callers that batch); ``emit_*`` send them through any emitter with ``emit`` (and
``emit_mcps`` when it batches).

Rule kept on top of the SDK's: a STARTED and a COMPLETE event never share a timestamp, because
the server stores run events keyed by timestamp and the second would overwrite the first.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import attrs

from datahub_airflow_listener.domain.aspects import (
    AuditStamp,
    Container,
    DataPlatformInstance,
    DataProcessInstanceInput,
    DataProcessInstanceOutput,
    DataProcessInstanceProperties,
    DataProcessInstanceRelationships,
    DataProcessInstanceRunEvent,
    DataProcessRunStatus,
    DataProcessType,
    RunResult,
    RunResultType,
    SubTypes,
)
from datahub_airflow_listener.domain.clock import now_ms
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.templates import (
    DataFlow,
    DataJob,
    _as_urn,
    _emit_all,
    iolet_key_mcps,
)
from datahub_airflow_listener.domain.urns import (
    DataFlowUrn,
    DataJobUrn,
    DataPlatformUrn,
    DataProcessInstanceUrn,
    datahub_guid,
    make_container_urn,
    make_data_platform_instance_urn,
    make_data_platform_urn,
)

__all__ = [
    "ContainerKey",
    "DataProcessInstance",
    "DataProcessTypeClass",
    "InstanceRunResult",
]


class InstanceRunResult(str, enum.Enum):  # noqa: UP042  # StrEnum needs 3.11; we support 3.10
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"
    UP_FOR_RETRY = "UP_FOR_RETRY"


class DataProcessTypeClass:
    """The seed's constants for ``DataProcessInstance.type``."""

    BATCH_SCHEDULED: ClassVar[str] = DataProcessType.BATCH_SCHEDULED.value
    BATCH_AD_HOC: ClassVar[str] = DataProcessType.BATCH_AD_HOC.value
    STREAMING: ClassVar[str] = DataProcessType.STREAMING.value


@attrs.frozen(kw_only=True)
class ContainerKey:
    """Identity of a container (an ML experiment, a notebook folder...).

    The guid covers platform, name and instance. (DataHub's SDK base class silently ignores
    ``name``, which would give every container of a platform one urn; we keep it.)
    """

    platform: str
    name: str | None = None
    env: str | None = None
    instance: str | None = None

    def guid(self) -> str:
        return datahub_guid(
            {"platform": self.platform, "name": self.name, "instance": self.instance}
        )

    def as_urn(self) -> str:
        return make_container_urn(self.guid())


@attrs.define(kw_only=True)
class DataProcessInstance:
    """One execution (see module docstring)."""

    id: str
    orchestrator: str
    cluster: str | None = None
    type: str = DataProcessTypeClass.BATCH_SCHEDULED
    template_urn: Any = None
    parent_instance: Any = None
    properties: dict[str, str] = attrs.field(factory=dict)
    url: str | None = None
    inlets: list[Any] = attrs.field(factory=list)
    outlets: list[Any] = attrs.field(factory=list)
    upstream_urns: list[Any] = attrs.field(factory=list)
    data_platform_instance: str | None = None
    subtype: str | None = None
    container_urn: str | None = None
    _template_object: DataFlow | DataJob | None = attrs.field(
        default=None, alias="_template_object"
    )
    _last_start_ms: int | None = attrs.field(default=None, init=False)

    @property
    def urn(self) -> DataProcessInstanceUrn:
        return DataProcessInstanceUrn.create(self.orchestrator, self.cluster, self.id)

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_dataflow(cls, dataflow: DataFlow, id: str) -> DataProcessInstance:
        return cls(
            id=id,
            orchestrator=dataflow.orchestrator,
            cluster=dataflow.env if dataflow.env is not None else dataflow.cluster,
            template_urn=dataflow.urn,
            data_platform_instance=dataflow.platform_instance,
            _template_object=dataflow,
        )

    @classmethod
    def from_datajob(
        cls, datajob: DataJob, id: str, clone_inlets: bool = False, clone_outlets: bool = False
    ) -> DataProcessInstance:
        return cls(
            id=id,
            orchestrator=datajob.flow_urn.orchestrator,
            cluster=datajob.flow_urn.cluster,
            template_urn=datajob.urn,
            data_platform_instance=datajob.platform_instance,
            inlets=list(datajob.inlets) if clone_inlets else [],
            outlets=list(datajob.outlets) if clone_outlets else [],
            _template_object=datajob,
        )

    @classmethod
    def from_container(cls, container_key: ContainerKey, id: str) -> DataProcessInstance:
        platform = DataPlatformUrn.create(container_key.platform).platform_name
        return cls(id=id, orchestrator=platform, container_urn=container_key.as_urn())

    # -- MCP builders ---------------------------------------------------------------------------

    def generate_mcp(
        self, created_ts_millis: int | None = None, materialize_iolets: bool = True
    ) -> list[MetadataChangeProposal]:
        """The instance's own aspects: properties, relationships, platform, lineage."""
        urn = str(self.urn)
        out = [
            MetadataChangeProposal(
                entity_urn=urn,
                aspect=DataProcessInstanceProperties(
                    name=self.id,
                    type=DataProcessType(self.type),
                    created=AuditStamp(time=created_ts_millis or now_ms()),
                    custom_properties={str(k): str(v) for k, v in self.properties.items()},
                    external_url=self.url,
                ),
            ),
            MetadataChangeProposal(
                entity_urn=urn,
                aspect=DataProcessInstanceRelationships(
                    parent_template=str(_as_urn(self.template_urn, "template_urn"))
                    if self.template_urn is not None
                    else None,
                    parent_instance=str(_as_urn(self.parent_instance, "parent_instance"))
                    if self.parent_instance is not None
                    else None,
                    upstream_instances=tuple(
                        str(_as_urn(u, "upstream_urns")) for u in self.upstream_urns
                    ),
                ),
            ),
        ]
        if self.data_platform_instance:
            instance = self.data_platform_instance
            if not instance.startswith("urn:li:"):
                instance = make_data_platform_instance_urn(self.orchestrator, instance)
            out.append(
                MetadataChangeProposal(
                    entity_urn=urn,
                    aspect=DataPlatformInstance(
                        platform=make_data_platform_urn(self.orchestrator), instance=instance
                    ),
                )
            )
        if self.subtype:
            out.append(
                MetadataChangeProposal(entity_urn=urn, aspect=SubTypes(type_names=(self.subtype,)))
            )
        if self.container_urn:
            out.append(
                MetadataChangeProposal(
                    entity_urn=urn, aspect=Container(container=self.container_urn)
                )
            )
        out += self.generate_inlet_outlet_mcp(materialize_iolets)
        return out

    def generate_inlet_outlet_mcp(
        self, materialize_iolets: bool = True
    ) -> list[MetadataChangeProposal]:
        urn = str(self.urn)
        inputs = tuple(str(_as_urn(i, "inlets")) for i in self.inlets)
        outputs = tuple(str(_as_urn(o, "outlets")) for o in self.outlets)
        out: list[MetadataChangeProposal] = []
        if inputs:
            out.append(
                MetadataChangeProposal(
                    entity_urn=urn, aspect=DataProcessInstanceInput(inputs=inputs)
                )
            )
        if outputs:
            out.append(
                MetadataChangeProposal(
                    entity_urn=urn, aspect=DataProcessInstanceOutput(outputs=outputs)
                )
            )
        if materialize_iolets:
            out += iolet_key_mcps([*inputs, *outputs])
        return out

    def template_mcps(self) -> list[MetadataChangeProposal]:
        """The DataFlow / DataJob this instance runs, built from the template object or urn."""
        template = self._template_object
        if template is None and self.template_urn is not None:
            turn = _as_urn(self.template_urn, "template_urn")
            if isinstance(turn, DataFlowUrn) or turn.entity_type == "dataFlow":
                flow = DataFlowUrn.from_string(str(turn))
                template = DataFlow(
                    orchestrator=flow.orchestrator, id=flow.flow_id, env=flow.cluster
                )
            elif turn.entity_type == "dataJob":
                job = DataJobUrn.from_string(str(turn))
                template = DataJob(id=job.job_id, flow_urn=job.flow_urn)
        if template is None:
            return []
        if isinstance(template, DataJob):
            return template.generate_mcp(materialize_iolets=False)
        return template.generate_mcp()

    def start_event_mcp(
        self, start_timestamp_millis: int, attempt: int | None = None
    ) -> list[MetadataChangeProposal]:
        self._last_start_ms = start_timestamp_millis
        return [
            MetadataChangeProposal(
                entity_urn=str(self.urn),
                aspect=DataProcessInstanceRunEvent(
                    timestamp_millis=start_timestamp_millis,
                    status=DataProcessRunStatus.STARTED,
                    attempt=attempt,
                ),
            )
        ]

    def end_event_mcp(
        self,
        end_timestamp_millis: int,
        result: InstanceRunResult | str,
        result_type: str | None = None,
        attempt: int | None = None,
        start_timestamp_millis: int | None = None,
    ) -> list[MetadataChangeProposal]:
        start = (
            start_timestamp_millis if start_timestamp_millis is not None else self._last_start_ms
        )
        end = end_timestamp_millis
        duration = max(end - start, 0) if start is not None else None
        if start is not None and end <= start:
            end = start + 1  # never share STARTED's timestamp: the server would keep only one
        result_value = result.value if isinstance(result, enum.Enum) else str(result)
        return [
            MetadataChangeProposal(
                entity_urn=str(self.urn),
                aspect=DataProcessInstanceRunEvent(
                    timestamp_millis=end,
                    status=DataProcessRunStatus.COMPLETE,
                    attempt=attempt,
                    result=RunResult(
                        type=RunResultType(result_value),
                        native_result_type=result_type
                        if result_type is not None
                        else self.orchestrator,
                    ),
                    duration_millis=duration,
                ),
            )
        ]

    def start_mcps(
        self,
        start_timestamp_millis: int,
        attempt: int | None = None,
        emit_template: bool = True,
        materialize_iolets: bool = True,
    ) -> list[MetadataChangeProposal]:
        """Everything ``emit_process_start`` sends, in order, without sending it."""
        out: list[MetadataChangeProposal] = []
        if emit_template:
            out += self.template_mcps()
        out += self.generate_mcp(start_timestamp_millis, materialize_iolets)
        out += self.start_event_mcp(start_timestamp_millis, attempt)
        return out

    def end_mcps(
        self,
        end_timestamp_millis: int,
        result: InstanceRunResult | str,
        result_type: str | None = None,
        attempt: int | None = None,
        start_timestamp_millis: int | None = None,
    ) -> list[MetadataChangeProposal]:
        """Everything ``emit_process_end`` sends, without sending it."""
        return self.end_event_mcp(
            end_timestamp_millis, result, result_type, attempt, start_timestamp_millis
        )

    # -- emitting ----------------------------------------------------------------------------------

    def emit_process_start(  # noqa: PLR0917  # the seed API takes these positionally
        self,
        emitter: Any,
        start_timestamp_millis: int,
        attempt: int | None = None,
        emit_template: bool = True,
        materialize_iolets: bool = True,
        callback: Any = None,
    ) -> None:
        _emit_all(
            emitter,
            self.start_mcps(start_timestamp_millis, attempt, emit_template, materialize_iolets),
        )

    def emit_process_end(  # noqa: PLR0917  # the seed API takes these positionally
        self,
        emitter: Any,
        end_timestamp_millis: int,
        result: InstanceRunResult | str,
        result_type: str | None = None,
        attempt: int | None = None,
        start_timestamp_millis: int | None = None,
        callback: Any = None,
    ) -> None:
        _emit_all(
            emitter,
            self.end_mcps(
                end_timestamp_millis, result, result_type, attempt, start_timestamp_millis
            ),
        )

    def emit(
        self, emitter: Any, callback: Any = None, created_ts_millis: int | None = None
    ) -> None:
        _emit_all(emitter, self.generate_mcp(created_ts_millis, materialize_iolets=True))
