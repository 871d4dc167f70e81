"""The Airflow plugin: registers the listener (entry point ``airflow.plugins``).

Airflow imports this module in every process that loads plugins (scheduler, API server, DAG
processor, every task process), so it must stay cheap: it imports the listener, which imports
no transport, requests or sqlite3 until its first hook runs. One listener object serves both
of Airflow 3's listener managers (core and task SDK) in a process.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from datahub_airflow_listener.adapter.listener import get_listener

__all__ = ["DatahubListenerPlugin"]


class DatahubListenerPlugin(AirflowPlugin):  # type: ignore[misc]  # Any without Airflow
    """Records every DAG run and task try as DataHub process instances."""

    name = "datahub_airflow_listener"
    listeners = [get_listener()]  # noqa: RUF012 -- Airflow reads this class attribute
