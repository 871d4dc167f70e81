"""The session and the status-to-error table shared by the REST transport and the GMS reader."""

from __future__ import annotations

import pytest

from datahub_airflow_listener.transport.errors import (
    AuthError,
    DeadlineError,
    NotGmsError,
    PermanentError,
    TransientError,
    TransportError,
)
from datahub_airflow_listener.transport.http import ErrorTable, build_session
from datahub_airflow_listener.transport.rest import RestConfig
from tests.unit.transport.transport_helpers import TOKEN


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, NotGmsError),  # only asked about when the 2xx was a web page
        (401, AuthError),
        (403, AuthError),
        (408, TransientError),
        (429, TransientError),
        (503, TransientError),
        (404, NotGmsError),
        (405, NotGmsError),
        (400, PermanentError),
        (422, PermanentError),
        (501, TransientError),
    ],
)
def test_each_status_gets_its_class(status: int, expected: type[TransportError]) -> None:
    error = ErrorTable().error("POST", "http://gms/aspects", status, "server text")
    assert type(error) is expected
    assert (error.method, error.url, error.status) == ("POST", "http://gms/aspects", status)
    assert error.server_message == "server text"


def test_the_wording_is_the_clients_and_the_statuses_it_names_are_its_own() -> None:
    table = ErrorTable(
        retry_status=frozenset({500}),
        no_endpoint_status=frozenset({404}),
        auth="the reader was refused",
        unavailable="the reader found it down",
        no_endpoint="no such endpoint",
    )
    assert table.error("GET", "u", 401, "").message == "the reader was refused"
    assert table.error("GET", "u", 500, "").message == "the reader found it down"
    assert table.error("GET", "u", 404, "").message == "no such endpoint"
    assert isinstance(table.error("GET", "u", 405, ""), PermanentError)
    assert not table.retryable(table.error("GET", "u", 503, ""))  # 5xx it does not retry
    assert table.retryable(table.error("GET", "u", 408, ""))  # a timeout answer always is


def test_retryable_only_for_transient_errors_without_a_passed_deadline() -> None:
    table = ErrorTable()
    assert table.retryable(TransientError("refused"))  # no answer at all
    assert table.retryable(table.error("POST", "u", 429, ""))
    assert not table.retryable(DeadlineError("too late"))
    assert not table.retryable(table.error("POST", "u", 401, ""))
    assert not table.retryable(table.error("POST", "u", 422, ""))


def test_the_session_carries_the_token_in_one_header_only() -> None:
    config = RestConfig(server="https://gms", token=TOKEN, extra_headers={"X-Team": "data"})
    session = build_session(config)
    assert session.headers["Authorization"] == f"Bearer {TOKEN}"
    assert session.headers["X-RestLi-Protocol-Version"] == "2.0.0"
    assert session.headers["X-Team"] == "data"
    assert session.verify is not False
    assert TOKEN not in repr(config)
    off = build_session(RestConfig(server="https://gms", disable_ssl_verification=True))
    assert off.verify is False
    assert "Authorization" not in off.headers
