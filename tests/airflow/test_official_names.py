"""DAG code written against the official plugin: its import names, hooks and emitter operator.

The hooks and the operator send through this package's outbox and transports: to a real
loopback GMS (``tests/support/fake_gms.py``), to a ``datahub-file`` connection, or to the
local store when no connection is configured.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.adapter import config as config_module
from datahub_airflow_listener.adapter.emitter import ConnectionEmitter, EmitError
from datahub_airflow_listener.adapter.logs import forget_said
from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.mcp import MetadataChangeProposal
from tests.airflow.conftest import AIRFLOW_3, T0
from tests.support.fake_gms import FakeGms

TOKEN = "official-names-token"
DS = "urn:li:dataset:(urn:li:dataPlatform:snowflake,mydb.schema.tablec,PROD)"
UP = "urn:li:dataset:(urn:li:dataPlatform:snowflake,mydb.schema.tablea,PROD)"
STATUS = MetadataChangeProposal(entity_urn=DS, aspect=a.Status(removed=False))
# What acryl-datahub's MetadataChangeEventClass.to_obj() gives for make_lineage_mce.
LINEAGE_MCE = {
    "proposedSnapshot": {
        "com.linkedin.pegasus2avro.metadata.snapshot.DatasetSnapshot": {
            "urn": DS,
            "aspects": [
                {
                    "com.linkedin.pegasus2avro.dataset.UpstreamLineage": {
                        "upstreams": [
                            {
                                "auditStamp": {"time": 0, "actor": "urn:li:corpuser:unknown"},
                                "dataset": UP,
                                "type": "TRANSFORMED",
                            }
                        ]
                    }
                }
            ],
        }
    }
}


class _AcrylLike:
    """Anything with ``to_obj()``, as acryl-datahub's objects have."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self._obj = obj

    def to_obj(self) -> dict[str, Any]:
        return self._obj


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "AIRFLOW__DATAHUB__", "AIRFLOW_VAR_DATAHUB")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW__DATAHUB__OUTBOX_PATH", str(tmp_path / "datahub"))
    forget_said()
    config_module.reset_config()
    yield tmp_path / "datahub"
    config_module.reset_config()


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def _aspects(accepted: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m["entityUrn"], m["aspectName"], json.loads(m["aspect"]["value"])) for m in accepted]


# -- the import names -----------------------------------------------------------------------------


def test_the_official_import_names_are_this_packages_classes() -> None:
    from datahub_airflow_plugin.entities import Dataset, Urn, _Entity
    from datahub_airflow_plugin.hooks.datahub import (
        DatahubGenericHook,
        DatahubKafkaHook,
        DatahubRestHook,
        SynchronizedFileHook,
    )
    from datahub_airflow_plugin.operators.datahub import DatahubEmitterOperator

    from datahub_airflow_listener.adapter import hooks, operators, plugin

    assert DatahubRestHook is hooks.DatahubRestHook
    assert DatahubEmitterOperator is operators.DatahubEmitterOperator
    assert (DatahubGenericHook, DatahubKafkaHook, SynchronizedFileHook) == (
        hooks.DatahubGenericHook,
        hooks.DatahubKafkaHook,
        hooks.SynchronizedFileHook,
    )
    assert Dataset("snowflake", "mydb.schema.tableC", platform_instance="cloud").urn == (
        "urn:li:dataset:(urn:li:dataPlatform:snowflake,cloud.mydb.schema.tableC,PROD)"
    )
    assert isinstance(Urn(DS), _Entity) and Urn(DS).urn == DS
    assert plugin.DatahubListenerPlugin.name == "datahub_airflow_listener"


def test_importing_them_beside_the_official_distribution_refuses_with_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dist = tmp_path / "acryl_datahub_airflow_plugin-1.7.0.17.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acryl-datahub-airflow-plugin\nVersion: 1.7.0.17\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n.split(".")[0] == "datahub_airflow_plugin"]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError) as info:
        importlib.import_module("datahub_airflow_plugin.entities")
    message = str(info.value)
    assert "acryl-datahub-airflow-plugin 1.7.0.17" in message
    assert "pip uninstall acryl-datahub-airflow-plugin" in message
    # Under this package's own name the directory still imports (tests, tools).
    importlib.import_module("datahub_airflow_listener.official_names.entities")


# -- the hooks ------------------------------------------------------------------------------------


def test_rest_hook_emits_ours_and_acryl_objects_through_the_outbox(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datahub_airflow_plugin.hooks.datahub import DatahubRestHook

    with FakeGms(token=TOKEN) as gms:
        _connection(
            monkeypatch,
            "datahub_rest_default",
            conn_type="datahub-rest",
            host=gms.url,
            password=TOKEN,
        )
        wrapper = _AcrylLike(STATUS.to_wire() | {"systemMetadata": None})
        DatahubRestHook().emit([STATUS, wrapper, _AcrylLike(LINEAGE_MCE)])
        got = _aspects(gms.accepted())
        assert gms.violations == []
    assert got == [
        (DS, "status", {"removed": False}),
        (DS, "status", {"removed": False}),
        (
            DS,
            "upstreamLineage",
            LINEAGE_MCE["proposedSnapshot"][  # type: ignore[index]
                "com.linkedin.pegasus2avro.metadata.snapshot.DatasetSnapshot"
            ]["aspects"][0]["com.linkedin.pegasus2avro.dataset.UpstreamLineage"],
        ),
    ]
    from datahub_airflow_listener.transport import Outbox

    assert Outbox(home / "outbox.sqlite").waiting() == 0


def test_the_token_key_is_the_token_of_a_connection_without_one(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datahub_airflow_plugin.hooks.datahub import DatahubRestHook

    with FakeGms(token=TOKEN) as gms:
        _connection(monkeypatch, "dh_no_password", conn_type="datahub-rest", host=gms.url)
        monkeypatch.setenv("AIRFLOW__DATAHUB__TOKEN", TOKEN)
        config_module.reset_config()
        assert TOKEN not in repr(config_module.get_config())
        DatahubRestHook("dh_no_password").emit([STATUS])
        assert len(gms.accepted()) == 1
        assert DatahubRestHook("dh_no_password")._get_config() == (gms.url, TOKEN, None)
        # The connection's own password wins over the key.
        _connection(monkeypatch, "dh_own", conn_type="datahub-rest", host=gms.url, password="other")
        assert DatahubRestHook("dh_own").transport_config()["token"] == "other"


def test_a_refused_mcp_fails_the_emit_with_the_servers_reason(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datahub_airflow_plugin.hooks.datahub import DatahubRestHook

    bad = _AcrylLike(
        {"entityUrn": DS, "aspectName": "status", "aspect": {"json": {"removed": False}}}
    )
    with FakeGms(token=TOKEN) as gms:
        _connection(
            monkeypatch, "dh_refusing", conn_type="datahub-rest", host=gms.url, password=TOKEN
        )
        gms.fail_next(1, status=422)
        with pytest.raises(EmitError, match="refused 1 MCP"):
            DatahubRestHook("dh_refusing").emit([bad])


def test_undelivered_mcps_fail_the_emit_unless_the_listener_delivers_them(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _connection(monkeypatch, "dh_down", conn_type="datahub-rest", host="http://127.0.0.1:9")
    with pytest.raises(EmitError, match="not delivered within 1 s"):
        ConnectionEmitter("dh_down", timeout_sec=1).emit_mcps([STATUS])
    monkeypatch.setenv("AIRFLOW__DATAHUB__CONN_ID", "dh_down")
    config_module.reset_config()
    ConnectionEmitter("dh_down", timeout_sec=1).emit_mcps([STATUS])  # the scheduler will
    assert "the scheduler's sender delivers them" in caplog.text


def test_file_and_generic_hooks_pick_the_connections_type(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from datahub_airflow_plugin.hooks.datahub import (
        DatahubCompositeHook,
        DatahubGenericHook,
        DatahubRestHook,
        SynchronizedFileHook,
    )

    out = tmp_path / "mcps.json"
    _connection(monkeypatch, "dh_file", conn_type="datahub-file", host=str(out))
    _connection(monkeypatch, "dh_rest_x", conn_type="datahub_rest", host="http://127.0.0.1:9")
    assert isinstance(DatahubGenericHook("dh_file").get_underlying_hook(), SynchronizedFileHook)
    assert isinstance(DatahubGenericHook("dh_rest_x").get_underlying_hook(), DatahubRestHook)
    DatahubCompositeHook(["dh_file"]).emit([STATUS])
    SynchronizedFileHook("dh_file").emit_mcps([_AcrylLike(LINEAGE_MCE)])
    written = json.loads(out.read_text())
    assert [(m["entityUrn"], m["aspectName"]) for m in written] == [
        (DS, "status"),
        (DS, "upstreamLineage"),
    ]


def test_no_connection_means_the_local_store(home: Path) -> None:
    from datahub_airflow_plugin.hooks.datahub import DatahubRestHook

    from datahub_airflow_listener.transport.outbox import Outbox

    assert DatahubRestHook().make_emitter().emit_mcps([STATUS]) == 1
    assert (home / "local.sqlite").stat().st_size > 0
    assert Outbox(home / "outbox.sqlite").waiting() == 0


def test_kafka_is_refused_with_one_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datahub_airflow_plugin.hooks.datahub import DatahubGenericHook, DatahubKafkaHook

    _connection(monkeypatch, "dh_kafka", conn_type="datahub-kafka", host="broker:9092")
    with pytest.raises(NotImplementedError, match="not through Kafka"):
        DatahubKafkaHook("dh_kafka").emit([STATUS])
    with pytest.raises(NotImplementedError, match="datahub-rest connection"):
        DatahubGenericHook("dh_kafka").emit([STATUS])


def test_a_typo_in_mces_fails_before_anything_is_sent(home: Path) -> None:
    from datahub_airflow_listener.domain.errors import DomainError

    with pytest.raises(DomainError, match="not an MCP"):
        ConnectionEmitter("datahub_rest_default").emit_mcps([STATUS, "urn:li:oops"])
    assert not (home / "local.sqlite").exists()


# -- the operator ---------------------------------------------------------------------------------


def _dag() -> Any:
    if AIRFLOW_3:
        from airflow.sdk import DAG
    else:
        from airflow import DAG
    return DAG("emit_example", start_date=T0, schedule=None)


def test_the_operator_renders_templates_inside_the_mcps_then_emits(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from datahub_airflow_plugin.operators.datahub import DatahubEmitterOperator

    out = tmp_path / "mcps.json"
    _connection(monkeypatch, "dh_file", conn_type="datahub-file", host=str(out))
    templated = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/{{ ds }},PROD)"
    mcp = MetadataChangeProposal(
        entity_urn=templated,
        aspect=a.Ownership(owners=(a.Owner(owner="urn:li:corpuser:{{ params.who }}"),)),
    )
    with _dag():
        task = DatahubEmitterOperator(
            task_id="emit",
            datahub_conn_id="dh_file",
            mces=[mcp, _AcrylLike(LINEAGE_MCE)],
            params={"who": "alice"},
        )
    assert task.template_fields == ("metadata",)
    task.execute({"ds": "2024-01-01", "params": {"who": "alice"}})
    written = json.loads(out.read_text())
    assert [m["entityUrn"] for m in written] == [
        "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/2024-01-01,PROD)",
        DS,
    ]
    assert written[0]["aspect"]["json"]["owners"][0]["owner"] == "urn:li:corpuser:alice"
