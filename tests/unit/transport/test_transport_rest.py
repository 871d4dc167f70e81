"""The REST transport against a real HTTP server on loopback (tests/support/fake_gms.py)."""

from __future__ import annotations

import logging
import time

import pytest

from datahub_airflow_listener.transport import (
    AuthError,
    DeadlineError,
    NotGmsError,
    RestConfig,
    RestTransport,
    TransientError,
)
from tests.support.fake_gms import FakeGms
from tests.unit.transport.transport_helpers import TOKEN, record, rest_settings, seqs


def rest(url: str, **overrides: object) -> RestTransport:
    return RestTransport(RestConfig.from_dict(rest_settings(url, **overrides)))


def records(count: int, run: str = "r") -> list:
    return [record(f"{run}{i % 7}", i) for i in range(count)]


# ---------------------------------------------------------------------- config


def test_config_from_strings_normalises_server_and_coerces_values() -> None:
    config = RestConfig.from_dict(
        {
            "server": "gms.example.com:8080/",
            "token": TOKEN,
            "timeout_sec": "12.5",
            "retry_max_times": "2",
            "retry_status_codes": "429, 503",
            "disable_ssl_verification": "false",
            "extra_headers": {"X-Tenant": "blue-team-header"},
        }
    )
    assert config.server == "http://gms.example.com:8080"
    assert config.timeout_sec == 12.5
    assert config.retry_max_times == 2
    assert config.retry_status_codes == frozenset({429, 503})
    assert config.disable_ssl_verification is False
    assert RestConfig.from_dict({"server": "https://gms/api/gms"}).server == "https://gms/api/gms"


def test_config_rejects_limits_above_the_servers() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        RestConfig(server="gms", max_batch_size=201)
    with pytest.raises(ValueError, match="max_batch_bytes"):
        RestConfig(server="gms", max_batch_bytes=16_000_000)
    with pytest.raises(ValueError, match="must be true or false"):
        RestConfig.from_dict({"server": "gms", "disable_ssl_verification": "maybe"})


def test_token_and_extra_headers_never_in_repr() -> None:
    config = RestConfig.from_dict(
        {"server": "gms", "token": TOKEN, "extra_headers": {"X-Key": "hdr-secret-value"}}
    )
    transport = RestTransport(config)
    for text in (repr(config), str(config), repr(transport), str(transport)):
        assert TOKEN not in text
        assert "hdr-secret-value" not in text
    assert transport._session.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("env_bundle", [None, "/etc/env-ca.pem"])
def test_tls_verification_on_by_default_and_ca_bundle_honoured(
    monkeypatch: pytest.MonkeyPatch, env_bundle: str | None
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    if env_bundle:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", env_bundle)
    default = RestTransport(RestConfig(server="https://gms"))._session
    assert default.verify == (env_bundle or True)  # on; requests' CA variable honoured
    assert default.trust_env is False  # read once, not on every request
    ca = RestTransport(RestConfig(server="https://gms", ca_certificate_path="/etc/ca.pem"))
    assert ca._session.verify == "/etc/ca.pem"  # explicit settings win over the variable
    off = RestTransport(RestConfig(server="https://gms", disable_ssl_verification=True))
    assert off._session.verify is False


def test_proxies_from_the_environment_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    proxied = RestTransport(RestConfig(server="https://gms.example"))._session
    assert proxied.proxies.get("https") == "http://proxy.example:3128"
    direct = RestTransport(RestConfig(server="https://gms.internal.example"))._session
    assert "https" not in direct.proxies


# ---------------------------------------------------------------------- delivery


def test_batches_of_at_most_200_in_order_with_restli_headers(gms_auth: FakeGms) -> None:
    transport = rest(gms_auth.url, token=TOKEN)
    report = transport.emit_records(records(450))
    assert report.ok and report.delivered == 450
    assert seqs(gms_auth.accepted()) == list(range(450))
    requests_seen = gms_auth.ingest_requests()
    assert [r.proposals for r in requests_seen] == [200, 200, 50]
    assert all(r.path == "/aspects?action=ingestProposalBatch" for r in requests_seen)
    headers = requests_seen[0].headers
    assert headers["X-RestLi-Protocol-Version"] == "2.0.0"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("datahub-airflow-listener/")
    assert gms_auth.violations == []


def test_size_limit_splits_requests(gms: FakeGms) -> None:
    recs = records(30)
    limit = 2048
    transport = rest(gms.url, max_batch_bytes=limit)
    assert transport.emit_records(recs).ok
    sizes = [r.body_chars for r in gms.ingest_requests()]
    assert len(sizes) > 1
    assert all(size <= limit for size in sizes)
    assert seqs(gms.accepted()) == list(range(30))


def test_falls_back_to_single_requests_and_remembers(gms: FakeGms, caplog) -> None:
    gms.batch_supported = False
    transport = rest(gms.url)
    with caplog.at_level(logging.INFO, logger="datahub_airflow_listener"):
        assert transport.emit_records(records(3)).ok
        assert transport.emit_records(records(2, run="s")).ok
    assert transport.batch_supported is False
    paths = [r.path for r in gms.ingest_requests()]
    assert paths == ["/aspects?action=ingestProposalBatch"] + ["/aspects?action=ingestProposal"] * 5
    assert seqs(gms.accepted()) == [0, 1, 2, 0, 1]
    assert sum("lacks ingestProposalBatch" in r.message for r in caplog.records) == 1
    assert gms.violations == []


def test_retries_503_and_429_honouring_retry_after(gms: FakeGms) -> None:
    gms.fail_next(1, 503)
    gms.fail_next(1, 429, retry_after="0.3")
    transport = rest(gms.url)
    started = time.monotonic()
    report = transport.emit_records(records(5))
    elapsed = time.monotonic() - started
    assert report.ok
    assert [r.status for r in gms.ingest_requests()] == [503, 429, 200]
    assert elapsed >= 0.3  # the Retry-After, not the 10 ms backoff
    assert seqs(gms.accepted()) == list(range(5))


def test_gives_up_after_retry_max_times_and_reports_everything_pending(gms: FakeGms) -> None:
    gms.fail_next(10, 500)
    transport = rest(gms.url, retry_max_times=2)
    report = transport.emit_records(records(250))
    assert (report.settled, report.pending) == (0, 250)
    assert isinstance(report.error, TransientError)
    assert report.error.status == 500
    assert len(gms.ingest_requests()) == 3  # first try + 2 retries
    assert gms.accepted() == []


def test_partial_progress_is_a_prefix(gms: FakeGms) -> None:
    transport = rest(gms.url, retry_max_times=0)
    transport.emit_records(records(1))  # learn that batches work
    gms.reset()
    original = gms.handle_post
    calls = {"n": 0}

    def second_request_fails(handler, body):
        calls["n"] += 1
        if calls["n"] == 2:
            return 503, {"message": "busy"}, {}
        return original(handler, body)

    gms.handle_post = second_request_fails  # type: ignore[method-assign]
    report = transport.emit_records(records(450))
    assert (report.settled, report.pending) == (200, 250)
    assert seqs(gms.accepted()) == list(range(200))


def test_422_isolates_the_bad_mcp_and_delivers_the_rest(gms: FakeGms, caplog) -> None:
    recs = records(300)
    bad = "urn:li:dataProcessInstance:BAD"
    recs[137] = record("BAD", 137)
    gms.reject_urns = {bad}
    transport = rest(gms.url)
    with caplog.at_level(logging.WARNING, logger="datahub_airflow_listener"):
        report = transport.emit_records(recs)
    assert report.settled == 300 and report.error is None
    assert [(f.index, f.urn) for f in report.failed] == [(137, bad)]
    assert report.failed[0].error.status == 422
    assert seqs(gms.accepted()) == [i for i in range(300) if i != 137]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert bad in lines[0] and "dataProcessInstanceRunEvent" in lines[0]
    assert "Failed to validate record" in lines[0]
    assert len(gms.ingest_requests()) < 40  # bisection, not one request per MCP


def test_auth_errors_condemn_nothing(gms_auth: FakeGms) -> None:
    transport = rest(gms_auth.url, token="wrong-token-value")
    report = transport.emit_records(records(3))
    assert isinstance(report.error, AuthError)
    assert report.error.status == 401
    assert report.failed == () and report.pending == 3
    assert len(gms_auth.ingest_requests()) == 1  # not retried inside the transport
    assert "wrong-token-value" not in str(report.error)


def test_not_a_gms_condemns_nothing(gms: FakeGms) -> None:
    transport = rest(f"{gms.url}/wrong/path")
    report = transport.emit_records(records(2))
    assert isinstance(report.error, NotGmsError)
    assert report.pending == 2


def test_connection_refused_is_transient(gms: FakeGms) -> None:
    gms.stop()
    report = rest(gms.url, retry_max_times=1).emit_records(records(2))
    assert isinstance(report.error, TransientError)
    assert "Connection refused" in str(report.error)
    assert report.pending == 2


def test_a_deadline_never_cuts_a_request_short(gms: FakeGms) -> None:
    """The caller's deadline decides whether a request starts, not how long it may take: a
    request cut short may still be processed, and its events would then arrive twice."""
    gms.delay_sec = 1.0  # the request outlives the deadline
    transport = rest(gms.url)
    report = transport.emit_records(records(2), deadline=time.monotonic() + 0.5)
    assert report.error is None and report.pending == 0
    assert len(gms.accepted()) == 2
    late = transport.emit_records(records(1), deadline=time.monotonic() - 1)
    assert isinstance(late.error, DeadlineError) and late.pending == 1
    assert len(gms.accepted()) == 2  # nothing sent after the deadline


# ---------------------------------------------------------------------- test_connection


def test_connection_ok_reports_version_and_token(gms_auth: FakeGms) -> None:
    ok, message = rest(gms_auth.url, token=TOKEN).test_connection()
    assert ok, message
    assert "DataHub GMS v1.2.0.1" in message and "token accepted" in message


def test_connection_says_the_token_is_refused(gms_auth: FakeGms) -> None:
    ok, message = rest(gms_auth.url, token="bad-token-1234").test_connection()
    assert not ok
    assert "refused the token" in message
    assert "bad-token-1234" not in message
    ok, message = rest(gms_auth.url).test_connection()
    assert not ok and "requires a token" in message


def test_connection_recognises_the_frontend() -> None:
    with FakeGms(mode="frontend") as frontend:
        ok, message = rest(frontend.url).test_connection()
    assert not ok
    assert "frontend, not GMS" in message
    with FakeGms(mode="html") as html:
        ok, message = rest(html.url).test_connection()
    assert not ok and "not DataHub GMS" in message


def test_connection_when_down(gms: FakeGms) -> None:
    gms.stop()
    ok, message = rest(gms.url).test_connection()
    assert not ok
    assert message.startswith(f"Cannot reach {gms.url}") and "Connection refused" in message


def test_token_never_reaches_logs_or_errors(gms_auth: FakeGms, caplog) -> None:
    """Every failure path at DEBUG (urllib3 included): the token appears nowhere."""
    transport = rest(gms_auth.url, token=TOKEN, retry_max_times=1)
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        gms_auth.reject_urns = {"urn:li:dataProcessInstance:r1"}
        texts.append(repr(transport.emit_records(records(5))))
        gms_auth.fail_next(5, 503, retry_after="0")
        texts.append(repr(transport.emit_records(records(5))))
        gms_auth.stop()
        texts.append(repr(transport.emit_records(records(5))))
        texts.append(repr(transport.test_connection()))
    texts.extend(r.getMessage() for r in caplog.records)
    texts.extend(str(r.exc_info) for r in caplog.records if r.exc_info)
    assert len(caplog.records) > 3
    assert not [t for t in texts if TOKEN in t]


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (404, "Action 'ingestProposalBatch' is not supported", True),
        (400, "Action 'ingestProposalBatch' not supported by resource aspects", True),
        (400, "aspect browsePathsV2 is not supported for entity dataProcessInstance", False),
        (422, "Action 'ingestProposalBatch' is not supported", False),
        (404, "Not Found", False),
    ],
)
def test_recognises_a_server_without_the_batch_action(
    status: int, message: str, expected: bool
) -> None:
    from datahub_airflow_listener.transport.rest import _mentions_unsupported_batch

    assert _mentions_unsupported_batch(status, message) is expected
