"""One run of a job defined outside Airflow: a nightly export that reads a table, writes a file."""

import os
import time

from datahub_airflow_listener.sdk import (
    DataFlow,
    DatahubRestEmitter,
    DataJob,
    DataProcessInstance,
    DatasetUrn,
    InstanceRunResult,
)

emitter = DatahubRestEmitter(gms_server=os.environ["DATAHUB_GMS_URL"])
flow = DataFlow(orchestrator="cron", id="exports", env="PROD")
job = DataJob(
    id="export_customers",
    flow_urn=flow.urn,
    inlets=[DatasetUrn.create_from_ids("postgres", "crm.public.customers", "PROD")],
    outlets=[DatasetUrn.create_from_ids("s3", "exports/customers.parquet", "PROD")],
)
run = DataProcessInstance.from_datajob(
    job, id="export_customers-2026-11-30", clone_inlets=True, clone_outlets=True
)
run.properties = {"host": "batch-7", "rows": "0"}

began = int(time.time() * 1000)
run.emit_process_start(emitter, began, attempt=1)
run.emit_process_end(
    emitter, began + 42_000, InstanceRunResult.SUCCESS, attempt=1, start_timestamp_millis=began
)
