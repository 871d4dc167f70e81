"""``datahub_airflow_plugin.hooks``: see :mod:`.datahub`."""
