"""The pure mapping from an orchestrator's runs to process-instance MCPs.

The Airflow adapter extracts plain values (:class:`DagRunFacts`, :class:`TaskRunFacts`) from
Airflow objects; :class:`RunMapper` turns them into MCPs. Nothing here knows Airflow, so the
rules below are tested without it:

* A DAG run is a FLOW-level instance whose parentTemplate is the DataFlow.
* A task try is a JOB-level instance whose parentTemplate is the DataJob and whose
  parentInstance is the DAG run's instance; retries share the urn, ``attempt`` = try_number.
* Ids: an unmapped task run keeps the widely installed DataHub plugin's id
  ``f"{dag_id}_{task_id}_{run_id}"`` so history carries over. DAG-run and mapped-task ids start
  with ``@``, which no Airflow dag id may start with (ids match ``[\\w.-]+``), so they can
  never equal any unmapped task run's id; their ``:``-separated parts (``:`` is not allowed in
  dag or task ids either) keep them distinct from each other.
* STARTED and COMPLETE of one try never share a timestamp (the server would keep only one).
* ``upstreamInstances``: a task run follows its upstream tasks' runs in its DAG run (every
  map index of a mapped upstream) and the runs in :attr:`TaskRunFacts.upstream_runs` (what an
  ``ExternalTaskSensor`` waited for); a DAG run follows the runs of its :class:`RunLinks`
  (who triggered it, who produced the asset events it consumed), whose latest event per
  dataset is also an input edge of the DAG run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from datahub_airflow_listener.domain.aspects import (
    AuditStamp,
    DataProcessInstanceInput,
    DataProcessInstanceOutput,
    DataProcessInstanceProperties,
    DataProcessInstanceRelationships,
    DataProcessInstanceRunEvent,
    DataProcessRunStatus,
    DataProcessType,
    Edge,
    RunResult,
    RunResultType,
)
from datahub_airflow_listener.domain.clock import now_ms
from datahub_airflow_listener.domain.links import RunLinks, RunRef, sorted_refs
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.urns import (
    make_data_flow_urn,
    make_data_job_urn,
    make_data_process_instance_urn,
)

__all__ = [
    "DagRunFacts",
    "RunMapper",
    "TaskRunFacts",
    "dag_run_instance_id",
    "task_run_instance_id",
]

ORCHESTRATOR: Final = "airflow"
AD_HOC_RUN_TYPES: Final = frozenset({"manual", "backfill"})


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _ref_tuple(values: Iterable[RunRef]) -> tuple[RunRef, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class DagRunFacts:
    """Plain values of one DAG run, as extracted by the adapter."""

    dag_id: str
    run_id: str
    run_type: str | None = None
    logical_date: str | None = None
    data_interval_start: str | None = None
    data_interval_end: str | None = None
    conf_keys: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    clear_number: int | None = None
    airflow_version: str = ""
    start_ms: int | None = None
    end_ms: int | None = None
    state: str | None = None
    url: str | None = None
    links: RunLinks = attrs.field(factory=RunLinks)

    @property
    def attempt(self) -> int:
        """A cleared DAG run starts again on the same instance: its attempt counts the clears."""
        return (self.clear_number or 0) + 1


@attrs.frozen(kw_only=True)
class TaskRunFacts:
    """Plain values of one task try, as extracted by the adapter."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1
    max_tries: int | None = None
    state: str | None = None
    operator: str | None = None
    pool: str | None = None
    queue: str | None = None
    executor: str | None = None
    hostname: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    upstream_task_ids: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    inlets: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    outlets: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    url: str | None = None
    run_type: str | None = None
    # runs beyond the unmapped upstream tasks: mapped upstream instances, external runs
    upstream_runs: tuple[RunRef, ...] = attrs.field(default=(), converter=_ref_tuple)


# Template urns repeat for every run of a DAG: build each once (bounded; errors are not cached).
@functools.lru_cache(maxsize=4096)
def _flow_urn(orchestrator: str, dag_id: str, cluster: str, platform_instance: str | None) -> str:
    return make_data_flow_urn(orchestrator, dag_id, cluster, platform_instance)


@functools.lru_cache(maxsize=16384)
def _job_urn(
    orchestrator: str, dag_id: str, task_id: str, cluster: str, platform_instance: str | None
) -> str:
    return make_data_job_urn(_flow_urn(orchestrator, dag_id, cluster, platform_instance), task_id)


def dag_run_instance_id(dag_id: str, run_id: str) -> str:
    """The process-instance id of a DAG run (never equal to any task run's id)."""
    return f"@dag_run:{dag_id}:{run_id}"


def task_run_instance_id(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """The process-instance id of a task run; unmapped keeps the official plugin's form."""
    if map_index is None or map_index < 0:
        return f"{dag_id}_{task_id}_{run_id}"
    return f"@task:{dag_id}:{task_id}:{map_index}:{run_id}"


def _props(values: Mapping[str, object | None]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None and v != ""}


def _run_type(run_type: str | None) -> DataProcessType:
    if run_type and run_type.lower() in AD_HOC_RUN_TYPES:
        return DataProcessType.BATCH_AD_HOC
    return DataProcessType.BATCH_SCHEDULED


@attrs.frozen(kw_only=True)
class RunMapper:
    """Builds the MCPs for DAG runs and task tries of one deployment (cluster)."""

    cluster: str = "prod"
    platform_instance: str | None = None
    orchestrator: str = ORCHESTRATOR

    # -- urns -------------------------------------------------------------------------------

    def flow_urn(self, dag_id: str) -> str:
        return _flow_urn(self.orchestrator, dag_id, self.cluster, self.platform_instance)

    def job_urn(self, dag_id: str, task_id: str) -> str:
        return _job_urn(self.orchestrator, dag_id, task_id, self.cluster, self.platform_instance)

    def dag_run_urn(self, dag_id: str, run_id: str) -> str:
        return make_data_process_instance_urn(
            self.orchestrator, self.cluster, dag_run_instance_id(dag_id, run_id)
        )

    def task_run_urn(self, dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
        return make_data_process_instance_urn(
            self.orchestrator,
            self.cluster,
            task_run_instance_id(dag_id, task_id, run_id, map_index),
        )

    def ref_urn(self, ref: RunRef) -> str:
        """The instance urn of another run (a DAG run or a task run)."""
        if ref.task_id is None:
            return self.dag_run_urn(ref.dag_id, ref.run_id)
        return self.task_run_urn(ref.dag_id, ref.task_id, ref.run_id, ref.map_index)

    # -- DAG runs -----------------------------------------------------------------------------

    def dag_run_started(self, facts: DagRunFacts) -> list[MetadataChangeProposal]:
        urn = self.dag_run_urn(facts.dag_id, facts.run_id)
        start = facts.start_ms if facts.start_ms is not None else now_ms()
        props = DataProcessInstanceProperties(
            name=facts.run_id,
            type=_run_type(facts.run_type),
            created=AuditStamp(time=start),
            external_url=facts.url,
            custom_properties=_props(
                {
                    "run_id": facts.run_id,
                    "run_type": facts.run_type,
                    "logical_date": facts.logical_date,
                    "data_interval_start": facts.data_interval_start,
                    "data_interval_end": facts.data_interval_end,
                    "conf_keys": ",".join(sorted(facts.conf_keys)) if facts.conf_keys else None,
                    "clear_number": facts.clear_number,
                    "airflow_version": facts.airflow_version,
                }
            ),
        )
        event = DataProcessInstanceRunEvent(
            timestamp_millis=start, status=DataProcessRunStatus.STARTED, attempt=facts.attempt
        )
        return [
            MetadataChangeProposal(entity_urn=urn, aspect=props),
            *self.dag_run_links(facts),
            MetadataChangeProposal(entity_urn=urn, aspect=event),
        ]

    def dag_run_links(self, facts: DagRunFacts) -> list[MetadataChangeProposal]:
        """The DAG run's relationships (its DataFlow, the runs it follows) and, when it
        consumed asset events, its inputs: one edge per dataset, created at the latest
        event's time, with that event's extra as properties."""
        urn = self.dag_run_urn(facts.dag_id, facts.run_id)
        rel = DataProcessInstanceRelationships(
            parent_template=self.flow_urn(facts.dag_id),
            upstream_instances=self._urns(facts.links.upstream()),
        )
        out = [MetadataChangeProposal(entity_urn=urn, aspect=rel)]
        consumed = facts.links.inputs()
        if consumed:
            edges = tuple(
                Edge(
                    destination_urn=e.dataset_urn,
                    created=AuditStamp(time=e.timestamp_ms),
                    properties=e.properties or None,
                )
                for e in consumed
            )
            inputs = tuple(e.dataset_urn for e in consumed)
            out.append(
                MetadataChangeProposal(
                    entity_urn=urn,
                    aspect=DataProcessInstanceInput(inputs=inputs, input_edges=edges),
                )
            )
        return out

    def _urns(self, refs: Iterable[RunRef]) -> tuple[str, ...]:
        """The instance urns of ``refs``, distinct, in the refs' stable order."""
        return tuple(dict.fromkeys(self.ref_urn(r) for r in sorted_refs(refs)))

    def dag_run_completed(self, facts: DagRunFacts, result: str) -> list[MetadataChangeProposal]:
        urn = self.dag_run_urn(facts.dag_id, facts.run_id)
        native = facts.state or result.lower()
        return [
            MetadataChangeProposal(
                entity_urn=urn,
                aspect=_complete_event(
                    facts.start_ms,
                    facts.end_ms,
                    attempt=facts.attempt,
                    result=result,
                    native_result=native,
                ),
            )
        ]

    # -- task tries -------------------------------------------------------------------------

    def task_run_started(self, facts: TaskRunFacts) -> list[MetadataChangeProposal]:
        urn = self.task_run_urn(facts.dag_id, facts.task_id, facts.run_id, facts.map_index)
        start = facts.start_ms if facts.start_ms is not None else now_ms()
        instance_id = task_run_instance_id(
            facts.dag_id, facts.task_id, facts.run_id, facts.map_index
        )
        props = DataProcessInstanceProperties(
            name=instance_id
            if facts.map_index < 0
            else f"{facts.dag_id}_{facts.task_id}_{facts.run_id}[{facts.map_index}]",
            type=_run_type(facts.run_type),
            created=AuditStamp(time=start),
            external_url=facts.url,
            custom_properties=_props(
                {
                    "dag_id": facts.dag_id,
                    "task_id": facts.task_id,
                    "run_id": facts.run_id,
                    "try_number": facts.try_number,
                    "max_tries": facts.max_tries,
                    "map_index": facts.map_index,
                    "operator": facts.operator,
                    "pool": facts.pool,
                    "queue": facts.queue,
                    "executor": facts.executor,
                    "hostname": facts.hostname,
                }
            ),
        )
        event = DataProcessInstanceRunEvent(
            timestamp_millis=start,
            status=DataProcessRunStatus.STARTED,
            attempt=facts.try_number,
            external_url=facts.url,
        )
        out = [MetadataChangeProposal(entity_urn=urn, aspect=props)]
        out.extend(self.task_run_relationships(facts))
        out.extend(self._io(urn, facts, start))
        out.append(MetadataChangeProposal(entity_urn=urn, aspect=event))
        return out

    def task_run_relationships(self, facts: TaskRunFacts) -> list[MetadataChangeProposal]:
        """The task run's relationships: its DataJob, its DAG run, the runs it follows."""
        urn = self.task_run_urn(facts.dag_id, facts.task_id, facts.run_id, facts.map_index)
        in_run = (
            RunRef(dag_id=facts.dag_id, run_id=facts.run_id, task_id=up)
            for up in facts.upstream_task_ids
        )
        upstream = self._urns((*in_run, *facts.upstream_runs))
        rel = DataProcessInstanceRelationships(
            parent_template=self.job_urn(facts.dag_id, facts.task_id),
            parent_instance=self.dag_run_urn(facts.dag_id, facts.run_id),
            upstream_instances=upstream,
        )
        return [MetadataChangeProposal(entity_urn=urn, aspect=rel)]

    def task_run_completed(
        self, facts: TaskRunFacts, result: str, native_result: str
    ) -> list[MetadataChangeProposal]:
        urn = self.task_run_urn(facts.dag_id, facts.task_id, facts.run_id, facts.map_index)
        event = _complete_event(
            facts.start_ms,
            facts.end_ms,
            attempt=facts.try_number,
            result=result,
            native_result=native_result,
            url=facts.url,
        )
        return [MetadataChangeProposal(entity_urn=urn, aspect=event)]

    def task_run_io(self, facts: TaskRunFacts) -> list[MetadataChangeProposal]:
        """The try's inputs and outputs alone (what its task process knows best)."""
        urn = self.task_run_urn(facts.dag_id, facts.task_id, facts.run_id, facts.map_index)
        return self._io(urn, facts, facts.start_ms if facts.start_ms is not None else now_ms())

    def _io(self, urn: str, facts: TaskRunFacts, when: int) -> list[MetadataChangeProposal]:
        out: list[MetadataChangeProposal] = []
        stamp = AuditStamp(time=when)
        if facts.inlets:
            edges = tuple(Edge(destination_urn=u, created=stamp) for u in facts.inlets)
            out.append(
                MetadataChangeProposal(
                    entity_urn=urn,
                    aspect=DataProcessInstanceInput(inputs=facts.inlets, input_edges=edges),
                )
            )
        if facts.outlets:
            edges = tuple(Edge(destination_urn=u, created=stamp) for u in facts.outlets)
            out.append(
                MetadataChangeProposal(
                    entity_urn=urn,
                    aspect=DataProcessInstanceOutput(outputs=facts.outlets, output_edges=edges),
                )
            )
        return out


def _complete_event(
    start_ms: int | None,
    end_ms: int | None,
    *,
    attempt: int,
    result: str,
    native_result: str,
    url: str | None = None,
) -> DataProcessInstanceRunEvent:
    """A COMPLETE event whose timestamp is strictly after STARTED's (they'd overwrite)."""
    end = end_ms if end_ms is not None else now_ms()
    duration = max(end - start_ms, 0) if start_ms is not None else None
    if start_ms is not None and end <= start_ms:
        end = start_ms + 1
    return DataProcessInstanceRunEvent(
        timestamp_millis=end,
        status=DataProcessRunStatus.COMPLETE,
        attempt=attempt,
        external_url=url,
        result=RunResult(type=RunResultType(result), native_result_type=native_result),
        duration_millis=duration,
    )
