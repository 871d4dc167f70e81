"""``datahub_airflow_plugin.operators``: see :mod:`.datahub`."""
