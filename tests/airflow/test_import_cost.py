"""Importing the plugin (what Airflow does in every process) stays cheap.

Measured in a fresh interpreter: first what Airflow itself has imported by the time it loads
plugins, then the plugin module; the difference must hold no HTTP stack, no sqlite3 and none
of the transport or connection-hook modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

PROBE = """
import json, sys, time
import airflow.plugins_manager  # loaded by Airflow before it imports any plugin
before = set(sys.modules)
start = time.perf_counter()
import datahub_airflow_listener.adapter.plugin as plugin
elapsed_ms = (time.perf_counter() - start) * 1000
listener = plugin.DatahubListenerPlugin.listeners[0]
print(json.dumps({"new": sorted(set(sys.modules) - before), "ms": elapsed_ms,
                  "listener": type(listener).__name__}))
"""

FORBIDDEN = (
    "requests",
    "urllib3",
    "sqlite3",
    "_sqlite3",
    "datahub_airflow_listener.transport",
    "datahub_airflow_listener.adapter.hooks",
    "datahub_airflow_listener.adapter.runtime_transport",
)


def _probe(source: str, env: dict[str, str]) -> Any:
    """Run ``source`` in a fresh interpreter; what its last output line holds (JSON)."""
    out = subprocess.run(
        [sys.executable, "-c", source],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_plugin_import_adds_no_http_sqlite_or_transport_modules() -> None:
    result = _probe(PROBE, dict(os.environ))
    assert result["listener"] == "DatahubListener"
    offenders = [
        m for m in result["new"] if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN)
    ]
    assert offenders == []
    ours = {m for m in result["new"] if m.startswith("datahub_airflow_listener")}
    # The domain model, config and connection code load on the first hook call, not here.
    assert ours <= {
        "datahub_airflow_listener",
        "datahub_airflow_listener.adapter",
        "datahub_airflow_listener.adapter.listener",
        "datahub_airflow_listener.adapter.logs",
        "datahub_airflow_listener.adapter.plugin",
    }
    assert "datahub_airflow_listener.adapter.listener" in ours
    print(f"plugin import: {result['ms']:.1f} ms, {len(result['new'])} new modules")


STARTING_PROBE = """
import json, sys
from datahub_airflow_listener.adapter.listener import get_listener
get_listener().on_starting(component=None)  # what a scheduler does before forking workers
print(json.dumps({m: m in sys.modules for m in (
    "datahub_airflow_listener.transport.dispatcher",
    "datahub_airflow_listener.adapter.templates",
    "requests",
)}))
"""


def _loaded_after_on_starting(extra_env: dict[str, str]) -> dict[str, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATAHUB__")}
    env.update(extra_env)
    loaded: dict[str, bool] = _probe(STARTING_PROBE, env)
    return loaded


def test_on_starting_preloads_the_sender_for_forked_task_processes(tmp_path) -> None:
    """Task processes fork from the scheduler's executor workers: what on_starting imported
    there, they inherit instead of importing on their first hook."""
    home = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATAHUB__ENABLED": "True"}
    assert set(_loaded_after_on_starting(home).values()) == {True}
    disabled = _loaded_after_on_starting({**home, "AIRFLOW__DATAHUB__ENABLED": "False"})
    del disabled["requests"]  # Airflow 2 imports it itself
    assert set(disabled.values()) == {False}
