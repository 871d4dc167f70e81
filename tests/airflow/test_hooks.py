"""Connection types: provider registration, connection -> transport config, secrets stay secret."""

from __future__ import annotations

import json
import logging
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.adapter import compat, hooks, runtime
from datahub_airflow_listener.adapter.config import parse_config
from datahub_airflow_listener.adapter.hooks import (
    DatahubFileHook,
    DatahubRestHook,
    file_config_from_fields,
    redacted,
    rest_config_from_fields,
    transport_config_for,
)
from datahub_airflow_listener.adapter.provider import get_provider_info

TOKEN = "eyJ-very-secret-token/with+chars"


def _fields(**kw: Any) -> compat.ConnectionFields:
    kw.setdefault("conn_id", "datahub_rest_default")
    kw.setdefault("conn_type", "datahub-rest")
    return compat.ConnectionFields(**kw)


@pytest.fixture(autouse=True)
def _no_conn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("AIRFLOW_CONN_"):
            monkeypatch.delenv(name)


# -- provider -------------------------------------------------------------------------------------


def test_provider_info_names_this_distribution_and_both_connection_types() -> None:
    info = get_provider_info()
    dist = metadata.distribution("datahub-airflow-listener")
    assert info["package-name"] == dist.metadata["Name"] == "datahub-airflow-listener"
    types = {c["connection-type"]: c["hook-class-name"] for c in info["connection-types"]}
    assert types == {
        "datahub-rest": "datahub_airflow_listener.adapter.hooks.DatahubRestHook",
        "datahub-file": "datahub_airflow_listener.adapter.hooks.DatahubFileHook",
    }
    entry_points = {ep.group: ep.value for ep in dist.entry_points}
    assert entry_points["apache_airflow_provider"].endswith("provider:get_provider_info")
    assert entry_points["airflow.plugins"].endswith("plugin:DatahubListenerPlugin")


def test_airflow_registers_the_connection_types_with_their_labels() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "datahub-airflow-listener" in manager.providers
    hook_info = manager.hooks["datahub-rest"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "datahub_airflow_listener.adapter.hooks.DatahubRestHook"
    assert hook_info.connection_id_attribute_name == "datahub_rest_conn_id"
    assert manager.hooks["datahub-file"].hook_class_name.endswith("DatahubFileHook")
    if not manager.field_behaviours:
        pytest.skip("this Airflow loads form labels only with flask_appbuilder installed")
    behaviour = manager.field_behaviours["datahub-rest"]
    assert behaviour["relabeling"]["password"] == "DataHub access token (optional)"
    assert behaviour["relabeling"]["host"] == "DataHub GMS URL"


def test_connection_get_hook_builds_our_hook() -> None:
    from airflow.models.connection import Connection

    hook = Connection(conn_id="dh", conn_type="datahub-rest", host="gms").get_hook()
    assert isinstance(hook, DatahubRestHook)
    assert hook.datahub_rest_conn_id == "dh"


def test_ui_field_behaviour_is_the_same_in_both_places() -> None:
    info = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    for cls in (DatahubRestHook, DatahubFileHook):
        declared = info[cls.conn_type]["ui-field-behaviour"]
        behaviour = cls.get_ui_field_behaviour()
        assert declared["hidden-fields"] == behaviour["hidden_fields"]
        assert declared["relabeling"] == behaviour["relabeling"]
        assert declared["placeholders"] == behaviour["placeholders"]


# -- fields -> transport config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "server"),
    [
        ("datahub-gms", None, "http://datahub-gms"),
        ("datahub-gms", 8080, "http://datahub-gms:8080"),
        ("datahub-gms:8080", 9999, "http://datahub-gms:8080"),
        ("http://datahub-gms:8080/", None, "http://datahub-gms:8080"),
        ("https://acme.acryl.io/gms", None, "https://acme.acryl.io/gms"),
        ("https://acme.acryl.io/gms/", 443, "https://acme.acryl.io:443/gms"),
        ("  10.0.0.5 ", 8080, "http://10.0.0.5:8080"),
    ],
)
def test_rest_host_with_or_without_scheme_and_port(host: str, port: Any, server: str) -> None:
    assert rest_config_from_fields(_fields(host=host, port=port))["server"] == server


@pytest.mark.parametrize("host", ["", "   ", "ftp://gms", "http://"])
def test_rest_without_a_usable_host_is_an_error(host: str) -> None:
    with pytest.raises(hooks.ConnectionConfigError):
        rest_config_from_fields(_fields(host=host))


def test_rest_token_and_every_extra() -> None:
    config = rest_config_from_fields(
        _fields(
            host="gms:8080",
            password=TOKEN,
            extra={
                "timeout_sec": "7.5",
                "retry_max_times": 2,
                "extra_headers": '{"X-Team": "data"}',
                "disable_ssl_verification": "true",
                "ca_certificate_path": "/etc/ca.pem",
            },
        )
    )
    assert config == {
        "server": "http://gms:8080",
        "token": TOKEN,
        "timeout_sec": 7.5,
        "retry_max_times": 2,
        "extra_headers": {"X-Team": "data"},
        "disable_ssl_verification": True,
        "ca_certificate_path": "/etc/ca.pem",
    }


def test_rest_bad_extras_are_dropped_with_one_warning_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")
    config = rest_config_from_fields(
        _fields(
            host="gms",
            extra={"timeout_sec": 0, "retry_max_times": -1, "extra_headers": [1], "verify": 1},
        )
    )
    assert set(config) == {"server"}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4
    for key in ("timeout_sec", "retry_max_times", "extra_headers", "verify"):
        assert sum(f"'{key}'" in m for m in messages) == 1


def test_file_path_from_host_or_uri_path() -> None:
    assert file_config_from_fields(_fields(conn_type="datahub-file", host="/tmp/a.json")) == {
        "filename": "/tmp/a.json"
    }
    via_uri_path = _fields(conn_type="datahub-file", schema="tmp/b.json")
    assert file_config_from_fields(via_uri_path) == {"filename": "/tmp/b.json"}
    with pytest.raises(hooks.ConnectionConfigError):
        file_config_from_fields(_fields(conn_type="datahub-file"))


def test_other_connection_types_are_refused() -> None:
    with pytest.raises(hooks.ConnectionConfigError, match="postgres"):
        transport_config_for(_fields(conn_type="postgres", host="db"))


# -- resolution from AIRFLOW_CONN_* (secrets chain) -----------------------------------------------


def test_uri_connection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import quote

    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAHUB_REST_DEFAULT",
        f"datahub-rest://:{quote(TOKEN, safe='')}@gms.example.com:8080?timeout_sec=5",
    )
    fields = compat.get_connection("datahub_rest_default")
    assert TOKEN not in repr(fields)
    assert transport_config_for(fields) == (
        "datahub-rest",
        {"server": "http://gms.example.com:8080", "token": TOKEN, "timeout_sec": 5.0},
    )


def test_json_connection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DH_HTTPS",
        json.dumps(
            {
                "conn_type": "datahub-rest",
                "host": "https://acme.acryl.io/gms",
                "password": TOKEN,
                "extra": {"disable_ssl_verification": False},
            }
        ),
    )
    hook = DatahubRestHook(datahub_rest_conn_id="dh_https")
    config = hook.transport_config()
    assert config["server"] == "https://acme.acryl.io/gms"
    assert config["disable_ssl_verification"] is False
    assert config["token"] == TOKEN


def test_missing_connection_is_connection_not_found() -> None:
    with pytest.raises(compat.ConnectionNotFound):
        compat.get_connection("no_such_connection_anywhere")


def test_connection_from_the_task_sdk_in_a_task_process(
    in_task_process: None, tmp_path: Path
) -> None:
    """Airflow 3 task process: the SDK's secrets chain (env first, then the supervisor)."""
    assert compat.in_task_sdk_process()
    config = transport_config_for(compat.get_connection("datahub_rest_default"))
    assert config == ("datahub-file", {"filename": str(tmp_path / "out.json")})


def test_sinks_several_connections_and_the_local_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="datahub_airflow_listener")
    monkeypatch.setenv(
        "AIRFLOW_CONN_DH_REST",
        json.dumps({"conn_type": "datahub-rest", "host": "gms", "password": TOKEN}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_DH_FILE", json.dumps({"conn_type": "datahub-file", "host": "/tmp/x.json"})
    )
    both = parse_config({"conn_id": "dh_rest,dh_file", "outbox_path": str(tmp_path)})
    assert [runtime.resolve_sink(both, c)[0] for c in both.conn_ids] == [
        "datahub-rest",
        "datahub-file",
    ]
    default = parse_config({"outbox_path": str(tmp_path)})  # no datahub_rest_default anywhere
    assert runtime.resolve_sink(default, "datahub_rest_default") == (
        "local",
        {"directory": str(tmp_path)},
    )
    ours = [r for r in caplog.records if r.name.startswith("datahub_airflow_listener")]
    assert not [r for r in ours if r.levelno >= logging.WARNING]
    explicit = parse_config({"conn_id": "typo_conn", "outbox_path": str(tmp_path)})
    assert runtime.resolve_sink(explicit, "typo_conn")[0] == "local"
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("datahub_airflow_listener")
    ]
    assert len(warnings) == 1 and "typo_conn" in warnings[0]
    assert TOKEN not in caplog.text


def test_redacted_hides_token_and_header_values() -> None:
    config = rest_config_from_fields(
        _fields(host="gms", password=TOKEN, extra={"extra_headers": {"X-Auth": TOKEN}})
    )
    assert TOKEN not in repr(redacted(config))
    assert redacted(config)["server"] == "http://gms"


# -- Test buttons ---------------------------------------------------------------------------------


def test_file_hook_test_button(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAHUB_FILE_DEFAULT",
        json.dumps({"conn_type": "datahub-file", "host": str(tmp_path / "out.json")}),
    )
    ok, message = DatahubFileHook().test_connection()
    assert ok and str(tmp_path) in message
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAHUB_FILE_DEFAULT",
        json.dumps({"conn_type": "datahub-file", "host": str(tmp_path / "nope" / "out.json")}),
    )
    ok, message = DatahubFileHook().test_connection()
    assert not ok and "does not exist" in message


def test_rest_hook_test_button_never_raises_nor_shows_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAHUB_REST_DEFAULT",
        json.dumps(
            {
                "conn_type": "datahub-rest",
                "host": "http://127.0.0.1:9",
                "password": TOKEN,
                "extra": {"timeout_sec": 1, "retry_max_times": 0},
            }
        ),
    )
    ok, message = DatahubRestHook().test_connection()
    assert ok is False
    assert TOKEN not in message
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAHUB_REST_DEFAULT", json.dumps({"conn_type": "datahub-rest"})
    )
    ok, message = DatahubRestHook().test_connection()
    assert ok is False and "no host" in message
