"""The scheduler's watch of the metadata database: tries as they start and end, runs that end
without a hook.

Airflow fires a try's hooks in its task process, which on Airflow 3 cannot read the metadata
database and does not know the times Airflow records for the try (the supervisor stamps the
start before it tells the API server, and a failure's end when the process has exited). Some
tries get no hook at all (ended in the triggerer, killed, timed out with their run). So the
scheduler transcribes every try from the database, every ``reconcile_interval_sec``:

* the tries of running DAG runs whose rows changed since the last look (``updated_at``, with a
  margin for transactions that commit late): STARTED when a try starts, COMPLETE when it ends,
  at Airflow's times (:func:`..domain.tries.plan_try`);
* runs that ended without this process recording their end (Airflow 2 fires no hook when a run
  is marked in the UI or the REST API; a run ended while no scheduler ran): closed like the end
  hook closes them. A scheduler that starts looks back to the previous scheduler's last
  heartbeat.

With several schedulers (HA), only the live one with the lowest job id watches; each still
acts on its own hooks. A read is one private, read-only session (:mod:`.metadb`), never the
scheduler's; a failing read costs one log line per streak and the next look retries.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from datahub_airflow_listener.adapter import metadb
from datahub_airflow_listener.adapter.logs import one_line

if TYPE_CHECKING:
    from datahub_airflow_listener.adapter.recorder import RunRecorder

log = logging.getLogger(__name__)

__all__ = ["Watcher"]

_LOOKBACK_SEC: Final = 7 * 24 * 3600.0  # runs marked while no scheduler ran, at most
_MARGIN_MIN_SEC: Final = 30.0


class Watcher:
    """One thread per scheduler process (see module docstring)."""

    def __init__(self, recorder: RunRecorder, interval_sec: float) -> None:
        self._recorder = recorder
        self._interval = interval_sec
        self._margin = max(_MARGIN_MIN_SEC, 2 * interval_sec)
        self._since: datetime | None = None
        self._ended_since: datetime | None = None
        self._thread: threading.Thread | None = None
        self._job: Any = None
        self._failures = 0

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def interval(self) -> float:
        return self._interval

    def bind(self, job: Any) -> None:
        """Watch on behalf of this scheduler job (its id decides who leads with HA)."""
        self._job = job

    def start(self, job: Any) -> None:
        """Watch in a thread of this (scheduler) process."""
        self.bind(job)
        self._thread = threading.Thread(
            target=self._run, name="datahub-listener-watch", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        if _job_type(self._job) != "SchedulerJob":
            return  # a triggerer, a task's job...: nothing to watch there
        while True:
            self.step()
            time.sleep(self._interval)

    def step(self) -> None:
        """One look; a failing read costs one log line per streak of failures."""
        try:
            self.look()
            self._failures = 0
        except Exception as exc:
            self._failures += 1
            if self._failures == 1:
                log.warning(
                    "datahub-airflow-listener: could not read task tries from the metadata "
                    "database (retrying every %.0f s): %s",
                    self._interval,
                    one_line(exc),
                )

    def look(self) -> tuple[int, int]:
        """One look at the database; (tries read, runs closed)."""
        if self._job is not None and not metadb.leads_schedulers(
            self._job, stale_sec=max(60.0, 4 * self._interval)
        ):
            return 0, 0
        if self._ended_since is None:
            self._ended_since = (
                metadb.restart_window_start(
                    self._job, margin_sec=self._margin, max_age_sec=_LOOKBACK_SEC
                )
                if self._job is not None
                else datetime.now(UTC) - timedelta(seconds=self._margin)
            )
        began = datetime.now(UTC)
        activity = metadb.read_activity(self._since, ended_since=self._ended_since)
        for dag_run, rows in activity.running:
            self._recorder.dag_run_seen(dag_run)
            self._recorder.transcribe_running(dag_run, rows)
        closed = 0
        for dag_id, run_id, end in activity.ended:
            if self._recorder.run_closed(dag_id, run_id, end):
                continue
            if metadb.read_dag_run(dag_id, run_id, self._recorder.dag_run_ended):
                closed += 1
        self._since = self._ended_since = began - timedelta(seconds=self._margin)
        return activity.tries, closed


def _job_type(job: Any, wait_sec: float = 10.0) -> str | None:
    """The job's type once its runner has set it (read without touching the ORM instance)."""
    deadline = time.monotonic() + wait_sec
    while (job_type := vars(job).get("job_type")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return job_type
