"""Fixtures of the transport tests: a fake GMS on loopback (plain and with a token) and a
fresh outbox path. Helpers live in ``tests.unit.transport.transport_helpers``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_gms import FakeGms
from tests.unit.transport.transport_helpers import TOKEN


@pytest.fixture
def gms() -> Iterator[FakeGms]:
    with FakeGms() as server:
        yield server


@pytest.fixture
def gms_auth() -> Iterator[FakeGms]:
    with FakeGms(token=TOKEN) as server:
        yield server


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "datahub" / "outbox.sqlite"
