"""Real Airflow for integration tests: an isolated AIRFLOW_HOME, ``dags test`` and a deployment.

Nothing here imports Airflow: every Airflow command runs as a subprocess of the interpreter's
own venv (``<venv>/bin/airflow``), so one harness serves Airflow 3.x and 2.10/2.11 and the
test process never reads Airflow's configuration.

* :class:`AirflowEnv` -- one AIRFLOW_HOME under a temp dir: SQLite, no examples, its own dags
  folder. ``migrate()`` once, then ``clone()`` copies the migrated database so several
  ``airflow dags test`` runs can go in parallel without sharing a SQLite file.
* :meth:`AirflowEnv.dags_test` -- the fast path: the whole DAG run in one process.
* :class:`Deployment` -- the real path, LocalExecutor on SQLite with each component started
  by us (pids kept, SIGTERM then SIGKILL of each component's process group, always):
  Airflow 3: ``api-server`` + ``dag-processor`` + ``scheduler``; Airflow 2: ``webserver``
  (only for its REST API) + ``scheduler`` (which parses DAGs itself).
* :func:`datahub_env` -- the plugin's configuration as environment variables
  (``AIRFLOW__DATAHUB__*`` and ``AIRFLOW_CONN_*`` connections of type ``datahub-file`` /
  ``datahub-rest``).

Why the odd settings: every Airflow 3 process needs the
same JWT secret and the execution API URL; the API port must not be the log server's; Airflow
2 refuses LocalExecutor on SQLite unless ``_AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK``
is set (Airflow's own test suite uses that switch), and its SequentialExecutor would block the
scheduler for the length of a task, which the kill and timeout scenarios cannot have.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import attrs

log = logging.getLogger(__name__)

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS: Final = REPO_ROOT / "dags_examples"
SCENARIO_DAGS: Final = Path(__file__).resolve().parent / "dags"
LIFECYCLE_DAGS: Final = Path(__file__).resolve().parent / "dags_lifecycle"
LINEAGE_DAGS: Final = Path(__file__).resolve().parent / "dags_lineage"

TERMINAL_RUN_STATES: Final = frozenset({"success", "failed"})
TERMINAL_TI_STATES: Final = frozenset(
    {"success", "failed", "skipped", "upstream_failed", "removed"}
)
JWT_SECRET: Final = "datahub-listener-integration-tests-jwt-secret"
FERNET_KEY: Final = base64.urlsafe_b64encode(b"datahub-airflow-listener-tests!!").decode()


class HarnessError(RuntimeError):
    """Airflow did not do what the harness waited for; the message names the log to read."""


def airflow_version() -> tuple[int, int]:
    """(major, minor) of the apache-airflow installed next to this interpreter."""
    major, minor, *_ = metadata.version("apache-airflow").split(".")
    return int(major), int(minor)


def airflow_bin() -> Path:
    """The ``airflow`` console script of this interpreter's venv."""
    path = Path(sys.executable).parent / "airflow"
    if not path.exists():
        raise HarnessError(f"no airflow executable next to {sys.executable}")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the usual small race is acceptable in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def datahub_env(
    *,
    file_path: Path | None = None,
    gms_url: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment that points the plugin at a file and/or a GMS (no connection: local store).

    The connections are ``AIRFLOW_CONN_*`` JSON variables (understood by Airflow 2.3+ and 3),
    so no ``airflow connections add`` round trip is needed.
    """
    env: dict[str, str] = {"AIRFLOW__DATAHUB__ENABLED": "True"}
    conn_ids = []
    if file_path is not None:
        env["AIRFLOW_CONN_DATAHUB_FILE_IT"] = json.dumps(
            {"conn_type": "datahub-file", "host": str(file_path)}
        )
        conn_ids.append("datahub_file_it")
    if gms_url is not None:
        env["AIRFLOW_CONN_DATAHUB_REST_IT"] = json.dumps(
            {"conn_type": "datahub-rest", "host": gms_url}
        )
        conn_ids.append("datahub_rest_it")
    if conn_ids:
        env["AIRFLOW__DATAHUB__CONN_ID"] = ",".join(conn_ids)
    env.update(extra or {})
    return env


@attrs.frozen(kw_only=True)
class CommandResult:
    """One finished Airflow command: exit code, wall time and where its output went."""

    args: tuple[str, ...]
    returncode: int
    seconds: float
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check(self) -> CommandResult:
        if self.returncode != 0:
            raise HarnessError(
                f"`airflow {' '.join(self.args)}` exited {self.returncode}; "
                f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
            )
        return self


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


class AirflowEnv:
    """An isolated AIRFLOW_HOME (SQLite, no examples) whose commands run as subprocesses."""

    def __init__(
        self,
        home: Path,
        dags_folder: Path = EXAMPLE_DAGS,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = Path(home)
        self.dags_folder = Path(dags_folder)
        self.extra_env = dict(env or {})
        self.version = airflow_version()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "cmd-logs").mkdir(exist_ok=True)
        self._n = 0

    @property
    def db_path(self) -> Path:
        return self.home / "airflow.db"

    @property
    def db_url(self) -> str:
        """The metadata DB's SQLAlchemy URL (SQLite under the home unless configured)."""
        configured = self.extra_env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        return configured or f"sqlite:///{self.db_path}"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The full environment of an Airflow process of this home."""
        env = {
            k: v
            for k, v in os.environ.items()
            # a developer's own Airflow or plugin settings must not leak into the tests
            if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
            and k != "AIRFLOW_HOME"
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # one key for every process (a deferred task's trigger is encrypted by the
                # task and decrypted by the triggerer); each would otherwise generate its own
                "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY,
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                # the scenario DAGs read these; harmless for the others
                "SCENARIO_STATE_DIR": str(self.home / "scenario-state"),
                "ETL_ORDERS_DATA_DIR": str(self.home / "etl-data"),
                "PYTHONWARNINGS": "ignore",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.version[0] < 3:
            env["_AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK"] = "1"
        else:
            env["AIRFLOW__API_AUTH__JWT_SECRET"] = JWT_SECRET
        env.update(self.extra_env)
        env.update(extra or {})
        return env

    def _log_path(self, name: str) -> Path:
        self._n += 1
        safe = re.sub(r"[^\w.-]+", "_", name)[:60]
        return self.home / "cmd-logs" / f"{self._n:03d}-{safe}.log"

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> CommandResult:
        """Run ``airflow ARGS`` to completion; output goes to a log file under the home."""
        log_path = self._log_path(" ".join(args))
        start = time.monotonic()
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [str(airflow_bin()), *args],
                env=self.env(env),
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop_group(proc, grace=5)
                raise HarnessError(
                    f"`airflow {' '.join(args)}` still running after {timeout}s; "
                    f"see {log_path}:\n{_tail(log_path)}"
                ) from None
        return CommandResult(
            args=tuple(args),
            returncode=returncode,
            seconds=time.monotonic() - start,
            log_path=log_path,
        )

    def migrate(self, timeout: float = 300) -> CommandResult:
        return self.run("db", "migrate", timeout=timeout).check()

    def clone(
        self,
        home: Path,
        dags_folder: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> AirflowEnv:
        """A new home whose database is a copy of this (migrated) one: no second migrate."""
        other = AirflowEnv(
            home,
            self.dags_folder if dags_folder is None else dags_folder,
            env={**self.extra_env, **(env or {})},
        )
        shutil.copyfile(self.db_path, other.db_path)
        return other

    def dags_test(
        self,
        dag_id: str,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 240,
    ) -> CommandResult:
        """``airflow dags test DAG_ID``: one process runs the whole DAG run (no scheduler)."""
        return self.run("dags", "test", dag_id, env=env, timeout=timeout)

    def deployment(self, **kwargs: Any) -> Deployment:
        return Deployment(self, **kwargs)


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group we created for ``proc``; SIGKILL it after ``grace`` seconds.

    A second SIGTERM halfway: Airflow's handler exits with ``sys.exit``, and when the signal
    lands inside a garbage-collector callback that SystemExit is swallowed ("Exception ignored
    in ... _collection_gced"), leaving the scheduler running; the second one usually lands.
    """
    for _ in range(2):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace / 2)
    if proc.poll() is None:
        log.warning("pid %s ignored SIGTERM for %ss; sending SIGKILL", proc.pid, grace)
    # children (task supervisors, gunicorn workers) may outlive the leader: kill what is left
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


_WEBSERVER_CONFIG: Final = """\
# Written by tests/integration/airflow_env.py: a throwaway test webserver, anonymous = Admin.
from flask_appbuilder.const import AUTH_DB

AUTH_TYPE = AUTH_DB
AUTH_ROLE_PUBLIC = "Admin"
WTF_CSRF_ENABLED = False
"""


@attrs.define
class _Component:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path


class Deployment:
    """LocalExecutor Airflow with a REST API, as a context manager that always cleans up.

    ``with env.deployment(env=datahub_env(...)) as dep: run_id = dep.trigger("etl_orders")``.
    """

    def __init__(
        self,
        airflow_env: AirflowEnv,
        *,
        env: Mapping[str, str] | None = None,
        parallelism: int = 4,
        startup_timeout: float = 120,
        stop_grace: float = 20,
        triggerer: bool = False,
    ) -> None:
        self.af = airflow_env
        self.triggerer = triggerer
        self.version = airflow_env.version
        self.api_port = free_port()
        self.log_server_port = free_port()
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.api_prefix = "/api/v2" if self.version[0] >= 3 else "/api/v1"
        self.components: list[_Component] = []
        settings = {
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        }
        if self.version[0] >= 3:
            settings |= {
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            }
        else:
            settings |= {
                "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(self.api_port),
                "AIRFLOW__WEBSERVER__BASE_URL": self.base_url,
                "AIRFLOW__WEBSERVER__WORKERS": "1",
                "AIRFLOW__WEBSERVER__SECRET_KEY": JWT_SECRET,
                # token-less REST: no auth backend check, and (webserver_config.py, written
                # in start()) anonymous users get the Admin role
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.default",
                "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "30",
            }
        self.env = {**settings, **(env or {})}

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        log_path = self.af.home / f"{name}.log"
        out = log_path.open("ab")
        proc = subprocess.Popen(
            [str(airflow_bin()), *args],
            env=self.af.env({**self.env, **(env or {})}),
            cwd=self.af.home,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() reaches its children
        )
        out.close()
        self.components.append(_Component(name, proc, log_path))
        log.info("started %s (pid %s), log %s", name, proc.pid, log_path)

    def start(self) -> None:
        if self.version[0] >= 3:
            self._spawn(
                "api-server", "api-server", "--port", str(self.api_port), "--host", "127.0.0.1"
            )
            self._spawn("dag-processor", "dag-processor")
            self._spawn("scheduler", "scheduler")
            if self.triggerer:
                self._spawn("triggerer", "triggerer")
            self._wait_healthy("/api/v2/monitor/health")
        else:
            (self.af.home / "webserver_config.py").write_text(_WEBSERVER_CONFIG)
            self._spawn("scheduler", "scheduler")
            if self.triggerer:
                self._spawn("triggerer", "triggerer")
            self._spawn(
                "webserver", "webserver", "--port", str(self.api_port), "--hostname", "127.0.0.1"
            )
            self._wait_healthy("/health")

    def stop_scheduler(self) -> None:
        """Stop the scheduler alone (SIGTERM: it shuts down as in a deploy)."""
        for comp in [c for c in self.components if c.name == "scheduler"]:
            _stop_group(comp.proc, self.stop_grace)
            self.components.remove(comp)

    def start_scheduler(self) -> None:
        self._spawn("scheduler", "scheduler")

    def add_component(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        """Start one more Airflow process with its own settings (a Celery worker standing for
        another machine: its own outbox path)."""
        self._spawn(name, *args, env=env)

    def stop_component(self, name: str) -> None:
        """Stop one process (SIGTERM, then SIGKILL after the grace period), as a scale-in."""
        for comp in [c for c in self.components if c.name == name]:
            _stop_group(comp.proc, self.stop_grace)
            self.components.remove(comp)

    def stop(self) -> None:
        """Stop the scheduler first (no new work), then the rest; idempotent."""
        for comp in sorted(self.components, key=lambda c: c.name != "scheduler"):
            _stop_group(comp.proc, self.stop_grace)
        self.components.clear()

    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self.components}

    def logs(self) -> dict[str, Path]:
        return {c.name: c.log_path for c in self.components}

    def _check_alive(self) -> None:
        for comp in self.components:
            if comp.proc.poll() is not None:
                raise HarnessError(
                    f"{comp.name} exited with {comp.proc.returncode}; "
                    f"last lines of {comp.log_path}:\n{_tail(comp.log_path)}"
                )

    def _wait_healthy(self, path: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, HarnessError):
                status, _ = self._request("GET", path, timeout=2)
                if status == 200:
                    return
            time.sleep(0.5)
        raise HarnessError(f"API not healthy after {self.startup_timeout}s: {self.logs()}")

    # -- REST -------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, text

    def api(self, method: str, path: str, body: Any = None, *, ok: Sequence[int] = (200,)) -> Any:
        """One REST call. A 5xx is tried again (up to 5 times, 1 s apart): on SQLite, Airflow's
        API server answers 500 when its write meets another process's lock."""
        for attempt in range(5):
            status, payload = self._request(method, self.api_prefix + path, body)
            if status in ok:
                return payload
            if status < 500 or attempt == 4:
                break
            time.sleep(1)
        raise HarnessError(f"{method} {path} -> {status}: {payload}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the DAG is parsed and serialized (the dag processor is asynchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                status, _ = self._request("GET", f"{self.api_prefix}/dags/{dag_id}")
            except OSError:
                continue
            if status == 200:
                if self.version[0] < 3:
                    # 2.x lists a DAG before its serialized form exists; details needs it
                    with contextlib.suppress(OSError):
                        status, _ = self._request("GET", f"{self.api_prefix}/dags/{dag_id}/details")
                if status == 200:
                    return
            time.sleep(1)
        raise HarnessError(f"DAG {dag_id} not parsed within {timeout}s: {self.logs()}")

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(
        self,
        dag_id: str,
        conf: Mapping[str, Any] | None = None,
        *,
        logical_date: str | None = None,
    ) -> str:
        """Trigger a manual run (waiting for the DAG to be parsed first); returns its run id.
        ``logical_date`` (ISO 8601): the run's logical date (default: none on Airflow 3, now
        on Airflow 2)."""
        self.wait_for_dag(dag_id)
        self.unpause(dag_id)
        body: dict[str, Any] = {"conf": dict(conf or {})}
        if logical_date is not None:
            body["logical_date"] = logical_date
        elif self.version[0] >= 3:
            body["logical_date"] = None
        payload = self.api("POST", f"/dags/{dag_id}/dagRuns", body)
        return str(payload["dag_run_id"])

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Clear every task of a run (the UI's "Clear"): the run goes back to queued/running."""
        quoted = urllib.parse.quote(run_id, safe="")
        self.api("POST", f"/dags/{dag_id}/dagRuns/{quoted}/clear", {"dry_run": False})

    def clear_task(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Clear one task of a run (the UI's "Clear" on a task): its next try runs."""
        body = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [task_id],
            "only_failed": False,
            "reset_dag_runs": True,
        }
        self.api("POST", f"/dags/{dag_id}/clearTaskInstances", body)

    def mark_task(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """Set a task's state through the REST API (the UI's "Mark as success/failed")."""
        quoted = urllib.parse.quote(run_id, safe="")
        body: dict[str, Any] = {"new_state": state}
        if self.version[0] < 3:
            body["dry_run"] = False
        self.api("PATCH", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}", body)

    def mark_run(self, dag_id: str, run_id: str, state: str) -> None:
        """Set a run's state through the REST API (the UI's "Mark as failed/success")."""
        quoted = urllib.parse.quote(run_id, safe="")
        self.api("PATCH", f"/dags/{dag_id}/dagRuns/{quoted}", {"state": state})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG (whoever created it), as the REST API lists them."""
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        quoted = urllib.parse.quote(run_id, safe="")
        state = self.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}")["state"]
        return None if state is None else str(state)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        quoted = urllib.parse.quote(run_id, safe="")
        payload = self.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")
        return list(payload["task_instances"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        """Until the run is success/failed; returns the state (raises on timeout)."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError):  # a busy API server on 2 cores may time out
                state = self.run_state(dag_id, run_id)
            if state in TERMINAL_RUN_STATES:
                return str(state)
            time.sleep(1)
        raise HarnessError(f"{dag_id}/{run_id} still {state} after {timeout}s")

    def wait_for_task(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        predicate: Any,
        timeout: float = 120,
    ) -> dict[str, Any]:
        """Until ``predicate(ti_dict)`` holds for ``task_id`` (unmapped); returns that dict."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                tis = self.task_instances(dag_id, run_id)
            except OSError:
                continue
            for ti in tis:
                if ti["task_id"] == task_id:
                    last = ti
                    if predicate(ti):
                        return ti
            time.sleep(0.5)
        raise HarnessError(f"{dag_id}.{task_id} in {run_id}: condition not met; last {last}")


def combined_dags_folder(dest: Path, *sources: Path) -> Path:
    """Copy the DAG files of several folders into one (a deployment has one dags folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        for path in sorted(Path(src).glob("*.py")):
            shutil.copyfile(path, dest / path.name)
    return dest


@contextlib.contextmanager
def migrated_env(root: Path, dags_folder: Path = EXAMPLE_DAGS) -> Iterator[AirflowEnv]:
    """A migrated home under ``root`` (for scripts; tests use the session fixtures)."""
    env = AirflowEnv(root, dags_folder)
    env.migrate()
    yield env
