"""setup.cfg lists the packages it installs: every package directory must be on the list.

``datahub_airflow_listener/official_names`` is installed only as ``datahub_airflow_plugin``
(the official plugin's import names); every other directory under its own dotted name.
"""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "datahub_airflow_listener"
MAPPED = "datahub_airflow_listener/official_names"
TARGET = "datahub_airflow_plugin"


def _listed() -> tuple[set[str], dict[str, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = {p.strip() for p in cfg["options"]["packages"].split() if p.strip()}
    mapping = dict(
        (part.strip() for part in line.split("=", 1))  # type: ignore[misc]
        for line in cfg["options"]["package_dir"].splitlines()
        if "=" in line
    )
    return packages, mapping


def _on_disk() -> set[str]:
    names = set()
    for init in (ROOT / SOURCE).rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT).as_posix()
        if relative == MAPPED or relative.startswith(MAPPED + "/"):
            relative = TARGET + relative[len(MAPPED) :]
        names.add(relative.replace("/", "."))
    return names


def test_every_package_directory_is_installed_under_its_name() -> None:
    packages, mapping = _listed()
    assert mapping == {TARGET: MAPPED}
    assert packages == _on_disk()
