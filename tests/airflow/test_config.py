"""The [datahub] section: defaults, every key, one warning per bad value, the kill switch."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from datahub_airflow_listener.adapter import config as cfg
from datahub_airflow_listener.adapter.config import AllowDeny, DatahubConfig, parse_config
from datahub_airflow_listener.adapter.logs import forget_said
from tests.airflow.conftest import AIRFLOW_3


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Any:
    forget_said()
    for name in list(os.environ):
        if name.startswith("AIRFLOW__DATAHUB__"):
            monkeypatch.delenv(name)
    monkeypatch.delenv(cfg.OFFICIAL_KILL_SWITCH_ENV, raising=False)
    cfg.reset_config()
    yield
    cfg.reset_config()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_defaults_match_the_official_plugins() -> None:
    config = parse_config({})
    assert config.enabled is True
    assert config.conn_ids == ("datahub_rest_default",)
    assert config.conn_id_explicit is False
    assert config.cluster == "prod"
    assert config.platform_instance is None
    assert config.capture_executions is True
    assert config.capture_ownership_info is True
    assert config.capture_ownership_as_group is False
    assert config.capture_tags_info is True
    assert config.materialize_iolets is True
    assert config.flush_timeout_sec == 2.0
    assert config.reconcile_interval_sec == 5.0
    assert config.exit_wait_ms == 40.0
    assert config.outbox_max_rows == 100_000
    assert config.outbox_path == os.path.join(os.environ["AIRFLOW_HOME"], "datahub")
    assert config.kill_switch_file == os.path.join(config.outbox_path, "disabled")
    assert config.dag_allowed("anything")


def test_every_key_is_read() -> None:
    config = parse_config(
        {
            "enabled": "False",
            "conn_id": " a , b,a ",
            "cluster": "dev",
            "platform_instance": "eu1",
            "capture_executions": "no",
            "capture_ownership_info": "0",
            "capture_ownership_as_group": "yes",
            "capture_tags_info": "off",
            "capture_airflow_assets": "false",
            "materialize_iolets": "FALSE",
            "dag_filter_pattern": '{"allow": ["etl_.*"], "deny": [".*_tmp"]}',
            "dataset_pattern": '{"deny": ["postgres:.*"]}',
            "flush_timeout_sec": "0.5",
            "outbox_max_rows": "10",
            "outbox_path": "/var/lib/dh",
            "kill_switch_file": "/run/dh-off",
            "reconcile_interval_sec": "5",
        }
    )
    assert config == DatahubConfig(
        enabled=False,
        conn_ids=("a", "b"),
        conn_id_explicit=True,
        cluster="dev",
        platform_instance="eu1",
        capture_executions=False,
        capture_ownership_info=False,
        capture_ownership_as_group=True,
        capture_tags_info=False,
        capture_airflow_assets=False,
        materialize_iolets=False,
        dag_filter_pattern=AllowDeny(allow=("etl_.*",), deny=(".*_tmp",)),
        dataset_pattern=AllowDeny(deny=("postgres:.*",)),
        flush_timeout_sec=0.5,
        outbox_max_rows=10,
        outbox_path="/var/lib/dh",
        kill_switch_file="/run/dh-off",
        reconcile_interval_sec=5.0,
    )
    assert config.dag_allowed("etl_orders")
    assert config.dag_allowed("ETL_orders")  # ignoreCase defaults to true, as the official
    assert not config.dag_allowed("etl_orders_tmp")
    assert not config.dag_allowed("other")


@pytest.mark.parametrize(
    ("key", "value", "field", "default"),
    [
        ("enabled", "maybe", "enabled", True),
        ("capture_executions", "2", "capture_executions", True),
        ("flush_timeout_sec", "-1", "flush_timeout_sec", 2.0),
        ("flush_timeout_sec", "nan", "flush_timeout_sec", 2.0),
        ("flush_timeout_sec", "soon", "flush_timeout_sec", 2.0),
        ("reconcile_interval_sec", "0", "reconcile_interval_sec", 5.0),
        ("outbox_max_rows", "0", "outbox_max_rows", 100_000),
        ("outbox_max_rows", "1e3", "outbox_max_rows", 100_000),
        ("cluster", "a,b", "cluster", "prod"),
        ("conn_id", " , ", "conn_ids", ("datahub_rest_default",)),
        ("dag_filter_pattern", "{not json", "dag_filter_pattern", AllowDeny()),
        ("dag_filter_pattern", '{"allow": "x"}', "dag_filter_pattern", AllowDeny()),
        ("dag_filter_pattern", '{"allow": ["("]}', "dag_filter_pattern", AllowDeny()),
        ("dataset_pattern", '{"alow": [".*"]}', "dataset_pattern", AllowDeny()),
    ],
)
def test_a_bad_value_gets_one_warning_naming_the_key_and_the_default(
    caplog: pytest.LogCaptureFixture, key: str, value: str, field: str, default: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")
    config = parse_config({key: value})
    assert getattr(config, field) == default
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert f"[datahub] {key} = {value.strip()!r} is invalid" in warnings[0]
    parse_config({key: value})  # the same problem again in this process: no second line
    assert len(_warnings(caplog)) == 1


def test_unknown_key_warns_once_and_official_only_keys_are_accepted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="datahub_airflow_listener")
    parse_config({"clustr": "dev", "render_templates": "true", "patch_sql_parser": "false"})
    assert _warnings(caplog) == [
        "datahub-airflow-listener: [datahub] unknown key 'clustr' is ignored"
    ]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    (line,) = [m for m in infos if "cannot apply here" in m]
    assert "patch_sql_parser (the OpenLineage provider's SQL parser is used as it is)" in line
    # render_templates means something on Airflow 2 only: named (with why) on 3
    assert ("render_templates (Airflow 3 renders" in line) == AIRFLOW_3


def test_official_dag_filter_str_is_honoured_and_the_new_name_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")
    official = parse_config({"dag_filter_str": '{"deny": ["secret_.*"]}'})
    assert not official.dag_allowed("secret_dag")
    assert _warnings(caplog) == []
    both = parse_config(
        {"dag_filter_str": '{"deny": ["a"]}', "dag_filter_pattern": '{"deny": ["b"]}'}
    )
    assert both.dag_allowed("a") and not both.dag_allowed("b")
    assert len(_warnings(caplog)) == 1


def test_environment_variables_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """AIRFLOW__DATAHUB__* with no [datahub] section in airflow.cfg (2.x getsection misses them)."""
    monkeypatch.setenv("AIRFLOW__DATAHUB__CLUSTER", "staging")
    monkeypatch.setenv("AIRFLOW__DATAHUB__CONN_ID", "dh_a,dh_b")
    monkeypatch.setenv("AIRFLOW__DATAHUB__CAPTURE_EXECUTIONS", "false")
    config = cfg.load_config()
    assert config.cluster == "staging"
    assert config.conn_ids == ("dh_a", "dh_b")
    assert config.capture_executions is False


def test_unknown_environment_key_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")
    monkeypatch.setenv("AIRFLOW__DATAHUB__FLUSH_TIMEOUT", "3")
    cfg.load_config()
    assert _warnings(caplog) == [
        "datahub-airflow-listener: [datahub] unknown key 'flush_timeout' is ignored"
    ]


def test_config_is_built_once_per_process_and_rebuilt_on_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__DATAHUB__CLUSTER", "one")
    first = cfg.get_config()
    monkeypatch.setenv("AIRFLOW__DATAHUB__CLUSTER", "two")
    assert cfg.get_config() is first
    cfg.reset_config()
    assert cfg.get_config().cluster == "two"


def test_kill_switch_file_needs_no_restart(tmp_path: Path) -> None:
    config = parse_config({"outbox_path": str(tmp_path)})
    assert not cfg.kill_switch_engaged(config)
    flag = tmp_path / "disabled"
    flag.touch()
    assert cfg.kill_switch_engaged(config)
    flag.unlink()
    assert not cfg.kill_switch_engaged(config)


@pytest.mark.parametrize(("value", "engaged"), [("true", True), ("True", True), ("false", False)])
def test_official_kill_switch_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, engaged: bool
) -> None:
    config = parse_config({"outbox_path": str(tmp_path)})
    monkeypatch.setenv(cfg.OFFICIAL_KILL_SWITCH_ENV, value)
    assert cfg.kill_switch_engaged(config) is engaged


def test_kill_switch_stops_the_listener_between_two_hooks(
    registered: Any, recorder: Any, tmp_path: Path
) -> None:
    from tests.airflow.conftest import call_hook, core_manager, make_dag_run

    config = cfg.get_config()
    call_hook(core_manager(), "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    assert len(recorder.events()) == 1
    Path(config.kill_switch_file).parent.mkdir(parents=True, exist_ok=True)
    Path(config.kill_switch_file).touch()
    call_hook(
        core_manager(), "on_dag_run_success", dag_run=make_dag_run(state="success"), msg="success"
    )
    assert len(recorder.events()) == 1
    Path(config.kill_switch_file).unlink()
    call_hook(
        core_manager(), "on_dag_run_success", dag_run=make_dag_run(state="success"), msg="success"
    )
    assert len(recorder.events()) == 2


def test_dag_filter_applies_to_every_hook(
    registered: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch, dag: Any
) -> None:
    from tests.airflow.conftest import call_hook, core_manager, make_dag_run, make_orm_ti

    monkeypatch.setenv("AIRFLOW__DATAHUB__DAG_FILTER_PATTERN", '{"deny": ["etl"]}')
    cfg.reset_config()
    call_hook(core_manager(), "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    ti = make_orm_ti(dag.get_task("extract"), state="success", end_date=None)
    call_hook(core_manager(), "on_task_instance_success", task_instance=ti)
    assert recorder.mcps == []


def test_disabled_plugin_emits_nothing(
    registered: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.airflow.conftest import call_hook, core_manager, make_dag_run

    monkeypatch.setenv("AIRFLOW__DATAHUB__ENABLED", "false")
    cfg.reset_config()
    call_hook(core_manager(), "on_dag_run_running", dag_run=make_dag_run(), msg="started")
    assert not recorder.built


def test_official_plugin_installed_is_warned_about_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.WARNING, logger="datahub_airflow_listener")
    # Its distribution is what counts (this package provides the import name too).
    fake = tmp_path / "acryl_datahub_airflow_plugin-1.7.0.17.dist-info"
    fake.mkdir()
    (fake / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acryl-datahub-airflow-plugin\nVersion: 1.7.0.17\n"
    )
    cfg.load_config()
    assert _warnings(caplog) == []
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg.load_config()
    cfg.load_config()
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "official DataHub Airflow plugin" in warnings[0]
    assert "1.7.0.17" in warnings[0]


def test_sampled_out_runs_emit_nothing_in_any_hook(
    registered: Any, recorder: Any, monkeypatch: pytest.MonkeyPatch, dag: Any
) -> None:
    from datahub_airflow_listener.domain.sampling import sampled_in
    from tests.airflow.conftest import call_hook, core_manager, make_dag_run, make_orm_ti

    monkeypatch.setenv("AIRFLOW__DATAHUB__SAMPLE_DAGS", '{"et.*": 1000}')
    cfg.reset_config()
    dag_run = make_dag_run()
    assert not sampled_in(dag.dag_id, dag_run.run_id, 1000), "pick a run id that is sampled out"
    call_hook(core_manager(), "on_dag_run_running", dag_run=dag_run, msg="started")
    ti = make_orm_ti(dag.get_task("extract"), state="success", end_date=None)
    call_hook(core_manager(), "on_task_instance_success", task_instance=ti)
    assert recorder.mcps == []

    monkeypatch.setenv("AIRFLOW__DATAHUB__SAMPLE_DAGS", '{"et.*": 1}')
    cfg.reset_config()
    call_hook(core_manager(), "on_dag_run_running", dag_run=dag_run, msg="started")
    assert recorder.mcps != []
