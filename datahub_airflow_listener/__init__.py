"""Record every Airflow DAG run and task try as a DataHub process instance.

The package has three layers whose imports point one way: ``domain`` (pure model and wire
format), ``transport`` (delivery) and ``adapter`` (the only place that imports Airflow).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
