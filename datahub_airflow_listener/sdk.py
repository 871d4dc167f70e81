"""The seed's Python API for process instances, usable outside Airflow.

Every name the seed document imports from DataHub's SDK is importable from here, so its
examples run with only their import lines changed::

    from datahub_airflow_listener.sdk import (
        DataProcessInstance, InstanceRunResult, DataProcessTypeClass, DataFlow, DataJob,
        ContainerKey, DatasetUrn, DataJobUrn, MetadataChangeProposalWrapper, DatahubRestEmitter,
    )

:class:`DatahubRestEmitter` sends synchronously (a script expects its events to be in DataHub
when the call returns) through the same REST transport the listener's background sender uses:
batching, retries with backoff honouring ``Retry-After``, and the token kept out of every log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from datahub_airflow_listener.domain.instance import (
    ContainerKey,
    DataProcessInstance,
    DataProcessTypeClass,
    InstanceRunResult,
)
from datahub_airflow_listener.domain.mcp import (
    MetadataChangeProposal,
    MetadataChangeProposalWrapper,
)
from datahub_airflow_listener.domain.templates import DataFlow, DataJob
from datahub_airflow_listener.domain.urns import (
    DataFlowUrn,
    DataJobUrn,
    DataProcessInstanceUrn,
    DatasetUrn,
    Urn,
)

__all__ = [
    "ContainerKey",
    "DataFlow",
    "DataFlowUrn",
    "DataJob",
    "DataJobUrn",
    "DataProcessInstance",
    "DataProcessInstanceUrn",
    "DataProcessTypeClass",
    "DatahubRestEmitter",
    "DatasetUrn",
    "EmitError",
    "InstanceRunResult",
    "MetadataChangeProposal",
    "MetadataChangeProposalWrapper",
    "Urn",
]

log = logging.getLogger(__name__)


class EmitError(RuntimeError):
    """Raised by :class:`DatahubRestEmitter` when an MCP could not be delivered."""


class DatahubRestEmitter:
    """Send MCPs to a DataHub GMS now: ``DatahubRestEmitter(gms_server=..., token=...)``."""

    def __init__(
        self,
        gms_server: str,
        token: str | None = None,
        *,
        timeout_sec: float | None = None,
        retry_max_times: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        disable_ssl_verification: bool = False,
        ca_certificate_path: str | None = None,
    ) -> None:
        from datahub_airflow_listener.transport.rest import RestConfig, RestTransport

        settings: dict[str, Any] = {
            "server": gms_server,
            "token": token,
            "extra_headers": dict(extra_headers or {}),
            "disable_ssl_verification": disable_ssl_verification,
            "ca_certificate_path": ca_certificate_path,
        }
        if timeout_sec is not None:
            settings["timeout_sec"] = timeout_sec
        if retry_max_times is not None:
            settings["retry_max_times"] = retry_max_times
        self._config = RestConfig.from_dict(settings)
        self._transport = RestTransport(self._config)

    def __repr__(self) -> str:
        return f"DatahubRestEmitter(gms_server={self._config.server!r})"

    def emit(self, item: MetadataChangeProposal, callback: Any = None) -> None:
        """Send one MCP; raises :class:`EmitError` if it was not delivered."""
        self.emit_mcps([item])
        if callable(callback):
            callback(None, "success")

    def emit_mcps(self, mcps: Iterable[MetadataChangeProposal]) -> int:
        """Send MCPs in batches, in order; returns how many were delivered."""
        wire = [m.to_wire() for m in mcps]
        if not wire:
            return 0
        report = self._transport.emit(wire)
        if report.failed:
            first = report.failed[0]
            raise EmitError(
                f"{len(report.failed)} MCP(s) rejected by the server, first: "
                f"{first.aspect_name} on {first.urn}: {first.error}"
            )
        if report.pending:
            raise EmitError(f"{report.pending} MCP(s) not delivered: {report.error}")
        return report.delivered

    def test_connection(self) -> None:
        """Raise :class:`EmitError` unless the address is a GMS that accepts the token."""
        ok, message = self._transport.test_connection()
        if not ok:
            raise EmitError(message)

    def flush(self) -> None:
        """Nothing is buffered: every emit is sent before it returns."""

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> DatahubRestEmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
