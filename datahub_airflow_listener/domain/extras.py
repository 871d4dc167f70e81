"""Aspects beside a run's record that the official DataHub Airflow plugin sends too.

Pure (stdlib + attrs). Each function builds what one config key asks for, from plain values:

* :func:`instance_platform_mcps` / :func:`with_instance_platform` -- ``dataPlatformInstance``
  on process instances when ``[datahub] platform_instance`` is set (the flows and jobs carry it
  already), so DataHub files a deployment's runs under its instance;
* :func:`tag_status_mcps` -- ``status {removed: false}`` on each tag a template names: the tag
  entity exists (its key is written with any aspect), and one soft-deleted by hand comes back;
* :func:`dataset_operation_mcps` / :func:`try_operation_mcps` -- an ``operation`` on each
  dataset a try that succeeded wrote (with ``materialize_iolets``): DataHub's "last updated"
  of the dataset is the try's end.

Nothing here reads a clock: the caller passes the times, so a re-sent operation is the same
timeseries row (DataHub keys it by urn and ``timestampMillis``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from datahub_airflow_listener.domain.aspects import (
    DataPlatformInstance,
    DataProcessInstanceProperties,
    Operation,
    OperationSourceType,
    OperationType,
    Status,
)
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.runs import TaskRunFacts
from datahub_airflow_listener.domain.urns import (
    make_data_platform_instance_urn,
    make_data_platform_urn,
    make_tag_urn,
    make_user_urn,
)

__all__ = [
    "OPERATION_ACTOR",
    "dataset_operation_mcps",
    "try_operation_mcps",
    "instance_platform_mcps",
    "tag_status_mcps",
    "with_instance_platform",
]

ORCHESTRATOR: Final = "airflow"
# The actor of a dataset operation an Airflow task performed, as the official plugin names it.
OPERATION_ACTOR: Final = make_user_urn(ORCHESTRATOR)


def instance_platform_mcps(
    urn: str, instance: str | None, orchestrator: str = ORCHESTRATOR
) -> list[MetadataChangeProposal]:
    """``dataPlatformInstance`` of one process instance (none without a platform instance)."""
    if not instance:
        return []
    aspect = DataPlatformInstance(
        platform=make_data_platform_urn(orchestrator),
        instance=make_data_platform_instance_urn(orchestrator, instance),
    )
    return [MetadataChangeProposal(entity_urn=urn, aspect=aspect)]


def with_instance_platform(
    mcps: Sequence[MetadataChangeProposal], instance: str | None, orchestrator: str = ORCHESTRATOR
) -> Sequence[MetadataChangeProposal]:
    """``mcps`` with a ``dataPlatformInstance`` right after each process instance's
    properties (sent once per instance start, so the platform goes with it, never alone).

    Returns ``mcps`` itself when there is nothing to add.
    """
    if not instance or not any(isinstance(m.aspect, DataProcessInstanceProperties) for m in mcps):
        return mcps
    out: list[MetadataChangeProposal] = []
    for mcp in mcps:
        out.append(mcp)
        if isinstance(mcp.aspect, DataProcessInstanceProperties):
            out.extend(instance_platform_mcps(mcp.entity_urn, instance, orchestrator))
    return out


def tag_status_mcps(tags: Iterable[str]) -> list[MetadataChangeProposal]:
    """``status {removed: false}`` on each tag (by name or urn), once each, sorted."""
    urns = sorted({t if t.startswith("urn:li:tag:") else make_tag_urn(t) for t in tags if t})
    return [MetadataChangeProposal(entity_urn=u, aspect=Status(removed=False)) for u in urns]


def dataset_operation_mcps(
    outlets: Iterable[str],
    *,
    time_ms: int,
    operation_type: OperationType = OperationType.CREATE,
    actor: str = OPERATION_ACTOR,
    properties: Mapping[str, object] | None = None,
) -> list[MetadataChangeProposal]:
    """An ``operation`` on each dataset among ``outlets`` (other entity types are skipped).

    ``time_ms`` is when the data changed (a try's end): both the event time and DataHub's
    ``lastUpdatedTimestamp``. ``operation_type`` defaults to ``CREATE``, the type the official
    plugin reports for a task's outputs (it cannot tell an insert from an overwrite either).
    ``properties`` (e.g. the task run it came from) become the operation's customProperties.
    """
    out: list[MetadataChangeProposal] = []
    custom = {str(k): str(v) for k, v in (properties or {}).items() if v is not None} or None
    for urn in dict.fromkeys(outlets):
        if not urn.startswith("urn:li:dataset:"):
            continue
        aspect = Operation(
            timestamp_millis=time_ms,
            actor=actor,
            operation_type=operation_type,
            source_type=OperationSourceType.DATA_PROCESS,
            custom_properties=custom,
            last_updated_timestamp=time_ms,
        )
        out.append(MetadataChangeProposal(entity_urn=urn, aspect=aspect))
    return out


def try_operation_mcps(
    facts: TaskRunFacts, outlets: Iterable[str], *, time_ms: int
) -> list[MetadataChangeProposal]:
    """The operations of a try that succeeded: one per dataset it wrote, at ``time_ms`` (its
    end), naming the task run in customProperties. Nothing for any other outcome."""
    if facts.state != "success":
        return []
    properties = {
        "dag_id": facts.dag_id,
        "task_id": facts.task_id,
        "run_id": facts.run_id,
        "map_index": facts.map_index if facts.map_index >= 0 else None,
        "try_number": facts.try_number,
    }
    return dataset_operation_mcps(outlets, time_ms=time_ms, properties=properties)
