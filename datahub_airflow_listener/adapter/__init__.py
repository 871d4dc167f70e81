"""The Airflow adapter: the only part of the package that imports Airflow.

``plugin`` registers the listener; ``listener`` holds the hook implementations (never raise,
register everywhere) and hands each call to ``recorder`` (guard -> extract -> map -> submit);
``config`` reads the ``[datahub]`` section; ``extract`` turns Airflow objects into plain facts;
``hooks`` and ``provider`` define the ``datahub-rest`` / ``datahub-file`` connection types;
``runtime`` wires config, mapper, sinks and dispatcher once per process; ``compat`` holds every
difference between Airflow 2.10/2.11 and 3.x.

Importing this package (or ``plugin``) must stay cheap: nothing here imports requests, sqlite3 or
the transport until a hook actually runs.
"""
