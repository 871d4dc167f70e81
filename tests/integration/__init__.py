"""Integration ring: real Airflow running the example and scenario DAGs with the plugin."""
