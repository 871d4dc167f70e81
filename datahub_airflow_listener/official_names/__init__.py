"""The official DataHub Airflow plugin's import names, for DAGs written against it.

Installed as the top-level package ``datahub_airflow_plugin`` (setup.cfg maps this directory
to that name), so a DAG that imports ``datahub_airflow_plugin.entities`` (``Dataset``,
``Urn``), ``datahub_airflow_plugin.operators.datahub`` (``DatahubEmitterOperator``) or
``datahub_airflow_plugin.hooks.datahub`` (``DatahubRestHook`` and the other hooks) parses and
runs with this package in place of ``acryl-datahub-airflow-plugin``. Every name is this
package's own class (:mod:`datahub_airflow_listener.entities`, :mod:`.adapter.operators`,
:mod:`.adapter.hooks`); nothing here imports acryl-datahub.

The two distributions cannot share the name: both would install files under
``datahub_airflow_plugin/``, and pip lets the last one overwrite the other's. So importing
this package under that name refuses, with one ImportError saying what to uninstall, when
``acryl-datahub-airflow-plugin`` is installed too.
"""

from __future__ import annotations

from datahub_airflow_listener.adapter.config import official_plugin_version

__all__: list[str] = []


def _refuse_beside_the_official_plugin() -> None:
    version = official_plugin_version()
    if version is not None:
        raise ImportError(
            f"datahub_airflow_plugin: acryl-datahub-airflow-plugin {version} and "
            "datahub-airflow-listener are both installed, and both provide this package. "
            "Uninstall one of them (pip uninstall acryl-datahub-airflow-plugin, then "
            "pip install --force-reinstall datahub-airflow-listener to restore its files)."
        )


if __name__ == "datahub_airflow_plugin":
    _refuse_beside_the_official_plugin()
