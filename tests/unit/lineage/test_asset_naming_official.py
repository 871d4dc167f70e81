"""``asset_naming = official``: Airflow Asset URIs named as the official plugin 1.7.0.17 names
them (the expected names were read off that release's asset adapter), beside our default."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.domain.lineage import (
    UriMappingError,
    asset_uri_to_urn,
    map_asset_uri_official,
    normalize_annotations,
)
from datahub_airflow_listener.domain.urns import make_dataset_urn

# (uri, platform, name) as acryl-datahub-airflow-plugin 1.7.0.17 names them.
OFFICIAL = [
    ("postgresql://host/db/schema/t", "postgres", "host/db/schema/t"),
    # Airflow's postgres provider rewrites the URI so (scheme postgres, default port added)
    ("postgres://host:5432/db/schema/t", "postgres", "host:5432/db/schema/t"),
    ("mysql://host:3306/db/t", "mysql", "host:3306/db/t"),
    ("s3://bucket/key/", "s3", "bucket/key"),
    ("s3n://bucket/key", "s3", "bucket/key"),
    ("gs://bucket/p", "gcs", "bucket/p"),
    ("abfss://box@acct.dfs.core.windows.net/p", "abs", "box@acct.dfs.core.windows.net/p"),
    ("wasbs://box@acct.blob.core.windows.net/p", "abs", "box@acct.blob.core.windows.net/p"),
    ("dbfs://mnt/x", "dbfs", "mnt/x"),
    ("file:///tmp/out.csv/", "file", "/tmp/out.csv"),  # no authority: the leading / stays
    ("file://host/tmp/out.csv", "file", "host/tmp/out.csv"),
    ("hdfs://namenode:8020/data", "hdfs", "namenode:8020/data"),
    ("bigquery://project/dataset/t", "bigquery", "project/dataset/t"),
    ("snowflake://acct/DB/SCHEMA/T", "snowflake", "acct/DB/SCHEMA/T"),  # case kept
    ("sqlite:////tmp/app.db", "sqlite", "tmp/app.db"),
    ("iceberg://catalog/", "iceberg", "catalog"),  # an unknown scheme is its own platform
    ("kafka://broker:9092/topic", "kafka", "broker:9092/topic"),
    ("s3://bucket/k?version=2#frag", "s3", "bucket/k"),
    ("orders", "airflow", "orders"),  # no scheme: an @asset name, as written
]


@pytest.mark.parametrize(("uri", "platform", "name"), OFFICIAL)
def test_official_names(uri: str, platform: str, name: str) -> None:
    mapping = map_asset_uri_official(uri)
    assert (mapping.platform, mapping.name) == (platform, name)
    urn, warning = asset_uri_to_urn(uri, "DEV", naming="official")
    assert urn == make_dataset_urn(platform, name, "DEV") and warning is None


def test_the_default_names_tables_as_datahub_sources_do() -> None:
    uri = "postgres://host:5432/db/schema/t"
    assert asset_uri_to_urn(uri)[0] == make_dataset_urn("postgres", "db.schema.t")
    assert asset_uri_to_urn(uri, naming="datahub") == asset_uri_to_urn(uri)
    assert asset_uri_to_urn(uri, naming="official")[0] == make_dataset_urn(
        "postgres", "host:5432/db/schema/t"
    )


def test_a_password_never_reaches_a_name() -> None:
    mapping = map_asset_uri_official("postgres://user:secret@host:5432/db/s/t")
    assert mapping.name == "host:5432/db/s/t"
    assert map_asset_uri_official("abfss://box@acct/p").name == "box@acct/p"  # a user, kept


@pytest.mark.parametrize("uri", ["s3://", "postgres:///", "", "file://"])
def test_a_uri_naming_nothing_is_refused(uri: str) -> None:
    with pytest.raises(UriMappingError):
        map_asset_uri_official(uri)


def test_annotations_use_the_naming_asked_for() -> None:
    outlets = ["postgres://h:5432/db/s/t", "urn:li:dataset:(urn:li:dataPlatform:x,y,PROD)"]
    ours = normalize_annotations("d.t", [], outlets)
    theirs = normalize_annotations("d.t", [], outlets, naming="official")
    assert ours.outlets[0] == make_dataset_urn("postgres", "db.s.t")
    assert theirs.outlets[0] == make_dataset_urn("postgres", "h:5432/db/s/t")
    assert ours.outlets[1] == theirs.outlets[1]  # urns are urns whatever the naming


@given(st.text(min_size=1, max_size=40).filter(lambda t: ":" not in t and t.strip() == t))
def test_a_name_without_scheme_is_kept_as_written(text: str) -> None:
    assert map_asset_uri_official(text).name == text
