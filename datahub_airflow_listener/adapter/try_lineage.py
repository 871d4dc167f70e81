"""A try's lineage, in the process that ran it: declared, set at run time, resolved, reported.

The process that runs a try is the one that knows its lineage; it alone sends the try's
``dataProcessInstanceInput`` / ``Output`` (one writer per aspect, so no other process's late
copy can overwrite it):

* when the try starts: what the task declares (:func:`declared`), so a try killed later still
  has it;
* when the try ends (:func:`at_end`): the inlets and outlets as ``execute()`` left them, the
  assets its asset aliases resolved to, and what the operator reports of itself
  (:mod:`.operator_lineage`: OpenLineage methods and extractors, with column lineage and SQL).
  :func:`end_mcps` sends the run's aspects again only if they changed, and the DataJob's
  ``dataJobInputOutput`` (merged with what the task declares and its upstream jobs) plus its
  SQL as ``dataTransformLogic`` only when the operator or ``execute()`` added something.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import attrs

from datahub_airflow_listener.adapter import lineage, operator_lineage
from datahub_airflow_listener.domain.aspects import FineGrainedLineage
from datahub_airflow_listener.domain.clock import now_ms
from datahub_airflow_listener.domain.extras import try_operation_mcps
from datahub_airflow_listener.domain.lineage import TaskLineage, dataset_env, filter_urns
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from datahub_airflow_listener.domain.openlineage import column_lineage, ol_dataset_urn
from datahub_airflow_listener.domain.runs import TaskRunFacts

log = logging.getLogger(__name__)

__all__ = ["TryLineage", "at_end", "declared", "end_mcps", "prepare"]


@attrs.frozen(kw_only=True)
class TryLineage:
    """Urns a try read and wrote, with the DataJob-level extras only an operator reports."""

    inlets: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()
    upstream_jobs: tuple[str, ...] = ()
    fine_grained: tuple[FineGrainedLineage, ...] = ()
    sql: str | None = None

    @property
    def io(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.inlets, self.outlets


def declared(task: Any, config: Any) -> TryLineage:
    """What the task declares (before ``execute()`` runs)."""
    if task is None:
        return TryLineage()
    found = lineage.task_lineage(task, config=config)
    lineage.log_warnings(found.warnings)
    return _of(found)


def prepare(task: Any, config: Any) -> None:
    """At the try's start: begin importing the OpenLineage provider if the task will need it."""
    if operator_lineage.wanted(task, config):
        operator_lineage.warm_up()


def at_end(task: Any, ti: Any, *, config: Any, succeeded: bool) -> TryLineage:
    """Everything known of the try's lineage when it ends (never raises)."""
    if task is None:
        return TryLineage()
    try:
        found = lineage.task_lineage(task, ti if succeeded else None, config=config)
        lineage.log_warnings(found.warnings)
        result = _of(found)
        if operator_lineage.wanted(task, config):
            reported = operator_lineage.extract(
                task, ti, failed=not succeeded, timeout=_timeout(config)
            )
            if reported is not None:
                result = _merge(result, reported, config)
        return result
    except Exception as exc:  # defensive: a hostile task object
        lineage.log_warnings([f"task {getattr(task, 'task_id', '?')}: lineage not read: {exc!r}"])
        return declared(task, config)


def end_mcps(
    runtime: Any,
    task: Any,
    facts: TaskRunFacts,
    *,
    start: TryLineage | None,
    end: TryLineage,
) -> list[MetadataChangeProposal]:
    """What the try's end sends: its run's inputs/outputs unless ``start`` sent the same, the
    DataJob's lineage when the end knows more than the task declares, and (with
    ``materialize_iolets``) an operation on each dataset a try that succeeded wrote."""
    mcps: list[MetadataChangeProposal] = []
    if start is None or start.io != end.io:
        mcps.extend(
            runtime.mapper.task_run_io(attrs.evolve(facts, inlets=end.inlets, outlets=end.outlets))
        )
    base = start if start is not None else declared(task, runtime.config)
    job_changed = end.io != base.io or end.fine_grained or end.sql
    if job_changed and getattr(runtime.config, "enable_datajob_lineage", True):
        mcps.extend(_job_mcps(runtime, task, facts, end))
    if getattr(runtime.config, "materialize_iolets", True):
        end_ms = facts.end_ms if facts.end_ms is not None else now_ms()
        mcps.extend(try_operation_mcps(facts, end.outlets, time_ms=end_ms))
    return mcps


# -- helpers --------------------------------------------------------------------------------------


def _of(found: TaskLineage) -> TryLineage:
    return TryLineage(
        inlets=tuple(found.inlets),
        outlets=tuple(found.outlets),
        upstream_jobs=tuple(found.upstream_jobs),
    )


def _timeout(config: Any) -> float:
    value = getattr(config, "extractor_timeout_sec", None)
    return float(value) if isinstance(value, int | float) and value > 0 else 5.0


def _urns(
    datasets: Iterable[tuple[str, str]], env: str, connections: Any
) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for namespace, name in datasets:
        try:
            urn, warning = ol_dataset_urn(namespace, name, env=env, connections=connections)
        except Exception as exc:
            lineage.log_warnings([f"OpenLineage dataset {namespace}/{name} not named: {exc}"])
            continue
        if warning:
            scheme = namespace.split("://", 1)[0]
            lineage.log_warnings([f"OpenLineage namespace scheme {scheme!r}: {warning}"])
        out[(namespace, name)] = urn
    return out


def _merge(base: TryLineage, reported: operator_lineage.Found, config: Any) -> TryLineage:
    env = dataset_env(getattr(config, "cluster", None))
    connections = getattr(config, "asset_connections", None)
    pattern = lineage.pattern_of(config)
    named = _urns((*reported.inputs, *reported.outputs), env, connections)
    inputs = filter_urns((named[d] for d in reported.inputs if d in named), pattern)
    outputs = filter_urns((named[d] for d in reported.outputs if d in named), pattern)
    fine: list[FineGrainedLineage] = []
    by_output: dict[tuple[str, str], dict[str, list[tuple[str, str, str]]]] = {}
    for dataset, column, fields in reported.columns:
        by_output.setdefault(dataset, {}).setdefault(column, []).extend(fields)
    for dataset, columns in by_output.items():
        urn = named.get(dataset)
        if urn is None or urn not in outputs:
            continue
        kept = {c: sources for c, sources in columns.items() if not _positional(c)}
        fine.extend(column_lineage(urn, kept, env=env, connections=connections))
    return TryLineage(
        inlets=tuple(dict.fromkeys((*base.inlets, *inputs))),
        outlets=tuple(dict.fromkeys((*base.outlets, *outputs))),
        upstream_jobs=base.upstream_jobs,
        fine_grained=tuple(fine),
        sql=reported.sql,
    )


def _positional(column: str) -> bool:
    """``_0``, ``_1``: the SQL parser's name for an output column it could not name."""
    return column.startswith("_") and column[1:].isdigit()


def _job_mcps(
    runtime: Any, task: Any, facts: TaskRunFacts, end: TryLineage
) -> list[MetadataChangeProposal]:
    from datahub_airflow_listener.adapter import templates
    from datahub_airflow_listener.domain.pipeline import TemplateOptions, job_io_mcps

    task_facts, _ = templates.task_facts(
        task,
        config=runtime.config,
        base_url=runtime.base_url,
        dag_id=facts.dag_id,
        lineage=TaskLineage(end.inlets, end.outlets, end.upstream_jobs, ()),
    )
    task_facts = attrs.evolve(task_facts, fine_grained=end.fine_grained, sql=end.sql)
    return job_io_mcps(facts.dag_id, task_facts, TemplateOptions.from_config(runtime.config))
