"""Helpers shared by the transport tests (waiting for a condition: ``tests.support.waiting``)."""

from __future__ import annotations

import json
from typing import Any

from datahub_airflow_listener.transport import WireRecord
from datahub_airflow_listener.transport.retry import BackoffPolicy
from tests.support.fake_gms import StubMcp

TOKEN = "tok-3f9a1c77e2b94d1e-secret"

FAST_BACKOFF = BackoffPolicy(base=0.02, cap=0.1)


def rest_settings(url: str, **overrides: Any) -> dict[str, Any]:
    """REST settings with retries in milliseconds, so failure tests stay fast."""
    settings: dict[str, Any] = {
        "server": url,
        "timeout_sec": 5,
        "connect_timeout_sec": 2,
        "retry_max_times": 3,
        "retry_backoff_sec": 0.01,
        "retry_backoff_max_sec": 0.05,
        "retry_after_max_sec": 2,
    }
    settings.update(overrides)
    return settings


def mcp(run: str, seq: int, status: str = "STARTED") -> StubMcp:
    return StubMcp(entity_urn=f"urn:li:dataProcessInstance:{run}", seq=seq, status=status)


def record(run: str, seq: int, status: str = "STARTED") -> WireRecord:
    return WireRecord.from_wire(mcp(run, seq, status).to_wire(last_observed=seq))


def seqs(wire_mcps: list[dict[str, Any]]) -> list[int]:
    """The ``timestampMillis`` of each MCP, which the stand-ins use as a sequence number."""
    return [json.loads(m["aspect"]["value"])["timestampMillis"] for m in wire_mcps]
