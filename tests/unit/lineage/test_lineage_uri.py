"""Asset URI -> DataHub (platform, name): every scheme, the rules behind the table, failures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.domain.errors import DomainError
from datahub_airflow_listener.domain.lineage import (
    AIRFLOW_ASSET_PLATFORM,
    SCHEMES,
    UriMappingError,
    asset_uri_to_urn,
    dataset_env,
    map_asset_uri,
)
from datahub_airflow_listener.domain.urns import make_dataset_urn, parse_urn

# (uri, platform, name): the naming DataHub's own sources use for the same dataset.
CASES = [
    # object stores: <bucket>/<key>
    ("s3://bucket/key/part-0.parquet", "s3", "bucket/key/part-0.parquet"),
    ("s3a://bucket/dir/", "s3", "bucket/dir"),
    ("s3n://bucket/x", "s3", "bucket/x"),
    ("s3://bucket", "s3", "bucket"),
    ("gs://bucket/path/file.csv", "gcs", "bucket/path/file.csv"),
    ("gcs://bucket/path", "gcs", "bucket/path"),
    # Azure: <container>/<path>, whatever the account host
    ("abfss://raw@acct.dfs.core.windows.net/events/2024", "abs", "raw/events/2024"),
    ("abfs://raw@acct.dfs.core.windows.net/x", "abs", "raw/x"),
    ("wasb://box@acct.blob.core.windows.net/a/b", "abs", "box/a/b"),
    ("wasbs://box@acct.blob.core.windows.net/a", "abs", "box/a"),
    ("abfs://raw/events", "abs", "raw/events"),
    # file systems: the path
    ("hdfs://namenode:8020/data/events", "hdfs", "/data/events"),
    ("file:///tmp/out.csv", "file", "/tmp/out.csv"),
    ("file://localhost/tmp/out.csv", "file", "/tmp/out.csv"),
    ("file://tmp/out.csv", "file", "/tmp/out.csv"),  # Airflow's rewrite of file:////tmp/...
    ("sqlite://tmp/app.db", "sqlite", "/tmp/app.db"),
    ("sqlite:/rel.db", "sqlite", "/rel.db"),
    # SQL: segments joined by '.'
    ("postgres://host:5432/db/public/orders", "postgres", "db.public.orders"),
    ("postgresql://host/db/public/orders", "postgres", "db.public.orders"),
    ("postgresql+psycopg2://host/db/public/orders", "postgres", "db.public.orders"),
    ("postgres://host:5432/db.public.orders", "postgres", "db.public.orders"),
    ("mysql://host:3306/shop/orders", "mysql", "shop.orders"),
    ("mariadb://host/shop/orders", "mysql", "shop.orders"),
    ("mssql://host:1433/sales/dbo/orders", "mssql", "sales.dbo.orders"),
    ("sqlserver://host/sales/dbo/orders", "mssql", "sales.dbo.orders"),
    ("redshift://cluster.eu-west-1:5439/dev/public/t", "redshift", "dev.public.t"),
    ("snowflake://acct/ANALYTICS/PUBLIC/Orders", "snowflake", "analytics.public.orders"),
    ("bigquery://my-project/sales/orders", "bigquery", "my-project.sales.orders"),
    ("bigquery:my-project.sales.orders", "bigquery", "my-project.sales.orders"),
    ("trino://host:8080/hive/web/events", "trino", "hive.web.events"),
    ("presto://host/hive/web/events", "presto", "hive.web.events"),
    ("databricks://host/main/web/events", "databricks", "main.web.events"),
    ("hive://host:10000/web/events", "hive", "web.events"),
    # streams: the topic
    ("kafka://broker:9092/orders", "kafka", "orders"),
    # names without a scheme: @asset / Asset("orders")
    ("orders", AIRFLOW_ASSET_PLATFORM, "orders"),
    ("/tmp/plain/path", AIRFLOW_ASSET_PLATFORM, "/tmp/plain/path"),
]


@pytest.mark.parametrize(("uri", "platform", "name"), CASES)
def test_known_schemes_map_to_datahub_naming(uri: str, platform: str, name: str) -> None:
    mapping = map_asset_uri(uri)
    assert (mapping.platform, mapping.name) == (platform, name)
    assert mapping.warning is None


def test_every_scheme_in_the_table_is_covered_by_a_case() -> None:
    covered = {c[0].split(":", 1)[0].split("+", 1)[0] for c in CASES}
    assert set(SCHEMES) <= covered


@pytest.mark.parametrize(
    "uri",
    [
        "postgres://alice:s3cret@host:5432/db/public/orders",
        "mysql://alice:s3cret@host/shop/orders",
        "s3://alice:s3cret@bucket/key",
        "custom://alice:s3cret@host:1/a",
    ],
)
def test_credentials_never_reach_the_urn(uri: str) -> None:
    urn, _ = asset_uri_to_urn(uri)
    assert "s3cret" not in urn
    assert "alice" not in urn


def test_query_and_fragment_are_not_part_of_the_name() -> None:
    assert map_asset_uri("s3://bucket/key?versionId=3#frag").name == "bucket/key"
    assert map_asset_uri("postgres://h/db/s/t?sslmode=require").name == "db.s.t"


def test_percent_escapes_are_decoded_and_reserved_characters_reencoded() -> None:
    mapping = map_asset_uri("s3://bucket/a%20b/c%2Cd")
    assert mapping.name == "bucket/a b/c,d"
    assert mapping.urn() == "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/a b/c%2Cd,PROD)"


def test_scheme_is_case_insensitive_but_names_keep_their_case() -> None:
    mapping = map_asset_uri("S3://Bucket/Key")
    assert (mapping.platform, mapping.name) == ("s3", "Bucket/Key")
    assert map_asset_uri("BigQuery://Proj/DS/T").name == "Proj.DS.T"


def test_unknown_scheme_is_kept_as_its_own_platform_with_a_warning() -> None:
    mapping = map_asset_uri("iceberg://catalog:9000/db/events")
    assert mapping.platform == "iceberg"
    assert mapping.name == "catalog:9000/db/events"
    assert mapping.warning is not None
    assert "iceberg" in mapping.warning


def test_sql_path_with_the_wrong_depth_is_recorded_with_a_warning() -> None:
    mapping = map_asset_uri("postgres://host/db/orders")
    assert (mapping.platform, mapping.name) == ("postgres", "db.orders")
    assert mapping.warning is not None
    assert "/database/schema/table" in mapping.warning


def test_kafka_path_with_slashes_is_kept_whole_with_a_warning() -> None:
    mapping = map_asset_uri("kafka://broker/a/b")
    assert mapping.name == "a/b"
    assert mapping.warning is not None


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "   ",
        "s3://",
        "gs:///only-path",
        "abfss://@acct/x",
        "postgres://host",
        "postgres://host/",
        "kafka://broker",
        "file://",
        "hdfs://nn:8020/",
        "custom://",
    ],
)
def test_uris_that_name_nothing_raise(uri: str) -> None:
    with pytest.raises(UriMappingError):
        map_asset_uri(uri)


def test_non_string_raises_a_domain_error() -> None:
    with pytest.raises(DomainError):
        map_asset_uri(42)  # type: ignore[arg-type]


def test_asset_uri_to_urn_uses_the_env() -> None:
    urn, warning = asset_uri_to_urn("s3://b/k", "DEV")
    assert urn == "urn:li:dataset:(urn:li:dataPlatform:s3,b/k,DEV)"
    assert warning is None


@pytest.mark.parametrize(
    ("cluster", "env"),
    [
        ("prod", "PROD"),
        ("dev", "DEV"),
        (" qa ", "QA"),
        ("eu-west", "PROD"),
        (None, "PROD"),
        ("", "PROD"),
    ],
)
def test_dataset_env_is_the_cluster_only_when_it_is_a_fabric(cluster: str | None, env: str) -> None:
    assert dataset_env(cluster) == env


_bucket = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]", fullmatch=True)
_key = st.lists(st.from_regex(r"[A-Za-z0-9_.=-]{1,12}", fullmatch=True), min_size=0, max_size=5)


@given(_bucket, _key, st.sampled_from(["s3", "s3a", "gs", "gcs"]))
def test_object_store_name_is_bucket_slash_key(bucket: str, key: list[str], scheme: str) -> None:
    uri = f"{scheme}://{bucket}/" + "/".join(key)
    assert map_asset_uri(uri).name == "/".join([bucket, *key])


@given(st.text(max_size=60))
def test_any_text_maps_to_a_valid_urn_or_raises_a_domain_error(text: str) -> None:
    try:
        urn, _ = asset_uri_to_urn(text)
    except DomainError:
        return
    parsed = parse_urn(urn)
    assert parsed.entity_type == "dataset"
    assert urn == make_dataset_urn(
        parsed.parts[0].rsplit(":", 1)[1], map_asset_uri(text).name, "PROD"
    )
