"""A DAG's templates: DataFlow and DataJob MCPs from plain facts, and their fingerprint.

Pure (stdlib + attrs). The adapter extracts :class:`DagFacts` (with one :class:`TaskFacts` per
task) from an Airflow DAG -- SDK, serialized or 2.x -- and this module builds:

* the DataFlow: ``dataFlowInfo`` (name, description or the doc_md summary, externalUrl,
  ``env`` when the cluster is a DataHub fabric, customProperties ``schedule``, ``start_date``,
  ``catchup``, ``max_active_runs``, ``fileloc``), ``status``, ``ownership`` (DAG owners as
  users, or groups with ``capture_ownership_as_group``), ``globalTags`` (the DAG's tags),
  ``browsePathsV2``;
* one DataJob per task: ``dataJobInfo`` (the operator as its type, doc_md as description,
  customProperties ``retries``, ``pool``, ``queue``, ``trigger_rule``, ``execution_timeout``,
  externalUrl), ``dataJobInputOutput`` (dataset edges, the upstream tasks and annotated
  upstream jobs as input jobs), ``status``, ``ownership`` (the task's owners), ``globalTags``
  (the DAG's tags), ``browsePathsV2`` under its flow;
* with ``materialize_iolets``, the key aspect of every dataset / ML model named, so it exists;
* with ``capture_tags_info``, ``status`` on each tag the DAG has (the tag entities exist).

:func:`template_fingerprint` hashes what was built, ignoring volatile fields, so the adapter
sends a DAG's templates only when they changed (see ``adapter.templates.TemplateTracker``).
Nothing here carries a wall-clock time: the same DAG always produces the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from datahub_airflow_listener.domain.aspects import (
    DataTransform,
    DataTransformLogic,
    FineGrainedLineage,
    QueryStatement,
)
from datahub_airflow_listener.domain.extras import tag_status_mcps
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.templates import DataFlow, DataJob
from datahub_airflow_listener.domain.urns import make_data_flow_urn, make_data_job_urn

__all__ = [
    "DagFacts",
    "TaskFacts",
    "TemplateOptions",
    "dag_template_mcps",
    "doc_summary",
    "flow_template_mcps",
    "flow_urn",
    "job_io_mcps",
    "job_template_mcps",
    "split_owners",
    "template_fingerprint",
]

ORCHESTRATOR: Final = "airflow"
_SUMMARY_MAX: Final = 1000
# Fields no fingerprint may depend on: audit stamps would change on every rebuild if a
# caller ever filled them with "now".
_VOLATILE: Final = frozenset({"created", "lastModified", "lastObserved", "systemMetadata"})


def _strs(value: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if value is not None else ()


def _lineages(values: Iterable[FineGrainedLineage]) -> tuple[FineGrainedLineage, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class TaskFacts:
    """Plain values of one task definition (an operator in a DAG)."""

    task_id: str
    operator: str | None = None
    doc_md: str | None = None
    retries: int | None = None
    pool: str | None = None
    queue: str | None = None
    trigger_rule: str | None = None
    execution_timeout: str | None = None
    upstream_task_ids: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    # urns: datasets / ML models (already filtered by dataset_pattern), and upstream dataJobs
    # named in the task's inlets (jobs outside this DAG).
    inlets: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    outlets: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    upstream_jobs: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    url: str | None = None
    owner: str | None = None
    # known only when a try ends (what the operator reported): column lineage and its SQL
    fine_grained: tuple[FineGrainedLineage, ...] = attrs.field(default=(), converter=_lineages)
    sql: str | None = None


@attrs.frozen(kw_only=True)
class DagFacts:
    """Plain values of one DAG definition, with its tasks."""

    dag_id: str
    description: str | None = None
    doc_md: str | None = None
    schedule: str | None = None
    start_date: str | None = None
    catchup: bool | None = None
    max_active_runs: int | None = None
    fileloc: str | None = None
    url: str | None = None
    owners: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    tasks: tuple[TaskFacts, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen(kw_only=True)
class TemplateOptions:
    """The config keys templates depend on (the adapter's config has the same names)."""

    cluster: str = "prod"
    platform_instance: str | None = None
    capture_ownership_info: bool = True
    capture_ownership_as_group: bool = False
    capture_tags_info: bool = True
    materialize_iolets: bool = True

    @classmethod
    def from_config(cls, config: object) -> TemplateOptions:
        """Read the same-named attributes of any config object; missing ones keep defaults."""
        names = [f.name for f in attrs.fields(cls)]
        values = {n: getattr(config, n) for n in names if hasattr(config, n)}
        return cls(**values)


def split_owners(owner: str | Iterable[str] | None) -> tuple[str, ...]:
    """Airflow's ``owner`` is comma-separated text (``"alice, bob"``): distinct, sorted names."""
    if owner is None:
        return ()
    items = owner.split(",") if isinstance(owner, str) else [str(o) for o in owner]
    return tuple(sorted({o.strip() for o in items if o and o.strip()}))


def doc_summary(doc_md: str | None) -> str | None:
    """A one-paragraph description from Markdown: the first paragraph of prose (lines joined),
    else the first heading's text; at most 1000 characters."""
    if not doc_md or not isinstance(doc_md, str):
        return None
    heading: str | None = None
    paragraph: list[str] = []
    for raw in doc_md.strip().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            if paragraph:
                break
            heading = heading or line.lstrip("#").strip() or None
            continue
        if not line:
            if paragraph:
                break
            continue
        paragraph.append(line)
    text = " ".join(paragraph) or heading or ""
    if len(text) > _SUMMARY_MAX:
        text = text[: _SUMMARY_MAX - 3].rstrip() + "..."
    return text or None


def _props(values: Mapping[str, object | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _owner_sets(owners: Iterable[str], options: TemplateOptions) -> tuple[set[str], set[str]]:
    if not options.capture_ownership_info:
        return set(), set()
    names = set(split_owners(list(owners)))
    return (set(), names) if options.capture_ownership_as_group else (names, set())


def flow_urn(dag_id: str, options: TemplateOptions) -> str:
    return make_data_flow_urn(ORCHESTRATOR, dag_id, options.cluster, options.platform_instance)


def flow_template_mcps(dag: DagFacts, options: TemplateOptions) -> list[MetadataChangeProposal]:
    """The DataFlow's aspects (no job, no dataset)."""
    users, groups = _owner_sets(dag.owners, options)
    flow = DataFlow(
        id=dag.dag_id,
        orchestrator=ORCHESTRATOR,
        cluster=options.cluster,
        name=dag.dag_id,
        description=dag.description or doc_summary(dag.doc_md),
        properties=_props(
            {
                "schedule": dag.schedule,
                "start_date": dag.start_date,
                "catchup": dag.catchup,
                "max_active_runs": dag.max_active_runs,
                "fileloc": dag.fileloc,
            }
        ),
        url=dag.url,
        tags=set(dag.tags) if options.capture_tags_info else set(),
        owners=users,
        group_owners=groups,
        platform_instance=options.platform_instance,
    )
    return flow.generate_mcp()


def _job(dag: DagFacts, task: TaskFacts, options: TemplateOptions) -> DataJob:
    flow = flow_urn(dag.dag_id, options)
    users, groups = _owner_sets(split_owners(task.owner), options)
    upstream = [make_data_job_urn(flow, t) for t in sorted(set(task.upstream_task_ids))]
    return DataJob(
        id=task.task_id,
        flow_urn=flow,
        name=task.task_id,
        description=task.doc_md or None,
        type=task.operator or "COMMAND",
        properties=_props(
            {
                "retries": task.retries,
                "pool": task.pool,
                "queue": task.queue,
                "trigger_rule": task.trigger_rule,
                "execution_timeout": task.execution_timeout,
            }
        ),
        url=task.url,
        tags=set(dag.tags) if options.capture_tags_info else set(),
        owners=users,
        group_owners=groups,
        inlets=list(task.inlets),
        outlets=list(task.outlets),
        upstream_urns=list(dict.fromkeys([*upstream, *task.upstream_jobs])),
        platform_instance=options.platform_instance,
        fine_grained_lineages=list(task.fine_grained),
    )


def job_template_mcps(
    dag: DagFacts, task: TaskFacts, options: TemplateOptions
) -> list[MetadataChangeProposal]:
    """One DataJob's aspects, its lineage included (dataset keys only with materialize_iolets)."""
    return _job(dag, task, options).generate_mcp(
        generate_lineage=True, materialize_iolets=options.materialize_iolets
    )


def job_io_mcps(
    dag: DagFacts | str, task: TaskFacts, options: TemplateOptions
) -> list[MetadataChangeProposal]:
    """Only a DataJob's lineage: ``dataJobInputOutput`` (with column lineage), its SQL as
    ``dataTransformLogic``, and dataset keys with materialize_iolets.

    For lineage known only when a try ends: the adapter passes the task's facts with what the
    try found. ``dag`` may be just the dag id.
    """
    facts = dag if isinstance(dag, DagFacts) else DagFacts(dag_id=dag)
    job = _job(facts, task, options)
    out = job.lineage_mcps(materialize_iolets=options.materialize_iolets)
    if task.sql:
        logic = DataTransformLogic(
            transforms=(DataTransform(query_statement=QueryStatement(value=task.sql)),)
        )
        out.insert(1, MetadataChangeProposal(entity_urn=str(job.urn), aspect=logic))
    return out


def dag_template_mcps(dag: DagFacts, options: TemplateOptions) -> list[MetadataChangeProposal]:
    """The DataFlow, then every DataJob, then each dataset key once, then the status of each
    tag the templates name (order is stable)."""
    out = flow_template_mcps(dag, options)
    keys: dict[tuple[str, str], MetadataChangeProposal] = {}
    for task in sorted(dag.tasks, key=lambda t: t.task_id):
        for mcp in job_template_mcps(dag, task, options):
            if mcp.entity_type in {"dataset", "mlModel"}:
                keys.setdefault((mcp.entity_urn, mcp.aspect_name), mcp)
            else:
                out.append(mcp)
    out.extend(keys.values())
    if options.capture_tags_info:
        out.extend(tag_status_mcps(dag.tags))
    return out


def _stable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def template_fingerprint(mcps: Iterable[MetadataChangeProposal]) -> str:
    """A stable hash of what ``mcps`` say, independent of their order.

    Audit stamps (``created``, ``lastModified``) are left out: they may differ between two
    builds of the same DAG without the DAG having changed.
    """
    lines = sorted(
        json.dumps(
            [m.entity_urn, m.aspect_name, _stable(m.aspect_dict())],
            sort_keys=True,
            separators=(",", ":"),
        )
        for m in mcps
    )
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
