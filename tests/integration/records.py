"""What the plugin recorded, read back and grouped into process instances; golden normalisation.

Input is a list of MCPs in either form DataHub accepts -- the Rest.li envelope
(``"aspect": {"value": "<json string>"}``, as a GMS receives it) or the file form
(``"aspect": {"json": {...}}``, as the ``datahub-file`` connection writes it). :class:`Recorded`
parses every aspect once and answers the questions the tests ask: the DAG-run instance of a
run, the task-run instances under it, their run events, which instances were left open.

Golden files (:func:`golden_form`) hold canonical JSON with everything that changes between
two identical runs replaced by a placeholder: timestamps, durations, run ids with dates,
hostnames, paths, ports, versions, and the process-instance urns (md5 of ids that contain
the run id) -- those become readable labels such as ``<run etl_orders>`` or
``<task taskflow_mapping.process_region[2]>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

FLOW_PREFIX: Final = "urn:li:dataFlow:(airflow,"
JOB_PREFIX: Final = "urn:li:dataJob:("
DPI_PREFIX: Final = "urn:li:dataProcessInstance:"

_ISO_TS: Final = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d(:|%3A)\d\d(:|%3A)\d\d(\.\d+)?((\+|%2B)\d\d(:|%3A)\d\d|Z)?"
)
_LOCAL_URL: Final = re.compile(r"https?://(127\.0\.0\.1|localhost)(:\d+)?")
_TMP_PATH: Final = re.compile(r"/tmp/[^\s\"',)]+")
_VOLATILE_MS_KEYS: Final = frozenset(
    {"timestampMillis", "lastObserved", "time", "lastUpdatedTimestamp"}
)
_VOLATILE_PROPS: Final = frozenset(
    {"hostname", "airflow_version", "plugin_version", "pid", "executor", "start_date", "end_date"}
)


def aspect_of(mcp: Mapping[str, Any]) -> dict[str, Any]:
    """The aspect of an MCP in either form, as a dict."""
    aspect = mcp.get("aspect") or {}
    if "json" in aspect:
        return dict(aspect["json"])
    if "value" in aspect:
        value = aspect["value"]
        return dict(json.loads(value) if isinstance(value, str) else value)
    raise ValueError(f"MCP without aspect value: {mcp!r}")


def read_file_output(path: Path) -> list[dict[str, Any]]:
    """MCPs of a ``datahub-file`` output (a JSON array); [] if nothing was written yet."""
    if not path.exists() or path.stat().st_size == 0:
        return []
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array, got {type(data).__name__}")
    return data


@attrs.define
class Instance:
    """All aspects recorded for one process-instance urn (latest non-timeseries aspect wins)."""

    urn: str
    aspects: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    events: list[dict[str, Any]] = attrs.field(factory=list)
    mcp_count: int = 0

    @property
    def properties(self) -> dict[str, Any]:
        return self.aspects.get("dataProcessInstanceProperties", {})

    @property
    def custom(self) -> dict[str, str]:
        return dict(self.properties.get("customProperties", {}))

    @property
    def relationships(self) -> dict[str, Any]:
        return self.aspects.get("dataProcessInstanceRelationships", {})

    @property
    def parent_template(self) -> str | None:
        return self.relationships.get("parentTemplate")

    @property
    def parent_instance(self) -> str | None:
        return self.relationships.get("parentInstance")

    @property
    def inputs(self) -> list[str]:
        return list(self.aspects.get("dataProcessInstanceInput", {}).get("inputs", []))

    @property
    def outputs(self) -> list[str]:
        return list(self.aspects.get("dataProcessInstanceOutput", {}).get("outputs", []))

    @property
    def is_flow_run(self) -> bool:
        return (self.parent_template or "").startswith("urn:li:dataFlow:")

    def started(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("status") == "STARTED"]

    def completed(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("status") == "COMPLETE"]

    def result_by_attempt(self) -> dict[int, str]:
        """attempt -> result type of its COMPLETE event (a re-sent duplicate agrees or fails)."""
        results: dict[int, str] = {}
        for event in self.completed():
            attempt = int(event.get("attempt", 0))
            result = event.get("result", {}).get("type")
            if attempt in results and results[attempt] != result:
                raise AssertionError(
                    f"{self.urn}: attempt {attempt} completed as {results[attempt]} and {result}"
                )
            results[attempt] = result
        return results

    def open_attempts(self) -> list[int]:
        """Attempts with a STARTED and no COMPLETE (what "left running forever" looks like)."""
        done = {int(e.get("attempt", 0)) for e in self.completed()}
        return sorted({int(e.get("attempt", 0)) for e in self.started()} - done)

    def final_result(self) -> str | None:
        results = self.result_by_attempt()
        return results[max(results)] if results else None


class Recorded:
    """MCPs grouped by entity; process instances indexed by their templates."""

    def __init__(self, mcps: Iterable[Mapping[str, Any]]) -> None:
        self.mcps = [dict(m) for m in mcps]
        self.instances: dict[str, Instance] = {}
        self.other: list[dict[str, Any]] = []
        for mcp in self.mcps:
            urn = mcp["entityUrn"]
            if not urn.startswith(DPI_PREFIX):
                self.other.append(mcp)
                continue
            inst = self.instances.setdefault(urn, Instance(urn))
            inst.mcp_count += 1
            aspect = aspect_of(mcp)
            if mcp["aspectName"] == "dataProcessInstanceRunEvent":
                inst.events.append(aspect)
            else:
                inst.aspects[mcp["aspectName"]] = aspect
        for inst in self.instances.values():
            inst.events.sort(
                key=lambda e: (e.get("timestampMillis", 0), e.get("status") != "STARTED")
            )

    @classmethod
    def from_file(cls, path: Path) -> Recorded:
        return cls(read_file_output(path))

    def __len__(self) -> int:
        return len(self.mcps)

    def flow_runs(self, dag_id: str, run_id: str | None = None) -> list[Instance]:
        """DAG-run instances of ``dag_id`` (optionally the one of ``run_id``)."""
        prefix = f"{FLOW_PREFIX}{dag_id},"
        return [
            i
            for i in self.instances.values()
            if (i.parent_template or "").startswith(prefix)
            and (run_id is None or i.custom.get("run_id") == run_id)
        ]

    def flow_run(self, dag_id: str, run_id: str | None = None) -> Instance:
        runs = self.flow_runs(dag_id, run_id)
        if len(runs) != 1:
            raise AssertionError(f"expected one run instance of {dag_id}/{run_id}, got {len(runs)}")
        return runs[0]

    def task_runs(self, parent: Instance, task_id: str | None = None) -> list[Instance]:
        """Task-run instances whose parentInstance is ``parent`` (optionally of one task)."""
        return sorted(
            (
                i
                for i in self.instances.values()
                if i.parent_instance == parent.urn
                and (task_id is None or job_task_id(i.parent_template) == task_id)
            ),
            key=lambda i: (
                job_task_id(i.parent_template) or "",
                int(i.custom.get("map_index", -1)),
            ),
        )

    def task_run(self, parent: Instance, task_id: str) -> Instance:
        runs = self.task_runs(parent, task_id)
        if len(runs) != 1:
            raise AssertionError(f"expected one run instance of task {task_id}, got {len(runs)}")
        return runs[0]

    def open_instances(self) -> list[tuple[str, list[int]]]:
        """(urn, open attempts) of every instance left STARTED without a COMPLETE."""
        return [(i.urn, i.open_attempts()) for i in self.instances.values() if i.open_attempts()]


def job_task_id(job_urn: str | None) -> str | None:
    """task_id of ``urn:li:dataJob:(urn:li:dataFlow:(airflow,dag,prod),task)``."""
    if not job_urn or not job_urn.startswith(JOB_PREFIX):
        return None
    return job_urn[:-1].rsplit(",", 1)[1]


def flow_dag_id(flow_urn: str | None) -> str | None:
    if not flow_urn or not flow_urn.startswith(FLOW_PREFIX):
        return None
    return flow_urn[len(FLOW_PREFIX) :].split(",", 1)[0]


# -- golden files ---------------------------------------------------------------------------


def _labels(recorded: Recorded) -> dict[str, str]:
    """A readable, run-independent label for every process-instance urn."""
    labels: dict[str, str] = {}
    for inst in recorded.instances.values():
        template = inst.parent_template
        if inst.is_flow_run:
            labels[inst.urn] = f"<run {flow_dag_id(template)}>"
        elif template and template.startswith(JOB_PREFIX):
            flow = template[len(JOB_PREFIX) :].rsplit(",", 1)[0]
            map_index = int(inst.custom.get("map_index", -1))
            suffix = f"[{map_index}]" if map_index >= 0 else ""
            labels[inst.urn] = f"<task {flow_dag_id(flow)}.{job_task_id(template)}{suffix}>"
        else:
            labels[inst.urn] = "<instance without relationships>"
    return labels


def _normalise(
    value: Any, key: str | None, labels: Mapping[str, str], volatile: Sequence[str]
) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                "<volatile>"
                if key == "customProperties" and k in _VOLATILE_PROPS
                else _normalise(v, k, labels, volatile)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalise(v, key, labels, volatile) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and key in _VOLATILE_MS_KEYS:
        return "<ms>"
    if isinstance(value, int) and key == "durationMillis":
        return "<duration>"
    if isinstance(value, str) and key == "externalUrl":
        return "<airflow ui url>"  # each Airflow version has its own routes (tested apart)
    if isinstance(value, str):
        if value in labels:
            return labels[value]
        if value.startswith(DPI_PREFIX):  # names an instance nobody recorded (a dangling link)
            return "<unrecorded instance>"
        for s in volatile:
            value = value.replace(s, "<volatile>")
        value = _ISO_TS.sub("<ts>", value)
        value = _LOCAL_URL.sub("http://<host>", value)
        value = _TMP_PATH.sub("<tmp>", value)
        for urn, label in labels.items():
            value = value.replace(urn, label)
    return value


def golden_form(
    mcps: Iterable[Mapping[str, Any]], volatile: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Canonical, sorted, de-duplicated, normalised MCPs (aspects as parsed JSON).

    ``volatile`` lists extra literal strings to hide (e.g. the machine's hostname).
    Exact re-sends collapse into one entry: they are harmless by contract, and how many of
    them happen depends on process timing; their count is asserted separately.
    """
    recorded = Recorded(mcps)
    labels = _labels(recorded)
    out: dict[str, dict[str, Any]] = {}
    for mcp in recorded.mcps:
        item = {
            "entityType": mcp.get("entityType"),
            "entityUrn": mcp["entityUrn"],
            "changeType": mcp.get("changeType"),
            "aspectName": mcp["aspectName"],
            "aspect": aspect_of(mcp),
        }
        norm = _normalise(item, None, labels, volatile)
        out[json.dumps(norm, sort_keys=True)] = norm

    def order(item: dict[str, Any]) -> tuple[Any, ...]:
        aspect = item["aspect"]
        return (
            item["entityUrn"],
            item["aspectName"],
            aspect.get("attempt", 0) if isinstance(aspect, dict) else 0,
            aspect.get("status", "") != "STARTED" if isinstance(aspect, dict) else 0,
            json.dumps(item, sort_keys=True),
        )

    return sorted(out.values(), key=order)


def dump_golden(items: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(items), indent=1, sort_keys=True) + "\n"
