"""Times as the command line reads them (``--since``) and shows them."""

from __future__ import annotations

import pytest

from datahub_airflow_listener.cli.times import format_duration, format_ms, parse_time
from tests.unit.history.history_data import T0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14", 1_699_920_000_000),
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-14T23:13:20+01:00", T0),
        ("2023-11-14 22:13:20", T0),
        ("2h", T0 - 7_200_000),
        ("7d", T0 - 7 * 86_400_000),
        ("1.5h", T0 - 5_400_000),
    ],
)
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text, now_ms=T0) == expected


@pytest.mark.parametrize("text", ["yesterday", "7 days", "-3d", ""])
def test_parse_time_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time(text, now_ms=T0)


def test_formatting() -> None:
    assert format_ms(T0) == "2023-11-14 22:13:20Z"
    assert [format_duration(v) for v in (None, 850, 12_300, 245_000, 7_380_000)] == [
        "-",
        "850ms",
        "12.3s",
        "4m05s",
        "2h03m",
    ]
