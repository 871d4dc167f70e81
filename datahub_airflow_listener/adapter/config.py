"""The ``[datahub]`` section of airflow.cfg (and ``AIRFLOW__DATAHUB__*``), read once per process.

Keys, defaults and meaning (names shared with the official DataHub Airflow plugin keep its
meaning, so an existing airflow.cfg carries over):

=============================  ========================  ==========================================
key                            default                   meaning
=============================  ========================  ==========================================
enabled                        true                      master switch (read at process start)
conn_id                        datahub_rest_default      connection id(s), comma-separated; all get
                                                         every event. Missing -> the local store.
cluster                        prod                      DataHub cluster of flows/jobs/runs
platform_instance              (none)                    prefixes the flow id as ``<inst>.<dag>``
capture_executions             true                      emit process instances (false: nothing)
capture_ownership_info         true                      for DataFlow/DataJob templates
capture_ownership_as_group     false                     owners as corpGroup instead of corpuser
capture_tags_info              true                      DAG tags as DataHub tags
capture_airflow_assets         true                      map Airflow Assets/Datasets in iolets
materialize_iolets             true                      create/undelete datasets named in iolets
dag_filter_pattern             {"allow": [".*"]}         allow/deny regex JSON on dag ids; the
                                                         official ``dag_filter_str`` is honoured
dataset_pattern                {"allow": [".*"]}         allow/deny regex JSON on dataset urns
flush_timeout_sec              2                         deadline of ``datahub-airflow-listener
                                                         flush`` without ``--timeout``
exit_wait_ms                   40                        at most this long a task process waits
                                                         at exit for its events (0 when DataHub
                                                         is known failing or slow)
outbox_max_rows                100000                    bound of the local outbox (oldest dropped)
outbox_path                    $AIRFLOW_HOME/datahub     directory of the outbox / local store
kill_switch_file               <outbox_path>/disabled    this file existing disables every hook
reconcile_interval_sec         5                         how often the scheduler reads the tries
                                                         of running DAG runs (and runs ended
                                                         without a hook) from the metadata DB
watch_process                  true                      the scheduler's recording runs in a
                                                         process of its own (false: a thread of
                                                         the scheduler, and its hooks)
enable_extractors              true                      read what operators report of their
                                                         lineage (OpenLineage methods and
                                                         extractors; needs the OpenLineage
                                                         provider installed, else nothing)
enable_datajob_lineage         true                      also put lineage found at run time on
                                                         the DataJob (false: task runs only)
extractor_timeout_sec          5                         at most this long an operator's lineage
                                                         is waited for at a try's end
disabled_for_operators         (none)                    operator classes (names or dotted paths,
                                                         ``;``-separated) whose own lineage is not
                                                         read; ``[openlineage]
                                                         disabled_for_operators`` counts too
asset_connections              (none)                    JSON ``{"<scheme>://<host:port>":
                                                         {"platform_instance", "database", "env",
                                                         "convert_urns_to_lowercase",
                                                         "platform"}}``: how datasets reached
                                                         through a connection are named
asset_naming                   datahub                   ``datahub``: Airflow Asset URIs named as
                                                         DataHub's sources name the table
                                                         (``db.schema.table``); ``official``: as
                                                         the official plugin 1.7 names them
                                                         (``host:port/db/schema/table``)
datajob_url_link               tasks                     the Airflow UI page a DataJob links to:
                                                         ``tasks`` (Airflow 3's task page; the
                                                         grid on Airflow 2), ``grid`` (the grid,
                                                         task selected), ``taskinstance`` (Airflow
                                                         2's task instance list)
render_templates               true                      Airflow 2: render Jinja in a task's
                                                         inlets/outlets before reading them when
                                                         its try starts (Airflow 2 renders them
                                                         only inside execute())
log_level                      (Airflow's)               level of this plugin's loggers
                                                         (``DEBUG``, ``INFO``, ``WARNING``...)
debug_emitter                  false                     log every MCP handed to the sender, with
                                                         its aspect (INFO)
token                          (none)                    DataHub token for a ``datahub-rest``
                                                         connection that has no password
=============================  ========================  ==========================================

Allow/deny JSON has the official plugin's shape: ``{"allow": [...], "deny": [...],
"ignoreCase": true}``; deny wins; patterns are ``re.match``-ed (anchored at the start).

A malformed value or an unknown key gets ONE warning naming the key and the default is used:
the plugin never stops Airflow from starting. Keys of the official plugin that cannot apply
here are listed in one INFO line, each with the reason.

**Kill switch, without a restart** (:func:`kill_switch_engaged`, checked at the top of every
hook, cost: one dict lookup and one ``stat``):

* the file ``kill_switch_file`` exists (``touch $AIRFLOW_HOME/datahub/disabled``): every
  process on that machine (or sharing that volume) stops emitting at its next hook, and
  resumes when the file is removed;
* the official plugin's switch ``AIRFLOW_VAR_DATAHUB_AIRFLOW_PLUGIN_DISABLE_LISTENER=true`` is
  honoured with the same semantics it documents (read from the process environment). It is
  deliberately NOT read as an Airflow Variable from the metadata DB: that would be one query per
  hook, and inside a scheduler hook a new session is the scheduler's own (see compat).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from datahub_airflow_listener.adapter.logs import log_once
from datahub_airflow_listener.domain.history import sampled_in
from datahub_airflow_listener.domain.lineage import DatasetPattern
from datahub_airflow_listener.domain.openlineage import ConnectionDetail, parse_connections

log = logging.getLogger(__name__)

__all__ = [
    "OFFICIAL_KILL_SWITCH_ENV",
    "AllowDeny",
    "apply_log_level",
    "official_plugin_version",
    "DatahubConfig",
    "get_config",
    "kill_switch_engaged",
    "load_config",
    "reset_config",
]

SECTION: Final = "datahub"
OFFICIAL_KILL_SWITCH_ENV: Final = "AIRFLOW_VAR_DATAHUB_AIRFLOW_PLUGIN_DISABLE_LISTENER"
DEFAULT_CONN_ID: Final = "datahub_rest_default"
KILL_SWITCH_FILENAME: Final = "disabled"

# Keys the official plugin reads that cannot apply here, with the reason given in the one INFO
# line that lists them (so a shared airflow.cfg works and nobody wonders what they do).
_OFFICIAL_ONLY_KEYS: Final[Mapping[str, str]] = {
    "datahub_conn_id": "the connection ids are read from conn_id, by both plugins",
    "disable_openlineage_plugin": "the OpenLineage provider's own listener is left as it is",
    "emit_mode": "events always go through the outbox, delivered in the background",
    "enable_multi_statement_sql_parsing": "SQL is read by the OpenLineage provider's parser",
    "extract_athena_operator": "operators report their lineage themselves; none is patched",
    "extract_bigquery_insert_job_operator": "operators report their lineage themselves; none "
    "is patched",
    "extract_teradata_operator": "operators report their lineage themselves; none is patched",
    "graceful_exceptions": "this plugin never raises into Airflow",
    "patch_sql_parser": "the OpenLineage provider's SQL parser is used as it is",
    "normalize_object_storage_urns": "object-store datasets are always named as DataHub's "
    "S3/GCS/ABS sources name them",
    "capture_ol_file_datasets": "local files a task reports are recorded like any dataset",
    "capture_bigquery_temp_datasets": "no BigQuery-specific filtering (use dataset_pattern)",
    "bigquery_temp_table_dataset_prefix": "no BigQuery-specific filtering (use dataset_pattern)",
}
DATAJOB_URL_LINKS: Final = ("tasks", "grid", "taskinstance")
ASSET_NAMINGS: Final = ("datahub", "official")

_TRUE: Final = frozenset({"true", "t", "1", "yes", "y", "on"})
_FALSE: Final = frozenset({"false", "f", "0", "no", "n", "off"})


@attrs.frozen(kw_only=True)
class AllowDeny(DatasetPattern):
    """Allow/deny regexes, shaped like the official plugin's ``AllowDenyPattern``: the domain's
    matcher, plus parsing from airflow.cfg's JSON."""

    @property
    def allows_all(self) -> bool:
        return not self.deny and ".*" in self.allow

    @classmethod
    def from_json(cls, text: str) -> AllowDeny:
        """Parse ``{"allow": [...], "deny": [...], "ignoreCase": bool}``; ValueError if bad."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object with 'allow' and/or 'deny'")
        unknown = set(data) - {"allow", "deny", "ignoreCase", "ignore_case"}
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        allow = data.get("allow", [".*"])
        deny = data.get("deny", [])
        for name, value in (("allow", allow), ("deny", deny)):
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise ValueError(f"'{name}' must be a list of regex strings")
        ignore_case = data.get("ignoreCase", data.get("ignore_case", True))
        if not isinstance(ignore_case, bool):
            raise ValueError("'ignoreCase' must be true or false")
        try:
            return cls(allow=tuple(allow), deny=tuple(deny), ignore_case=ignore_case)
        except re.error as exc:
            raise ValueError(f"bad regex: {exc}") from None


def _default_home() -> str:
    home = os.environ.get("AIRFLOW_HOME")
    if not home:
        try:
            from airflow.configuration import AIRFLOW_HOME

            home = str(AIRFLOW_HOME)
        except Exception:
            home = os.path.expanduser("~/airflow")
    return home


# -- sampling (sample_dags) ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SamplePolicy:
    """``[datahub] sample_dags``: record ~1 in N runs of the DAGs a regex matches.

    The first rule whose regex matches the whole dag id wins; other DAGs are recorded fully.
    The decision per run is :func:`~datahub_airflow_listener.domain.history.sampled_in`, so
    the scheduler and the task processes agree and a sampled-out run loses its task runs too.
    """

    rules: tuple[tuple[str, int], ...] = ()
    _compiled: tuple[tuple[re.Pattern[str], int], ...] = attrs.field(
        init=False, repr=False, eq=False
    )
    _cache: dict[str, int] = attrs.field(init=False, repr=False, eq=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        compiled = tuple((re.compile(p), n) for p, n in self.rules)
        object.__setattr__(self, "_compiled", compiled)

    def every_n(self, dag_id: str) -> int:
        """N for this DAG (1: every run is recorded)."""
        cached = self._cache.get(dag_id)
        if cached is not None:
            return cached
        n = next((n for p, n in self._compiled if p.fullmatch(dag_id)), 1)
        if len(self._cache) < 10_000:
            self._cache[dag_id] = n
        return n

    def records(self, dag_id: str, run_id: str) -> bool:
        """Whether this DAG run (and so its task runs) is recorded."""
        n = self.every_n(dag_id)
        return n <= 1 or sampled_in(dag_id, run_id, n)

    def describe(self) -> str:
        if not self.rules:
            return "every run of every DAG is recorded"
        return "; ".join(f"DAGs matching {p!r}: ~1 run in {n}" for p, n in self.rules)


def parse_sample_dags(text: str | None) -> SamplePolicy:
    """Parse ``{"<dag id regex>": N, ...}`` (N an integer >= 1); ValueError naming the problem.

    Empty text means no sampling.
    """
    if text is None or not text.strip():
        return SamplePolicy()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f'not JSON ({exc}); expected {{"<dag id regex>": N}}') from None
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object {"<dag id regex>": N}')
    rules = []
    for pattern, n in data.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{pattern!r}: N must be an integer >= 1, got {n!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regex: {exc}") from None
        rules.append((pattern, n))
    return SamplePolicy(rules=tuple(rules))


@attrs.frozen(kw_only=True)
class DatahubConfig:
    """The plugin's settings for one process; built by :func:`load_config` / :func:`get_config`."""

    enabled: bool = True
    conn_ids: tuple[str, ...] = (DEFAULT_CONN_ID,)
    # True when conn_id was set explicitly: a missing connection is then worth a warning.
    conn_id_explicit: bool = False
    cluster: str = "prod"
    platform_instance: str | None = None
    capture_executions: bool = True
    capture_ownership_info: bool = True
    capture_ownership_as_group: bool = False
    capture_tags_info: bool = True
    capture_airflow_assets: bool = True
    materialize_iolets: bool = True
    dag_filter_pattern: AllowDeny = attrs.field(factory=AllowDeny)
    dataset_pattern: AllowDeny = attrs.field(factory=AllowDeny)
    flush_timeout_sec: float = 2.0
    exit_wait_ms: float = 40.0
    outbox_max_rows: int = 100_000
    outbox_path: str = attrs.field(factory=lambda: os.path.join(_default_home(), "datahub"))
    kill_switch_file: str = ""
    sample_dags: SamplePolicy = attrs.field(factory=SamplePolicy)
    reconcile_interval_sec: float = 5.0
    watch_process: bool = True
    enable_extractors: bool = True
    enable_datajob_lineage: bool = True
    extractor_timeout_sec: float = 5.0
    disabled_for_operators: tuple[str, ...] = ()
    asset_connections: Mapping[str, ConnectionDetail] = attrs.field(factory=dict)
    asset_naming: str = "datahub"
    datajob_url_link: str = "tasks"
    render_templates: bool = True
    log_level: str | None = None
    debug_emitter: bool = False
    # A GMS token for datahub-rest connections without a password; never shown in a repr.
    token: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.kill_switch_file:
            path = os.path.join(self.outbox_path, KILL_SWITCH_FILENAME)
            object.__setattr__(self, "kill_switch_file", path)

    def dag_allowed(self, dag_id: str) -> bool:
        return self.dag_filter_pattern.allowed(dag_id)


# -- parsing --------------------------------------------------------------------------------------


class _Reader:
    """Reads raw values and reports each problem once (per key, per process)."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def parse(self, key: str, default: Any, parser: Callable[[str], Any]) -> Any:
        value = self.text(key)
        if value is None:
            return default
        try:
            return parser(value)
        except (ValueError, TypeError) as exc:
            _warn_once(key, f"[{SECTION}] {key} = {value!r} is invalid ({exc}); using {default!r}")
            return default


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.replace(",", ";").split(";") if p.strip())


def _connections(text: str) -> dict[str, ConnectionDetail]:
    connections, problems = parse_connections(text)
    for problem in problems:
        _warn_once(f"asset_connections:{problem}", f"[{SECTION}] asset_connections: {problem}")
    return connections


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError("expected a positive number of seconds")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError("expected a number >= 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def _log_level(text: str) -> str:
    value = text.strip().upper()
    if not isinstance(logging.getLevelName(value), int):
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return value


def _conn_ids(text: str) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not ids:
        raise ValueError("no connection id")
    return ids


def _cluster(text: str) -> str:
    if any(ch in text for ch in ",()") or text != text.strip():
        raise ValueError("must not contain ',', '(' or ')'")
    return text


_KNOWN_KEYS: Final = frozenset(
    {
        "enabled",
        "conn_id",
        "cluster",
        "platform_instance",
        "capture_executions",
        "capture_ownership_info",
        "capture_ownership_as_group",
        "capture_tags_info",
        "capture_airflow_assets",
        "materialize_iolets",
        "dag_filter_pattern",
        "dag_filter_str",
        "dataset_pattern",
        "flush_timeout_sec",
        "exit_wait_ms",
        "outbox_max_rows",
        "outbox_path",
        "kill_switch_file",
        "sample_dags",
        "reconcile_interval_sec",
        "watch_process",
        "enable_extractors",
        "enable_datajob_lineage",
        "extractor_timeout_sec",
        "disabled_for_operators",
        "asset_connections",
        "asset_naming",
        "datajob_url_link",
        "render_templates",
        "log_level",
        "debug_emitter",
        "token",
    }
)


def parse_config(raw: Mapping[str, str]) -> DatahubConfig:
    """Build the config from raw ``{key: text}`` values. Never raises; warns once per bad key."""
    r = _Reader({k.lower(): v for k, v in raw.items() if isinstance(v, str)})
    unknown = sorted(set(r.raw) - _KNOWN_KEYS - set(_OFFICIAL_ONLY_KEYS))
    for key in unknown:
        _warn_once(key, f"[{SECTION}] unknown key {key!r} is ignored")
    _info_not_applying(r)

    defaults = DatahubConfig(outbox_path="")
    conn_text = r.text("conn_id")
    dag_key = "dag_filter_pattern"
    if r.text("dag_filter_pattern") is None and r.text("dag_filter_str") is not None:
        dag_key = "dag_filter_str"
    elif r.text("dag_filter_pattern") is not None and r.text("dag_filter_str") is not None:
        _warn_once(
            "dag_filter_str",
            f"[{SECTION}] both dag_filter_pattern and dag_filter_str are set; "
            "using dag_filter_pattern",
        )
    outbox_path = r.parse("outbox_path", "", os.path.expanduser) or os.path.join(
        _default_home(), "datahub"
    )
    return DatahubConfig(
        enabled=r.parse("enabled", True, _bool),
        conn_ids=r.parse("conn_id", defaults.conn_ids, _conn_ids),
        conn_id_explicit=conn_text is not None,
        cluster=r.parse("cluster", defaults.cluster, _cluster),
        platform_instance=r.text("platform_instance"),
        capture_executions=r.parse("capture_executions", True, _bool),
        capture_ownership_info=r.parse("capture_ownership_info", True, _bool),
        capture_ownership_as_group=r.parse("capture_ownership_as_group", False, _bool),
        capture_tags_info=r.parse("capture_tags_info", True, _bool),
        capture_airflow_assets=r.parse("capture_airflow_assets", True, _bool),
        materialize_iolets=r.parse("materialize_iolets", True, _bool),
        dag_filter_pattern=r.parse(dag_key, AllowDeny(), AllowDeny.from_json),
        dataset_pattern=r.parse("dataset_pattern", AllowDeny(), AllowDeny.from_json),
        flush_timeout_sec=r.parse("flush_timeout_sec", 2.0, _positive_float),
        exit_wait_ms=r.parse("exit_wait_ms", 40.0, _non_negative_float),
        outbox_max_rows=r.parse("outbox_max_rows", 100_000, _positive_int),
        outbox_path=outbox_path,
        kill_switch_file=r.parse("kill_switch_file", "", os.path.expanduser),
        sample_dags=r.parse("sample_dags", SamplePolicy(), parse_sample_dags),
        reconcile_interval_sec=r.parse("reconcile_interval_sec", 5.0, _positive_float),
        watch_process=r.parse("watch_process", True, _bool),
        enable_extractors=r.parse("enable_extractors", True, _bool),
        enable_datajob_lineage=r.parse("enable_datajob_lineage", True, _bool),
        extractor_timeout_sec=r.parse("extractor_timeout_sec", 5.0, _positive_float),
        disabled_for_operators=r.parse("disabled_for_operators", (), _names),
        asset_connections=r.parse("asset_connections", {}, _connections),
        asset_naming=r.parse("asset_naming", "datahub", _choice(*ASSET_NAMINGS)),
        datajob_url_link=r.parse("datajob_url_link", "tasks", _choice(*DATAJOB_URL_LINKS)),
        render_templates=r.parse("render_templates", True, _bool),
        log_level=r.parse("log_level", None, _log_level),
        debug_emitter=r.parse("debug_emitter", False, _bool),
        token=r.text("token"),
    )


def _info_not_applying(r: _Reader) -> None:
    """One INFO line naming the keys set here that cannot apply, and why each."""
    reasons = {k: why for k, why in _OFFICIAL_ONLY_KEYS.items() if k in r.raw}
    from datahub_airflow_listener.adapter import compat

    airflow_3 = compat.is_airflow_3()
    link = (r.text("datajob_url_link") or "").lower()
    if airflow_3 and r.text("render_templates") is not None:
        reasons["render_templates"] = (
            "Airflow 3 renders a task's templated fields before any listener hook"
        )
    if airflow_3 and link == "taskinstance":
        reasons["datajob_url_link"] = "Airflow 3 has no task instance list; linking the task page"
    elif not airflow_3 and link == "tasks" and compat.airflow_version():
        reasons["datajob_url_link"] = "Airflow 2 has no task page; linking the grid"
    if reasons:
        _info_once(
            "official-only",
            f"[{SECTION}] keys of the official DataHub plugin that cannot apply here: "
            + "; ".join(f"{k} ({why})" for k, why in sorted(reasons.items())),
        )


def read_raw_section() -> dict[str, str]:
    """Every ``[datahub]`` value Airflow can see: airflow.cfg, ``AIRFLOW__DATAHUB__*``
    (including ``_CMD`` / ``_SECRET`` forms), as text.

    ``conf.getsection`` misses environment-only keys when airflow.cfg has no ``[datahub]``
    section (2.x), so known keys are read one by one with ``conf.get`` and the environment is
    scanned for the names of unknown ones.
    """
    from airflow.configuration import conf

    names: set[str] = set(_KNOWN_KEYS | set(_OFFICIAL_ONLY_KEYS))
    try:
        section = conf.getsection(SECTION) or {}
        names.update(str(k).lower() for k in section)
    except Exception:
        section = {}
    prefix = f"AIRFLOW__{SECTION.upper()}__"
    for env_name in os.environ:
        if env_name.startswith(prefix):
            key = env_name[len(prefix) :].lower()
            for suffix in ("_cmd", "_secret"):
                if key.endswith(suffix):
                    key = key[: -len(suffix)]
            names.add(key)
    raw: dict[str, str] = {}
    for key in sorted(names):
        try:
            value = conf.get(SECTION, key, fallback=None)
        except Exception as exc:  # a failing _CMD, a broken secrets backend...
            _warn_once(key, f"[{SECTION}] {key} could not be read ({exc}); using the default")
            continue
        if value is not None:
            raw[key] = str(value)
    return raw


# -- once-only messages ---------------------------------------------------------------------------


def _warn_once(key: str, message: str) -> None:
    log_once(log, logging.WARNING, f"config:warn:{key}", message)


def _info_once(tag: str, message: str) -> None:
    log_once(log, logging.INFO, f"config:info:{tag}", message)


# -- the cached process config --------------------------------------------------------------------

_config: DatahubConfig | None = None
_config_lock = threading.Lock()


def load_config() -> DatahubConfig:
    """Read and parse the section now (no cache). Never raises."""
    try:
        raw = read_raw_section()
    except Exception as exc:
        _warn_once("<section>", f"[{SECTION}] could not be read ({exc}); using defaults")
        raw = {}
    config = parse_config(raw)
    apply_log_level(config)
    if config.enabled:
        _warn_if_official_plugin_active()
    return config


_LOGGER_NAME: Final = "datahub_airflow_listener"


def apply_log_level(config: DatahubConfig) -> None:
    """``[datahub] log_level``: the level of this package's loggers (unset: Airflow's)."""
    if config.log_level:
        logging.getLogger(_LOGGER_NAME).setLevel(config.log_level)


def get_config() -> DatahubConfig:
    """The process's config, built on first use and then cached."""
    global _config  # noqa: PLW0603 -- one config per process, by design
    config = _config
    if config is None:
        with _config_lock:
            config = _config
            if config is None:
                config = _config = load_config()
    return config


def reset_config(config: DatahubConfig | None = None) -> None:
    """Drop the cached config (the next :func:`get_config` re-reads it), or pin ``config``."""
    global _config  # noqa: PLW0603 -- one config per process, by design
    with _config_lock:
        _config = config


def kill_switch_engaged(config: DatahubConfig) -> bool:
    """True if emission is switched off right now (no restart needed). One env lookup + one stat."""
    flag = os.environ.get(OFFICIAL_KILL_SWITCH_ENV)
    if flag is not None and flag.strip().lower() in _TRUE:
        return True
    try:
        os.stat(config.kill_switch_file)
    except OSError:
        return False
    return True


OFFICIAL_DISTRIBUTION: Final = "acryl-datahub-airflow-plugin"


def official_plugin_version() -> str | None:
    """The version of the official plugin's distribution if it is installed, else None.

    Its distribution is what counts, not the import name: this package provides
    ``datahub_airflow_plugin`` too.
    """
    from importlib import metadata

    try:
        return metadata.version(OFFICIAL_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    except Exception:  # a broken metadata directory: assume it is not there
        return None


def _warn_if_official_plugin_active() -> None:
    """Warn once when the official DataHub plugin would emit too (same [datahub] section)."""
    version = official_plugin_version()
    if version is None:
        return
    flag = os.environ.get(OFFICIAL_KILL_SWITCH_ENV, "").strip().lower()
    if flag in _TRUE:
        return
    _warn_once(
        "official-plugin",
        f"the official DataHub Airflow plugin ({OFFICIAL_DISTRIBUTION} {version}) is installed "
        "and enabled too; both will emit runs of the same DAGs (task runs to the same urns). "
        f"Uninstall {OFFICIAL_DISTRIBUTION} to use only this plugin.",
    )
