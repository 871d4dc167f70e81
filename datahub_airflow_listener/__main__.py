"""``python -m datahub_airflow_listener``: the same as the ``datahub-airflow-listener`` script."""

from __future__ import annotations

from datahub_airflow_listener.cli import main

raise SystemExit(main())
