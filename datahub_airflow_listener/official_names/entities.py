"""``datahub_airflow_plugin.entities``: lineage annotations for ``inlets=`` / ``outlets=``.

This package's :class:`~datahub_airflow_listener.entities.Dataset` and
:class:`~datahub_airflow_listener.entities.Urn`, under the official plugin's names; the
listener reads them (and the official plugin's own, and their serialized forms) the same way.
"""

from __future__ import annotations

from datahub_airflow_listener.entities import Dataset, Urn, _Entity

__all__ = ["Dataset", "Urn", "_Entity"]
