"""OpenLineage (namespace, name) -> the (platform, name) DataHub's own sources give the same
dataset: one row per naming-table entry, shared by the unit tests and the acryl-datahub oracle."""

from __future__ import annotations

# (namespace, OpenLineage name, DataHub platform, DataHub name)
CASES: list[tuple[str, str, str, str]] = [
    # warehouses: the authority is the connection, the name is the source's dotted name
    ("postgres://pg.example.com:5432", "shop.public.orders", "postgres", "shop.public.orders"),
    ("postgresql://pg.example.com:5432", "shop.public.orders", "postgres", "shop.public.orders"),
    ("redshift://cluster.eu-west-1:5439", "dev.public.events", "redshift", "dev.public.events"),
    ("mysql://db.example.com:3306", "shop.orders", "mysql", "shop.orders"),
    ("mariadb://db.example.com:3306", "shop.orders", "mariadb", "shop.orders"),
    ("snowflake://myorg-acct", "ANALYTICS.PUBLIC.Orders", "snowflake", "analytics.public.orders"),
    ("bigquery", "my-project.sales.Orders", "bigquery", "my-project.sales.Orders"),
    ("mssql://sql.example.com:1433", "Sales.dbo.Orders", "mssql", "Sales.dbo.Orders"),
    ("sqlserver://sql.example.com:1433", "Sales.dbo.Orders", "mssql", "Sales.dbo.Orders"),
    ("oracle://ora.example.com:1521", "ORCLPDB1.HR.EMPLOYEES", "oracle", "hr.employees"),
    ("trino://trino.example.com:8080", "hive.web.events", "trino", "hive.web.events"),
    ("presto://presto.example.com:8080", "hive.web.events", "presto", "hive.web.events"),
    ("awsathena://athena.us-east-1.amazonaws.com", "awsdatacatalog.web.t", "athena", "web.t"),
    ("athena://athena.us-east-1.amazonaws.com", "awsdatacatalog.web.t", "athena", "web.t"),
    ("databricks://adb-1.azuredatabricks.net", "main.web.events", "databricks", "main.web.events"),
    ("hive://hive.example.com:10000", "web.events", "hive", "web.events"),
    ("teradata://td.example.com:1025", "sales.orders", "teradata", "sales.orders"),
    ("sqlite", "app.orders", "sqlite", "app.orders"),
    ("sqlite:///var/data/app.db", "orders", "sqlite", "app.orders"),
    # object stores: <bucket or container>/<key>
    ("s3://my-bucket", "raw/events/part-0.parquet", "s3", "my-bucket/raw/events/part-0.parquet"),
    ("s3a://my-bucket", "/raw/events/", "s3", "my-bucket/raw/events"),
    ("s3n://my-bucket", "raw", "s3", "my-bucket/raw"),
    ("gs://my-bucket", "raw/events.csv", "gcs", "my-bucket/raw/events.csv"),
    ("gcs://my-bucket", "raw", "gcs", "my-bucket/raw"),
    ("abfss://raw@acct.dfs.core.windows.net", "events/2024", "abs", "raw/events/2024"),
    ("abfs://raw@acct.dfs.core.windows.net", "/events", "abs", "raw/events"),
    ("wasbs://box@acct.blob.core.windows.net", "a/b.csv", "abs", "box/a/b.csv"),
    ("wasb://box@acct.blob.core.windows.net", "a", "abs", "box/a"),
    # file systems: the path; the namenode or host is not part of it
    ("hdfs://namenode:8020", "/data/events", "hdfs", "/data/events"),
    ("file", "/tmp/out.csv", "file", "/tmp/out.csv"),
    ("file://worker-1", "/tmp/out/", "file", "/tmp/out"),
    # streams: the topic
    ("kafka://broker-1:9092", "orders.v1", "kafka", "orders.v1"),
]
