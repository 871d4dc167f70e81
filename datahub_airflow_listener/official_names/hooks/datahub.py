"""``datahub_airflow_plugin.hooks.datahub``: the connection hooks, under the official names.

They emit through this package's outbox and transports (:mod:`datahub_airflow_listener.
adapter.emitter`); ``DatahubKafkaHook`` imports but raises one clear error when used.
"""

from __future__ import annotations

from datahub_airflow_listener.adapter.hooks import (
    DatahubCompositeHook,
    DatahubFileHook,
    DatahubGenericHook,
    DatahubKafkaHook,
    DatahubRestHook,
    SynchronizedFileHook,
)

__all__ = [
    "DatahubCompositeHook",
    "DatahubFileHook",
    "DatahubGenericHook",
    "DatahubKafkaHook",
    "DatahubRestHook",
    "SynchronizedFileHook",
]
