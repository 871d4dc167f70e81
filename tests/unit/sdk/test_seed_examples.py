"""Every Python example of the seed document runs against our SDK with only its imports changed.

The examples are read from ``shared/seed/dataProcessInstance.md`` (beside the repository),
their ``from datahub... import`` lines are pointed at ``datahub_airflow_listener.sdk``, the GMS
address is replaced by a fake GMS on 127.0.0.1 that validates every request, and each example
runs in its own interpreter. The server must then hold the example's run events.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

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


def test_seed_document_has_the_examples() -> None:
    assert SEED.exists(), f"seed document missing at {SEED}"
    assert len(EXAMPLES) >= 5, [name for name, _ in EXAMPLES]


@pytest.mark.parametrize(("name", "source"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_seed_example_runs_against_a_gms(name: str, source: str, tmp_path: Path) -> None:
    with FakeGms() as gms:
        script = tmp_path / name
        script.write_text(rewrite(source, gms.url), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
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
        mcps = gms.accepted()
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
