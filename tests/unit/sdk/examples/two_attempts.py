"""A job whose first attempt fails and whose second succeeds: two tries of one instance."""

import os
import time

from datahub_airflow_listener.sdk import (
    DataFlow,
    DatahubRestEmitter,
    DataJob,
    DataProcessInstance,
    InstanceRunResult,
)

emitter = DatahubRestEmitter(gms_server=os.environ["DATAHUB_GMS_URL"])
job = DataJob(id="load_rates", flow_urn=DataFlow(orchestrator="cron", id="fx", env="PROD").urn)
run = DataProcessInstance.from_datajob(job, id="load_rates-2026-11-30")

first = int(time.time() * 1000)
run.emit_process_start(emitter, first, attempt=1)
run.emit_process_end(
    emitter, first + 3_000, InstanceRunResult.UP_FOR_RETRY, attempt=1, start_timestamp_millis=first
)
second = first + 60_000
run.emit_process_start(emitter, second, attempt=2, emit_template=False)
run.emit_process_end(
    emitter, second + 2_500, InstanceRunResult.SUCCESS, attempt=2, start_timestamp_millis=second
)
