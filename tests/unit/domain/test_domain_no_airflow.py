"""The domain is pure: it imports without Airflow, requests or acryl-datahub."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("airflow", "requests", "pluggy", "datahub")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Every module under domain/ (subpackages included), found on disk: a new module is covered
# without editing this list.
MODULES = (
    *sorted(_module_name(p) for p in (ROOT / "datahub_airflow_listener" / "domain").rglob("*.py")),
    "datahub_airflow_listener.entities",
)


@pytest.mark.skipif(
    os.environ.get("DHAL_EXPECT_NO_AIRFLOW") != "1",
    reason="only where tox promises an environment without Airflow (DHAL_EXPECT_NO_AIRFLOW=1)",
)
def test_airflow_is_not_installed_in_the_unit_environment() -> None:
    assert importlib.util.find_spec("airflow") is None


def test_importing_the_domain_loads_no_airflow_requests_or_datahub() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert "datahub_airflow_listener.domain.runs" in MODULES  # the list is the real directory
    assert set(MODULES) <= set(loaded)  # the probe really imported them
    offending = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offending == []
    layers = [
        m
        for m in loaded
        if m.startswith(("datahub_airflow_listener.transport", "datahub_airflow_listener.adapter"))
    ]
    assert layers == []
