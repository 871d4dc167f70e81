"""Fixtures of the integration ring: a migrated Airflow home per session, the plugin's sinks.

``UPDATE_GOLDEN=1`` rewrites the golden files instead of comparing with them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.airflow_env import EXAMPLE_DAGS, AirflowEnv, airflow_version
from tests.support.fake_gms import FakeGms


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def airflow_major() -> int:
    return airflow_version()[0]


@pytest.fixture(scope="session")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    """One ``airflow db migrate`` per session; tests clone its database."""
    env = AirflowEnv(tmp_path_factory.mktemp("airflow-base"), EXAMPLE_DAGS)
    env.migrate()
    return env


@pytest.fixture(scope="session")
def update_golden() -> bool:
    return os.environ.get("UPDATE_GOLDEN", "") not in ("", "0", "false", "False")


@pytest.fixture(scope="module")
def fake_gms() -> Iterator[FakeGms]:
    """A loopback GMS (a real HTTP server that validates every request) for the module."""
    with FakeGms() as server:
        yield server


@pytest.fixture(scope="module")
def gms_factory() -> Iterator[Callable[[], FakeGms]]:
    """Fresh loopback GMS servers (one per DAG run keeps their captures apart)."""
    servers: list[FakeGms] = []

    def make() -> FakeGms:
        servers.append(FakeGms().start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()
