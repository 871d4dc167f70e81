"""Provider metadata: registers the ``datahub-rest`` and ``datahub-file`` connection types.

Airflow calls :func:`get_provider_info` through the ``apache_airflow_provider`` entry point in
every process (Airflow 3.3 does it while loading its configuration), so it must be a constant
dict: no imports, no I/O, nothing that can raise. ``package-name`` must equal the distribution
name or Airflow ignores the provider.

The connection form's labels live twice, on purpose: declaratively here under
``ui-field-behaviour`` (Airflow 3.2+ reads them without importing the hook) and in
``get_ui_field_behaviour()`` on the hook classes (Airflow 2.10/2.11, 3.0, 3.1 import the hook).
Both come from :mod:`datahub_airflow_listener.adapter.ui_fields`, a module without imports.
"""

from __future__ import annotations

from typing import Any

from datahub_airflow_listener import __version__
from datahub_airflow_listener.adapter.ui_fields import FILE_UI_BEHAVIOUR, REST_UI_BEHAVIOUR

__all__ = ["PACKAGE_NAME", "get_provider_info"]

PACKAGE_NAME = "datahub-airflow-listener"


def _kebab(behaviour: dict[str, Any]) -> dict[str, Any]:
    """The provider-info spelling (kebab-case keys) of a ``get_ui_field_behaviour`` dict."""
    return {
        "hidden-fields": list(behaviour["hidden_fields"]),
        "relabeling": dict(behaviour["relabeling"]),
        "placeholders": dict(behaviour["placeholders"]),
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider info Airflow's ProvidersManager reads (schema: provider_info)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "DataHub Airflow Listener",
        "description": (
            "Records every DAG run and task try as DataHub process instances, delivered "
            "through a datahub-rest or datahub-file connection."
        ),
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "datahub-rest",
                "hook-class-name": "datahub_airflow_listener.adapter.hooks.DatahubRestHook",
                "hook-name": "DataHub REST Server (listener)",
                "ui-field-behaviour": _kebab(REST_UI_BEHAVIOUR),
            },
            {
                "connection-type": "datahub-file",
                "hook-class-name": "datahub_airflow_listener.adapter.hooks.DatahubFileHook",
                "hook-name": "DataHub File (listener)",
                "ui-field-behaviour": _kebab(FILE_UI_BEHAVIOUR),
            },
        ],
    }
