"""``datahub_airflow_plugin.operators.datahub``: the emitter operator, under the official
name (:mod:`datahub_airflow_listener.adapter.operators`)."""

from __future__ import annotations

from datahub_airflow_listener.adapter.operators import (
    DatahubBaseOperator,
    DatahubEmitterOperator,
)

__all__ = ["DatahubBaseOperator", "DatahubEmitterOperator"]
