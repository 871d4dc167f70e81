"""The read (and delete) side of a DataHub GMS: run history back out, retention in.

Endpoints used (see DATAHUB_WIRE.md), all through a session built like the
:class:`~.rest.RestTransport`'s (:func:`~.http.build_session`: same headers, TLS settings and
token) from the same :class:`~.rest.RestConfig`:

* ``GET /relationships?direction=INCOMING&urn=<urn>&types=<type>&start=&count=`` -- the
  instances of a DataFlow or DataJob (``InstanceOf``), the task runs of a DAG run
  (``ChildOf``), the DataJobs of a DataFlow (``IsPartOf``); paged.
* ``GET /entitiesV2/<url-encoded urn>`` -- the versioned aspects of one entity.
* ``POST /aspects?action=getTimeseriesAspectValues`` -- the run events of one instance.
* ``POST /entities?action=listUrns`` -- every DataFlow (retention across all DAGs).
* soft delete: an UPSERT of ``status {"removed": true}`` through the RestTransport;
  hard delete: ``POST /entities?action=delete {"urn": ...}`` (removes run events too).

Contract:

* What comes back is rebuilt into MCP dicts (file form for versioned aspects, wire form for run
  events), the input of :mod:`datahub_airflow_listener.domain.history`, so the local store and
  a GMS are read by the same code.
* Only ``dataProcessInstance`` urns can be deleted here: asking to delete anything else (a
  DataFlow, a DataJob, a dataset) raises ``ValueError`` before any request is sent.
* 429/5xx answers and timeouts are retried (``retry_max_times``, with backoff); a refused
  connection, an unknown host or a TLS failure is reported at once (a person is waiting).
* Failures raise the classes of :mod:`.errors`, by the table the transport uses too
  (:class:`~.http.ErrorTable`): ``AuthError`` (401/403), ``NotGmsError`` (404 on an endpoint,
  a web page instead of JSON), ``TransientError`` (network, 429/5xx, after the configured
  retries), ``PermanentError`` (other 4xx). Messages pass through :func:`~.errors.redact`;
  the token never reaches a message or a log line.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote, urlencode

import requests

from datahub_airflow_listener.transport.errors import (
    NotGmsError,
    TransientError,
    TransportError,
    redact,
)
from datahub_airflow_listener.transport.http import (
    ErrorTable,
    answered_ok,
    build_session,
    describe_exception,
    server_message,
)
from datahub_airflow_listener.transport.rest import RestConfig, RestTransport

__all__ = ["DPI_PREFIX", "GmsReader", "RUN_EVENT"]

log = logging.getLogger(__name__)

DPI_PREFIX: Final = "urn:li:dataProcessInstance:"
RUN_EVENT: Final = "dataProcessInstanceRunEvent"
INSTANCE_ASPECTS: Final = (
    "dataProcessInstanceProperties",
    "dataProcessInstanceRelationships",
    "dataProcessInstanceInput",
    "dataProcessInstanceOutput",
    "status",
)


def _entity_type(urn: str) -> str:
    return urn[len("urn:li:") :].split(":", 1)[0] if urn.startswith("urn:li:") else ""


def _unknown_entity(response: requests.Response, message: str) -> bool:
    """A 404 that means "no such entity", not "no such endpoint".

    Rest.li answers an unknown entity with a JSON error; a missing endpoint names the resource
    or action it lacks, and a proxy or the frontend answers with a web page.
    """
    lowered = message.lower()
    ctype = response.headers.get("Content-Type", "").lower()
    return "json" in ctype and "resource" not in lowered and "action" not in lowered


class GmsReader:
    """Reads process instances from one GMS and deletes them. Not thread-safe."""

    def __init__(
        self,
        config: RestConfig,
        *,
        session: requests.Session | None = None,
        page_size: int = 500,
        events_per_instance: int = 200,
    ) -> None:
        self.config = config
        self._session = session or build_session(config)
        hint = "refused the token" if config.token else "requires a token"
        self._errors = ErrorTable(
            no_endpoint_status=frozenset({404}),  # unless it is an unknown entity: see _request
            auth=f"DataHub at {config.server} {hint}",
            unavailable=f"DataHub at {config.server} is unavailable",
            no_endpoint=f"{config.server} has no such Rest.li endpoint; is it DataHub GMS?",
        )
        self._transport: RestTransport | None = None
        self.page_size = page_size
        self.events_per_instance = events_per_instance
        self.requests_sent = 0
        self._sleep = time.sleep

    def __repr__(self) -> str:
        return f"GmsReader(server={self.config.server!r})"

    @property
    def server(self) -> str:
        return self.config.server

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._session.close()

    def __enter__(self) -> GmsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP

    def _request(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None
    ) -> tuple[int, Any]:
        """One call with retries on transient failures; ``(status, parsed JSON)``.

        404 is returned to the caller (it may mean "no such entity"); every other non-2xx
        answer raises.
        """
        url = f"{self.config.server}{path}"
        data = json.dumps(body).encode("utf-8") if body is not None else None
        timeouts = (self.config.connect_timeout_sec, self.config.timeout_sec)
        attempt = 0
        while True:
            self.requests_sent += 1
            error: TransportError
            try:
                response = self._session.request(method, url, data=data, timeout=timeouts)
            except requests.RequestException as exc:
                text = redact(
                    f"cannot reach {self.config.server}: {describe_exception(exc)}",
                    self.config.secrets,
                )
                error = TransientError(text, method=method, url=url)
                if not isinstance(exc, requests.Timeout):
                    raise error from None  # refused, DNS, TLS: waiting would not help a person
            else:
                with response:
                    status = response.status_code
                    if answered_ok(response):
                        try:
                            return status, response.json()
                        except ValueError:
                            raise NotGmsError(
                                "the server answered with something that is not JSON; "
                                "is this DataHub GMS?",
                                method=method,
                                url=url,
                                status=status,
                            ) from None
                    message = redact(server_message(response), self.config.secrets)
                    if status == 404 and _unknown_entity(response, message):
                        return status, None
                    error = self._errors.error(method, url, status, message)
            if attempt >= self.config.retry_max_times or not self._errors.retryable(error):
                raise error
            delay = self.config.backoff.delay(attempt)
            log.debug("retrying %s %s in %.2fs after: %s", method, path, delay, error)
            self._sleep(delay)
            attempt += 1

    # ------------------------------------------------------------------ reads

    def related(self, urn: str, rel_type: str, *, direction: str = "INCOMING") -> list[str]:
        """Urns related to ``urn`` by ``rel_type`` (all pages, first-seen order)."""
        out: dict[str, None] = {}
        start = 0
        while True:
            query = urlencode(
                {
                    "direction": direction,
                    "urn": urn,
                    "types": rel_type,
                    "start": start,
                    "count": self.page_size,
                }
            )
            status, body = self._request("GET", f"/relationships?{query}")
            if status == 404 or not isinstance(body, Mapping):
                return list(out)
            page = [
                r["entity"]
                for r in body.get("relationships") or []
                if isinstance(r, Mapping) and isinstance(r.get("entity"), str)
            ]
            out.update(dict.fromkeys(page))
            total = body.get("total")
            start += len(page)
            if not page or (isinstance(total, int) and start >= total):
                return list(out)

    def aspects(self, urn: str, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """The versioned aspects of ``urn`` as ``{name: value}``; {} when it does not exist."""
        path = f"/entitiesV2/{quote(urn, safe='')}"
        if names:
            path += "?aspects=List(" + ",".join(names) + ")"
        status, body = self._request("GET", path)
        if status == 404 or not isinstance(body, Mapping):
            return {}
        out: dict[str, dict[str, Any]] = {}
        for name, entry in (body.get("aspects") or {}).items():
            if isinstance(entry, Mapping) and isinstance(entry.get("value"), Mapping):
                out[str(name)] = dict(entry["value"])
        return out

    def run_events(self, urn: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest run events of an instance, as wire-form MCP dicts."""
        body = {
            "urn": urn,
            "entity": _entity_type(urn),
            "aspect": RUN_EVENT,
            "limit": limit or self.events_per_instance,
        }
        status, answer = self._request(
            "POST", "/aspects?action=getTimeseriesAspectValues", body=body
        )
        if status == 404 or not isinstance(answer, Mapping):
            return []
        out = []
        for value in (answer.get("value") or {}).get("values") or []:
            aspect = value.get("aspect") if isinstance(value, Mapping) else None
            if isinstance(aspect, Mapping) and isinstance(aspect.get("value"), str):
                out.append(
                    {
                        "entityType": "dataProcessInstance",
                        "entityUrn": urn,
                        "changeType": "UPSERT",
                        "aspectName": RUN_EVENT,
                        "aspect": {"value": aspect["value"], "contentType": "application/json"},
                    }
                )
        return out

    def list_urns(self, entity_type: str) -> list[str]:
        """Every urn of ``entity_type`` (e.g. ``dataFlow``), all pages."""
        out: list[str] = []
        start = 0
        while True:
            body = {"entity": entity_type, "start": start, "count": self.page_size}
            status, answer = self._request("POST", "/entities?action=listUrns", body=body)
            value = answer.get("value") if isinstance(answer, Mapping) else None
            if status == 404 or not isinstance(value, Mapping):
                return out
            page = [u for u in value.get("entities") or [] if isinstance(u, str)]
            out.extend(page)
            start += len(page)
            total = value.get("total")
            if not page or (isinstance(total, int) and start >= total):
                return out

    def instance_mcps(self, urn: str, *, events: bool = True) -> list[dict[str, Any]]:
        """An instance's aspects (file form) and, with ``events``, its run events (wire form)."""
        out: list[dict[str, Any]] = [
            {
                "entityType": "dataProcessInstance",
                "entityUrn": urn,
                "changeType": "UPSERT",
                "aspectName": name,
                "aspect": {"json": value},
            }
            for name, value in self.aspects(urn).items()
            if name in INSTANCE_ASPECTS
        ]
        if events:
            out.extend(self.run_events(urn))
        return out

    def entity_exists(self, urn: str) -> bool:
        """True if the GMS holds any aspect of ``urn`` beyond its key."""
        return any(not name.endswith("Key") for name in self.aspects(urn))

    def flow_instances(self, flow_urn: str) -> list[str]:
        """The DAG-run instances of a DataFlow."""
        return [u for u in self.related(flow_urn, "InstanceOf") if u.startswith(DPI_PREFIX)]

    def job_instances(self, job_urn: str) -> list[str]:
        """The task-run instances of a DataJob."""
        return [u for u in self.related(job_urn, "InstanceOf") if u.startswith(DPI_PREFIX)]

    def child_instances(self, dag_run_urn: str) -> list[str]:
        """The task-run instances whose parentInstance is ``dag_run_urn``."""
        return [u for u in self.related(dag_run_urn, "ChildOf") if u.startswith(DPI_PREFIX)]

    def flow_jobs(self, flow_urn: str) -> list[str]:
        """The DataJobs of a DataFlow (known only if their templates were ingested)."""
        return [u for u in self.related(flow_urn, "IsPartOf") if u.startswith("urn:li:dataJob:")]

    def flow_instance_urns(self, flow_urn: str) -> tuple[list[str], list[str]]:
        """(DAG-run urns, task-run urns) of one DataFlow.

        Task runs are the children of its DAG runs plus the instances of its DataJobs, so
        task runs recorded without a DAG-run instance (e.g. by the official plugin) count too.
        """
        dag_runs = self.flow_instances(flow_urn)
        tasks: dict[str, None] = {}
        for run in dag_runs:
            tasks.update(dict.fromkeys(self.child_instances(run)))
        for job in self.flow_jobs(flow_urn):
            tasks.update(dict.fromkeys(self.job_instances(job)))
        return dag_runs, [t for t in tasks if t not in set(dag_runs)]

    # ------------------------------------------------------------------ deletes

    @staticmethod
    def _check_deletable(urns: Iterable[str]) -> list[str]:
        checked = list(urns)
        for urn in checked:
            if not isinstance(urn, str) or not urn.startswith(DPI_PREFIX):
                raise ValueError(f"refusing to delete {urn!r}: only process instances are deleted")
        return checked

    def soft_delete(self, urns: Iterable[str]) -> int:
        """UPSERT ``status {"removed": true}`` on each instance; returns how many were accepted."""
        from datahub_airflow_listener.domain.aspects import Status
        from datahub_airflow_listener.domain.mcp import MetadataChangeProposal

        checked = self._check_deletable(urns)
        if not checked:
            return 0
        if self._transport is None:
            self._transport = RestTransport(self.config, session=self._session)
        wire = [
            MetadataChangeProposal(entity_urn=u, aspect=Status(removed=True)).to_wire()
            for u in checked
        ]
        report = self._transport.emit(wire)
        if report.error is not None:
            raise report.error
        if report.failed:
            raise report.failed[0].error
        return report.delivered

    def hard_delete(self, urn: str) -> int:
        """Delete the instance and its run events for good; returns the rows the GMS removed."""
        (checked,) = self._check_deletable([urn])
        status, answer = self._request("POST", "/entities?action=delete", body={"urn": checked})
        if status == 404:
            return 0
        value = answer.get("value") if isinstance(answer, Mapping) else None
        if isinstance(value, Mapping):
            return int(value.get("rows") or 0) + int(value.get("timeseriesRows") or 0)
        return 0
