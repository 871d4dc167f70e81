"""Examples of the SDK run against a fake GMS that validates every request.

The project's own examples (``examples/`` here) always run, each in its own interpreter, and
the server must then hold their run events. The seed document
(``shared/seed/dataProcessInstance.md``, beside the repository where the project's CI puts it)
is checked too when it is there, and skipped with the reason otherwise: its examples'
``from datahub... import`` lines are pointed at ``datahub_airflow_listener.sdk`` and the GMS
address at the fake one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_gms import FakeGms

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT.parent / "shared" / "seed" / "dataProcessInstance.md"
IMPORT_RE = re.compile(r"^from datahub[\w.]* import (\([^)]*\)|[^\n]*)", re.MULTILINE)


def _examples() -> list[tuple[str, str]]:
    if not SEED.exists():
        return []
    text = SEED.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL):
        first = block.splitlines()[0]
        if not first.startswith("# metadata-ingestion/examples/") or "emit_process" not in block:
            continue
        out.append((first.rsplit("/", 1)[-1], block))
    return out


def rewrite(source: str, gms_url: str) -> str:
    """Change only the import lines (and the GMS address the test provides)."""
    source = IMPORT_RE.sub(
        lambda m: f"from datahub_airflow_listener.sdk import {m.group(1)}", source
    )
    source = source.replace("http://localhost:8080", gms_url)
    # Sleeps stand for work being done; shorten them so the suite stays fast.
    return "import time as _t; _t.sleep = lambda s: None\n" + source


EXAMPLES = _examples()


OWN = sorted((Path(__file__).parent / "examples").glob("*.py"))
needs_seed = pytest.mark.skipif(
    not SEED.exists(), reason=f"the seed document is not beside the repository ({SEED})"
)


@needs_seed
def test_seed_document_has_the_examples() -> None:
    assert len(EXAMPLES) >= 5, [name for name, _ in EXAMPLES]


@needs_seed
@pytest.mark.parametrize(("name", "source"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_seed_example_runs_against_a_gms(name: str, source: str, tmp_path: Path) -> None:
    script = tmp_path / name
    with FakeGms() as gms:
        script.write_text(rewrite(source, gms.url), encoding="utf-8")
        mcps = _run(script, gms)
    _check_run_events(mcps)


def test_the_projects_own_examples_exist() -> None:
    assert len(OWN) >= 3, OWN


@pytest.mark.parametrize("script", OWN, ids=[p.stem for p in OWN])
def test_own_example_runs_against_a_gms(script: Path) -> None:
    with FakeGms() as gms:
        mcps = _run(script, gms)
    _check_run_events(mcps)


def _run(script: Path, gms: FakeGms) -> list[dict[str, Any]]:
    """Run ``script`` in its own interpreter; the MCPs the GMS accepted (none refused)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATAHUB_GMS_URL": gms.url}
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert gms.violations == []
    return list(gms.accepted())


def _check_run_events(mcps: list[dict[str, Any]]) -> None:
    events = [
        json.loads(m["aspect"]["value"])
        for m in mcps
        if m["aspectName"] == "dataProcessInstanceRunEvent"
    ]
    statuses = [e["status"] for e in events]
    assert "STARTED" in statuses and "COMPLETE" in statuses
    started = {(e["timestampMillis"], e.get("attempt")) for e in events if e["status"] == "STARTED"}
    for event in events:
        if event["status"] == "COMPLETE":
            assert event["result"]["type"] in {"SUCCESS", "FAILURE", "SKIPPED", "UP_FOR_RETRY"}
            # never on the same timestamp as a STARTED of the same attempt
            assert (event["timestampMillis"], event.get("attempt")) not in started
    names = {m["aspectName"] for m in mcps}
    assert "dataProcessInstanceProperties" in names
    assert "dataProcessInstanceRelationships" in names


def test_rewrite_changes_only_imports() -> None:
    src = "from datahub.emitter.rest_emitter import DatahubRestEmitter\nx = 1\n"
    out = rewrite(src, "http://127.0.0.1:1")
    assert "from datahub_airflow_listener.sdk import DatahubRestEmitter" in out
    assert "from datahub.emitter" not in out
    assert out.endswith("x = 1\n")
