"""The Airflow adapter: the only part of the package that imports Airflow.

One line per module:

* ``plugin`` -- the Airflow plugin; registers the listener (entry point ``airflow.plugins``).
* ``provider`` -- provider metadata: the ``datahub-rest`` / ``datahub-file`` connection types.
* ``ui_fields`` -- the connection forms' labels (plain data).
* ``hooks`` -- the connection hooks of those two types, connection -> transport settings;
  also the official plugin's hook names (generic, composite, Kafka: refused clearly).
* ``emitter`` -- what DAG code emits itself, to one connection, through the outbox.
* ``operators`` -- ``DatahubEmitterOperator``: a task that emits the MCPs a DAG built.
* ``listener`` -- the hook implementations Airflow calls; never raise, register everywhere.
* ``recorder`` -- what each hook does: guard, extract facts once, decide, hand over.
* ``watcher`` -- the scheduler's watch of the metadata database (tries, runs ended unhooked).
* ``watch_process`` -- that watch in a process of its own, started by the scheduler.
* ``metadb`` -- reads of the metadata database that never touch Airflow's transaction.
* ``run_links`` -- links between runs: who triggered a run, what it consumed, what a task
  run waited for or follows (read from the metadata database).
* ``extract`` -- plain facts out of Airflow objects (DagRun, TaskInstance, their rows).
* ``lineage`` -- a task's inlets/outlets and asset aliases as dataset urns.
* ``operator_lineage`` -- what an operator reports of its lineage (the OpenLineage provider).
* ``try_lineage`` -- a try's lineage, sent only by the process that ran it.
* ``templates`` -- DataFlow/DataJob templates of a DAG, sent only when they change.
* ``config`` -- the ``[datahub]`` section, read once per process.
* ``runtime`` -- per-process wiring: config, mapper, sinks, sender.
* ``compat`` -- every difference between Airflow 2.10/2.11 and 3.x.
* ``operate`` -- what the command line needs from Airflow (config, connections, senders).
* ``logs`` -- the listener's log lines (one line per problem).

Importing this package (or ``plugin``) must stay cheap: nothing here imports requests, sqlite3 or
the transport until a hook actually runs.
"""
