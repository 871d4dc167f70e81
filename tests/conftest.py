"""Test-suite wide settings: the markers tox environments select on."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs a real Airflow (subprocesses; tens of seconds)"
    )
    config.addinivalue_line(
        "markers", "scheduler: a real LocalExecutor deployment (scheduler, API server; minutes)"
    )
