"""What the command line needs from Airflow: the config, the connections, the outbox's senders.

Everything here reads the ``[datahub]`` section and the connections through the same functions
the listener uses (:func:`.config.load_config`, :func:`.runtime.resolve_sink`,
:class:`.runtime.Runtime`), so a command sees exactly what a task process would see. Imported
only by the CLI commands that need it (it imports Airflow's configuration).

* :func:`load_settings` -- the config, plus the warnings reading it produced;
* :func:`local_store_dir`, :func:`rest_config_for` -- where ``runs``/``export``/``cleanup`` read;
* :func:`run_check` -- ``check``: config, kill switch, outbox, every connection and its server;
* :func:`flush_outbox` -- ``flush``: deliver what the shared outbox holds, with progress;
* :func:`set_kill_switch` -- ``enable`` / ``disable``;
* :func:`parse_sample_dags` / :class:`SamplePolicy` -- the ``sample_dags`` key (see README).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from datahub_airflow_listener.adapter.config import (
    OFFICIAL_KILL_SWITCH_ENV,
    DatahubConfig,
    SamplePolicy,
    kill_switch_engaged,
    load_config,
    parse_sample_dags,
    read_raw_section,
)
from datahub_airflow_listener.adapter.runtime import (
    OUTBOX_FILENAME,
    Runtime,
    local_sink,
    resolve_sink,
    sink_name,
)

log = logging.getLogger(__name__)

__all__ = [
    "CheckLine",
    "FlushSummary",
    "OperateError",
    "SamplePolicy",
    "flush_outbox",
    "load_settings",
    "local_store_dir",
    "parse_sample_dags",
    "rest_config_for",
    "run_check",
    "set_kill_switch",
]

SAMPLE_KEY: Final = "sample_dags"
_PACKAGE_LOGGER: Final = "datahub_airflow_listener"


class OperateError(Exception):
    """A problem the user has to fix (printed as one line by the CLI)."""


# -- log capture ---------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def only(self, prefix: str) -> _Capture:
        """The records of loggers whose name starts with ``prefix``."""
        view = _Capture()
        view.records = [r for r in self.records if r.name.startswith(prefix)]
        return view

    def messages(self, level: int = logging.WARNING) -> list[str]:
        """One line per record: the message, and the exception's own first line if any."""
        out = []
        for record in self.records:
            if record.levelno >= level:
                text = record.getMessage().removeprefix("datahub-airflow-listener: ")
                exc = record.exc_info[1] if record.exc_info else None
                if exc is not None:
                    cause = str(exc).strip().splitlines()
                    text += f" ({type(exc).__name__}: {cause[0] if cause else ''})"
                out.append(text)
        return out


# Airflow logs a failing secrets backend with a traceback and goes on to the next one; the
# commands show that as one line instead.
_AIRFLOW_CONNECTION_LOGGER: Final = "airflow.models.connection"
# ... and warns on every read of a connection whose type has a '-' (RFC 3986 scheme rules):
# datahub-rest is the documented type, so that warning says nothing about the setup.
_AIRFLOW_SCHEME_NOISE: Final = "shall not contain '_'"


@contextlib.contextmanager
def _captured(*names: str) -> Iterator[_Capture]:
    """Collect what these loggers (default: the package's) log meanwhile instead of printing
    it: the messages explain what went wrong, and the command shows them its own way."""
    handler = _Capture()
    saved = []
    for name in names or (_PACKAGE_LOGGER,):
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.propagate = False
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


# -- config --------------------------------------------------------------------------------------


def load_settings() -> tuple[DatahubConfig, list[str]]:
    """The ``[datahub]`` config as a task process reads it, and its warnings (bad values...)."""
    with _captured() as capture:
        config = load_config()
    return config, capture.messages()


def local_store_dir(config: DatahubConfig) -> Path:
    """The embedded local store's directory (the ``local`` sink of the runtime)."""
    _, settings = local_sink(config)
    return Path(settings["directory"])


def rest_config_for(config: DatahubConfig, conn_id: str | None = None) -> Any:
    """The RestConfig of ``conn_id`` (default: the first configured datahub-rest connection).

    Resolved as the listener resolves it; OperateError names the problem otherwise.
    """
    from datahub_airflow_listener.transport.rest import RestConfig

    candidates = [conn_id] if conn_id else list(config.conn_ids)
    problems = []
    for candidate in candidates:
        with _captured(_PACKAGE_LOGGER, _AIRFLOW_CONNECTION_LOGGER) as capture:
            try:
                kind, settings = resolve_sink(config, candidate)
            except Exception as exc:
                raise OperateError(
                    f"cannot read connection {candidate!r}: {type(exc).__name__}: {exc}"
                ) from None
        if kind == "datahub-rest":
            try:
                return RestConfig.from_dict(settings)
            except ValueError as exc:
                raise OperateError(f"connection {candidate!r}: {exc}") from None
        why = "; ".join(capture.messages(logging.INFO)) or f"it is a {kind} connection"
        problems.append(f"{candidate!r} ({why})")
    raise OperateError(
        "no DataHub GMS connection to read from: "
        + ", ".join(problems)
        + "; give --conn CONN_ID of a datahub-rest connection, or use --source local"
    )


# -- check ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CheckLine:
    """One line of ``check``: level is ok, info, warn or error."""

    level: str
    subject: str
    message: str


def _outbox_lines(config: DatahubConfig) -> list[CheckLine]:
    from datahub_airflow_listener.transport.outbox import Outbox

    path = Path(config.outbox_path) / OUTBOX_FILENAME
    if not path.exists():
        return [CheckLine(level="info", subject="outbox", message=f"{path} (empty: not created)")]
    outbox = Outbox(path)
    try:
        lines = []
        configured = {sink_name(c) for c in config.conn_ids}
        sinks = outbox.sinks()
        if not sinks:
            lines.append(CheckLine(level="ok", subject="outbox", message=f"{path}: empty"))
        for sink in sinks:
            counts = outbox.counts(sink)
            text = (
                f"{sink}: {counts.waiting} waiting, {counts.delivered} delivered, "
                f"{counts.dead} refused for good, {counts.dropped} dropped (outbox full)"
            )
            level = "ok"
            if counts.dead or counts.dropped:
                level = "warn"
            if counts.waiting and sink not in configured:
                level = "warn"
                text += "; no longer configured, so nothing will send these"
            elif counts.waiting:
                text += " (`datahub-airflow-listener flush` sends them now)"
            lines.append(CheckLine(level=level, subject="outbox", message=text))
        return lines
    finally:
        outbox.close()


def _connection_lines(config: DatahubConfig, conn_id: str) -> list[CheckLine]:
    from datahub_airflow_listener.adapter.hooks import redacted

    subject = f"connection {conn_id}"
    with _captured(_PACKAGE_LOGGER, _AIRFLOW_CONNECTION_LOGGER) as capture:
        try:
            kind, settings = resolve_sink(config, conn_id)
        except Exception as exc:
            return [
                CheckLine(
                    level="error",
                    subject=subject,
                    message=f"cannot be read: {type(exc).__name__}: {exc}",
                )
            ]
    # A secrets backend that failed (Airflow went on to the next one): one line each.
    lines = [
        CheckLine(level="warn", subject=subject, message=m)
        for m in capture.only(_AIRFLOW_CONNECTION_LOGGER).messages()
        if _AIRFLOW_SCHEME_NOISE not in m
    ]
    if kind == "local":
        ours = capture.only(_PACKAGE_LOGGER)
        why = "; ".join(ours.messages(logging.INFO)) or "events go to the local store"
        level = "error" if config.conn_id_explicit or ours.messages() else "info"
        return [*lines, CheckLine(level=level, subject=subject, message=why)]
    safe = redacted(settings)
    if kind == "datahub-rest":
        token = "set" if settings.get("token") else "not set"
        described = f"datahub-rest {safe.get('server')}, token {token}"
        lines.append(CheckLine(level="info", subject=subject, message=described))
        ok, message = _test_rest(settings)
        lines.append(CheckLine(level="ok" if ok else "error", subject=subject, message=message))
        return lines
    if kind == "datahub-file":
        from datahub_airflow_listener.adapter.hooks import DatahubFileHook

        ok, message = DatahubFileHook(datahub_file_conn_id=conn_id).test_connection()
        return [*lines, CheckLine(level="ok" if ok else "error", subject=subject, message=message)]
    return [*lines, CheckLine(level="info", subject=subject, message=f"{kind} {safe}")]


def _test_rest(settings: Mapping[str, Any]) -> tuple[bool, str]:
    from datahub_airflow_listener.transport import create_transport
    from datahub_airflow_listener.transport.errors import redact

    token = settings.get("token")
    transport: Any = None
    try:
        transport = create_transport("datahub-rest", settings)
        ok, message = transport.test_connection()
    except Exception as exc:
        ok, message = False, f"{type(exc).__name__}: {exc}"
    finally:
        if transport is not None:
            transport.close()
    return bool(ok), redact(str(message), [token])


def run_check(config: DatahubConfig, warnings: list[str]) -> list[CheckLine]:
    """Every check ``check`` prints, in order."""
    from datahub_airflow_listener.adapter import compat

    lines = [
        CheckLine(
            level="info",
            subject="airflow",
            message=(
                f"{compat.airflow_version() or '?'}, "
                f"AIRFLOW_HOME={os.environ.get('AIRFLOW_HOME') or '(default)'}"
            ),
        ),
        CheckLine(
            level="info",
            subject="config",
            message=(
                f"cluster={config.cluster} platform_instance={config.platform_instance or '-'} "
                f"conn_id={','.join(config.conn_ids)}"
                + ("" if config.conn_id_explicit else " (default)")
            ),
        ),
    ]
    lines.extend(CheckLine(level="warn", subject="config", message=w) for w in warnings)
    if not config.enabled:
        lines.append(
            CheckLine(
                level="warn",
                subject="config",
                message="[datahub] enabled = false: nothing is recorded (read at process start)",
            )
        )
    if not config.capture_executions:
        lines.append(
            CheckLine(
                level="warn",
                subject="config",
                message="[datahub] capture_executions = false: no runs are recorded",
            )
        )
    raw_sample = _raw_value(SAMPLE_KEY)
    if raw_sample:
        try:
            policy = parse_sample_dags(raw_sample)
        except ValueError as exc:
            lines.append(CheckLine(level="error", subject="config", message=f"{SAMPLE_KEY}: {exc}"))
        else:
            lines.append(CheckLine(level="info", subject="sampling", message=policy.describe()))
    if kill_switch_engaged(config):
        reason = (
            f"{config.kill_switch_file} exists"
            if os.path.exists(config.kill_switch_file)
            else f"{OFFICIAL_KILL_SWITCH_ENV} is set"
        )
        lines.append(
            CheckLine(
                level="warn",
                subject="kill switch",
                message=f"ON: nothing is emitted ({reason}); `datahub-airflow-listener enable`",
            )
        )
    else:
        lines.append(
            CheckLine(
                level="ok",
                subject="kill switch",
                message=(
                    f"off (`datahub-airflow-listener disable` creates {config.kill_switch_file})"
                ),
            )
        )
    lines.extend(_outbox_lines(config))
    store = local_store_dir(config) / "local.sqlite"
    if store.exists():
        lines.append(CheckLine(level="info", subject="local store", message=str(store)))
    for conn_id in config.conn_ids:
        lines.extend(_connection_lines(config, conn_id))
    return lines


def _raw_value(key: str) -> str | None:
    try:
        value = read_raw_section().get(key)
    except Exception:
        return None
    return value.strip() if value and value.strip() else None


# -- flush ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FlushSummary:
    """What ``flush`` did: this run's delivered/failed counts and what still waits."""

    outbox: str
    delivered: int = 0
    failed: int = 0
    waiting: int = 0
    waiting_unconfigured: int = 0
    timed_out: bool = False
    elapsed_sec: float = 0.0
    problems: tuple[str, ...] = ()


Progress = Callable[[int, int], None]


def flush_outbox(
    config: DatahubConfig, *, timeout: float, progress: Progress | None = None
) -> FlushSummary:
    """Deliver what the shared outbox holds for the configured connections, within ``timeout``.

    The senders are built as a task process builds them (:class:`.runtime.Runtime`), so rows
    any process left behind are shipped in order, taking the sink's lease like any sender
    (a scheduler shipping at the same time simply shares the work). ``progress(done, total)``
    is called a few times a second.
    """
    from datahub_airflow_listener.domain.runs import RunMapper
    from datahub_airflow_listener.transport.outbox import Outbox

    path = Path(config.outbox_path) / OUTBOX_FILENAME
    if not path.exists():
        return FlushSummary(outbox=str(path))
    watcher = Outbox(path)
    configured = [sink_name(c) for c in config.conn_ids]
    try:
        known = watcher.sinks()
        unconfigured = sum(watcher.waiting(s) for s in known if s not in configured)
        total = sum(watcher.waiting(s) for s in configured if s in known)
        if total == 0:
            return FlushSummary(outbox=str(path), waiting_unconfigured=unconfigured)
        runtime = Runtime(
            config=config,
            mapper=RunMapper(cluster=config.cluster, platform_instance=config.platform_instance),
            base_url=None,
        )
        result: dict[str, Any] = {}
        with _captured() as capture:
            dispatcher: Any = runtime.dispatcher()

            def work() -> None:
                try:
                    result["report"] = dispatcher.flush(timeout)
                except Exception as exc:  # flush is documented not to raise; belt and braces
                    result["error"] = exc

            thread = threading.Thread(target=work, name="datahub-cli-flush", daemon=True)
            thread.start()
            while thread.is_alive():
                if progress is not None:
                    left = sum(watcher.waiting(s) for s in configured)
                    progress(max(total - left, 0), total)
                thread.join(0.1)
            with contextlib.suppress(Exception):
                dispatcher.close(0.0)
        report = result.get("report")
        if progress is not None:
            left = sum(watcher.waiting(s) for s in configured)
            progress(max(total - left, 0), total)
        problems = tuple(dict.fromkeys(capture.messages()))
        if "error" in result:
            problems += (f"flush failed: {result['error']}",)
        return FlushSummary(
            outbox=str(path),
            delivered=getattr(report, "delivered", 0),
            failed=getattr(report, "failed", 0),
            waiting=sum(watcher.waiting(s) for s in configured),
            waiting_unconfigured=unconfigured,
            timed_out=bool(getattr(report, "timed_out", False)),
            elapsed_sec=float(getattr(report, "elapsed_sec", 0.0)),
            problems=problems,
        )
    finally:
        watcher.close()


# -- kill switch ---------------------------------------------------------------------------------


def set_kill_switch(config: DatahubConfig, *, disabled: bool) -> str:
    """Create (``disabled``) or remove the kill-switch file; return what changed, one line.

    Every process checks the file at each hook: no restart is needed either way.
    """
    path = Path(config.kill_switch_file)
    env_on = os.environ.get(OFFICIAL_KILL_SWITCH_ENV, "").strip().lower() in {
        "true",
        "t",
        "1",
        "yes",
        "y",
        "on",
    }
    try:
        if disabled:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            existed = path.exists()
            stamp = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            path.write_text(
                f"DataHub emission disabled by `datahub-airflow-listener disable` at {stamp} "
                f"(user {os.environ.get('USER', '?')}). Remove this file or run "
                "`datahub-airflow-listener enable` to resume.\n"
            )
            return (
                f"disabled: {path} {'already existed' if existed else 'created'}; every Airflow "
                "process stops emitting at its next event (no restart needed)"
            )
        existed = path.exists()
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise OperateError(f"cannot {'create' if disabled else 'remove'} {path}: {exc}") from None
    message = (
        f"enabled: {path} removed; emission resumes at the next event"
        if existed
        else f"enabled: no kill-switch file at {path} (emission was not disabled by it)"
    )
    if env_on:
        message += (
            f"; BUT {OFFICIAL_KILL_SWITCH_ENV} is set in this environment and still "
            "disables the plugin where it is set"
        )
    return message
