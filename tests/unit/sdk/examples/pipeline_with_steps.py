"""A pipeline run (FLOW level) with two step runs (JOB level) linked to it and to each other."""

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
flow = DataFlow(orchestrator="make", id="reporting", env="PROD")
pipeline = DataProcessInstance.from_dataflow(flow, id="reporting-run-118")

began = int(time.time() * 1000)
pipeline.emit_process_start(emitter, began)
steps = []
for offset, name in enumerate(("build", "publish")):
    step = DataProcessInstance.from_datajob(
        DataJob(id=name, flow_urn=flow.urn), id=f"reporting-run-118-{name}"
    )
    step.parent_instance = pipeline.urn
    step.upstream_urns = [s.urn for s in steps]
    at = began + 1_000 + offset * 10_000
    step.emit_process_start(emitter, at)
    step.emit_process_end(emitter, at + 8_000, InstanceRunResult.SUCCESS, start_timestamp_millis=at)
    steps.append(step)
pipeline.emit_process_end(
    emitter, began + 30_000, InstanceRunResult.SUCCESS, start_timestamp_millis=began
)
