"""OpenLineage (namespace, name) -> DataHub urns: the naming table, connections, column lineage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datahub_airflow_listener.domain.errors import DomainError, InvalidUrnError
from datahub_airflow_listener.domain.lineage import asset_uri_to_urn, normalize_annotations
from datahub_airflow_listener.domain.openlineage import (
    NAMESPACES,
    ConnectionDetail,
    OpenLineageNameError,
    column_lineage,
    connection_key,
    named_urn,
    ol_dataset_urn,
    parse_connections,
    platform_for_scheme,
    schema_field_urn,
)
from datahub_airflow_listener.domain.urns import DatasetUrn, make_dataset_urn, parse_urn
from tests.support.openlineage_cases import CASES


def urn(platform: str, name: str, env: str = "PROD", instance: str | None = None) -> str:
    return make_dataset_urn(platform, name, env, instance)


@pytest.mark.parametrize(("namespace", "name", "platform", "expected"), CASES)
def test_known_namespaces_map_to_datahub_naming(
    namespace: str, name: str, platform: str, expected: str
) -> None:
    assert ol_dataset_urn(namespace, name) == (urn(platform, expected), None)


def test_every_scheme_in_the_table_is_covered_by_a_case() -> None:
    covered = {c[0].split("://", 1)[0] for c in CASES}
    assert set(NAMESPACES) <= covered


def test_the_env_is_used_and_upper_cased() -> None:
    assert ol_dataset_urn("kafka://b:9092", "t", env="dev")[0] == urn("kafka", "t", "DEV")


def test_an_env_that_is_not_a_fabric_is_recorded_as_prod_with_a_warning() -> None:
    found, warning = ol_dataset_urn("kafka://b:9092", "t", env="eu-west")
    assert found == urn("kafka", "t")
    assert warning is not None
    assert "eu-west" in warning


# -- table-shaped names ---------------------------------------------------------------------------


def test_snowflake_and_oracle_are_lower_cased_other_warehouses_keep_case() -> None:
    assert ol_dataset_urn("snowflake://a", "DB.S.T")[0] == urn("snowflake", "db.s.t")
    assert ol_dataset_urn("oracle://h:1521", "HR.EMP")[0] == urn("oracle", "hr.emp")
    assert ol_dataset_urn("postgres://h:5432", "Db.S.T")[0] == urn("postgres", "Db.S.T")
    assert ol_dataset_urn("bigquery", "P.D.T")[0] == urn("bigquery", "P.D.T")


def test_athena_keeps_a_name_without_its_catalog_as_is() -> None:
    assert ol_dataset_urn("awsathena://athena.eu-west-1.amazonaws.com", "web.events") == (
        urn("athena", "web.events"),
        None,
    )


def test_empty_and_none_parts_are_dropped_with_a_warning() -> None:
    found, warning = ol_dataset_urn("redshift://c.r:5439", "dev.None.events")
    assert found == urn("redshift", "dev.events")
    assert warning is not None
    assert "None" in warning
    found, warning = ol_dataset_urn("postgres://h:5432", "db..public.t")
    assert found == urn("postgres", "db.public.t")
    assert warning is not None


def test_a_name_of_only_junk_parts_is_kept_as_given() -> None:
    found, warning = ol_dataset_urn("postgres://h:5432", "None")
    assert found == urn("postgres", "None")
    assert warning is not None


def test_a_table_name_with_the_wrong_depth_is_kept_with_a_warning() -> None:
    found, warning = ol_dataset_urn("sqlserver://synapse.example.com:1433", "dbo.orders")
    assert found == urn("mssql", "dbo.orders")
    assert warning is not None
    assert "database.schema.table" in warning
    assert "asset_connections" in warning
    found, warning = ol_dataset_urn("mysql://h:3306", "a.b.c")
    assert found == urn("mysql", "a.b.c")
    assert warning is not None


def test_sqlite_without_a_database_is_the_table_with_a_warning() -> None:
    found, warning = ol_dataset_urn("sqlite", "orders")
    assert found == urn("sqlite", "orders")
    assert warning is not None
    assert ol_dataset_urn("sqlite://relative.db", "orders")[1] is not None


# -- path-shaped names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "name", "platform", "expected"),
    [
        ("s3://bucket", "/", "s3", "bucket"),
        ("s3://Bucket", "Key/Part", "s3", "Bucket/Key/Part"),
        ("s3", "bucket/key", "s3", "bucket/key"),
        ("abfss://container", "dir/f", "abs", "container/dir/f"),
        ("hdfs://nn:8020", "data/events/", "hdfs", "/data/events"),
        ("file", "relative/out.csv", "file", "relative/out.csv"),
        ("kafka://b:9092", "Orders/Topic", "kafka", "Orders/Topic"),
    ],
)
def test_path_shapes(namespace: str, name: str, platform: str, expected: str) -> None:
    assert ol_dataset_urn(namespace, name) == (urn(platform, expected), None)


def test_reserved_characters_are_encoded_not_dropped() -> None:
    found, _ = ol_dataset_urn("s3://b", "dir/a,b(c).csv")
    assert found == "urn:li:dataset:(urn:li:dataPlatform:s3,b/dir/a%2Cb%28c%29.csv,PROD)"


# -- unknown namespaces ---------------------------------------------------------------------------


def test_an_unknown_scheme_is_its_own_platform_with_the_name_as_given_and_a_warning() -> None:
    found, warning = ol_dataset_urn("Iceberg://catalog:9000", "db.Events")
    assert found == urn("iceberg", "db.Events")
    assert warning is not None
    assert "'iceberg'" in warning


@pytest.mark.parametrize(
    ("namespace", "platform"),
    [
        ("cassandra://h:9042", "cassandra"),
        ("postgresql+psycopg2://h:5432", "postgres"),
        ("arn:aws:glue:us-east-1:123", "arn"),
        ("my namespace (eu)", "my-namespace-eu"),
        ("", "unknown"),
        ("://host", "unknown"),
        ("ÜBER://x", "ber"),
    ],
)
def test_namespaces_become_urn_safe_platforms(namespace: str, platform: str) -> None:
    found, _ = ol_dataset_urn(namespace, "t")
    assert parse_urn(found).parts[0] == f"urn:li:dataPlatform:{platform}"


def test_platform_for_scheme() -> None:
    assert platform_for_scheme("PostgreSQL+psycopg2") == "postgres"
    assert platform_for_scheme("awsathena") == "athena"
    assert platform_for_scheme("wasbs") == "abs"
    assert platform_for_scheme("iceberg") == "iceberg"


# -- names a urn cannot hold as they are ----------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_a_blank_name_raises_a_domain_error(name: str) -> None:
    with pytest.raises(OpenLineageNameError) as caught:
        ol_dataset_urn("postgres://h:5432", name)
    assert isinstance(caught.value, DomainError)


def test_surrounding_whitespace_is_stripped() -> None:
    assert ol_dataset_urn(" kafka://b:9092 ", " orders ") == (urn("kafka", "orders"), None)


def test_characters_that_are_not_text_are_replaced_with_a_warning() -> None:
    found, warning = ol_dataset_urn("kafka://b:9092", "orders\ud800")
    assert found == urn("kafka", "orders?")
    assert warning is not None


def test_a_name_too_long_for_a_urn_is_shortened_deterministically_and_distinctly() -> None:
    long_a, long_b = "a" * 600, "a" * 599 + "b"
    first, warning = ol_dataset_urn("s3://bucket", long_a)
    assert warning is not None
    assert "too long" in warning
    assert ol_dataset_urn("s3://bucket", long_a)[0] == first
    assert ol_dataset_urn("s3://bucket", long_b)[0] != first
    parsed = parse_urn(first)
    assert isinstance(parsed, DatasetUrn)
    assert parsed.name.startswith("bucket/aaaa")
    assert len(first) <= 512


# -- connections ----------------------------------------------------------------------------------

OFFICIAL_SHAPE = {
    "postgres://db.example.com:5432": {
        "platform_instance": "warehouse",
        "database": "analytics",
        "env": "PROD",
        "convert_urns_to_lowercase": False,
        "platform": "postgres",
    }
}


def test_the_official_plugins_setting_is_read() -> None:
    connections, problems = parse_connections(json.dumps(OFFICIAL_SHAPE))
    assert problems == ()
    assert connections == {
        "postgres://db.example.com:5432": ConnectionDetail(
            platform="postgres",
            platform_instance="warehouse",
            database="analytics",
            env="PROD",
            lowercase=False,
        )
    }


def test_a_decoded_mapping_reads_the_same_as_its_json() -> None:
    assert parse_connections(OFFICIAL_SHAPE) == parse_connections(json.dumps(OFFICIAL_SHAPE))


@pytest.mark.parametrize(
    "key",
    [
        "postgres://db.example.com:5432",
        "postgresql://db.example.com:5432",
        "POSTGRES://DB.Example.com:5432/",
        " postgresql+psycopg2://db.example.com:5432 ",
    ],
)
def test_keys_are_canonical(key: str) -> None:
    connections, problems = parse_connections({key: {"platform_instance": "wh"}})
    assert problems == ()
    assert list(connections) == ["postgres://db.example.com:5432"]
    found, _ = ol_dataset_urn("postgres://db.example.com:5432", "a.b.c", connections=connections)
    assert found == urn("postgres", "a.b.c", instance="wh")


def test_connection_key() -> None:
    assert connection_key("postgresql", "DB.example.com:5432/") == "postgres://db.example.com:5432"
    assert connection_key("sqlserver", "h:1433") == "mssql://h:1433"
    assert connection_key("postgres", "alice:s3cret@h:5432") == "postgres://h:5432"
    assert connection_key("abfss", "raw@acct.dfs.core.windows.net") == (
        "abs://raw@acct.dfs.core.windows.net"
    )
    assert connection_key("bigquery", "") == "bigquery:"


def test_a_matching_connection_supplies_instance_env_database_and_casing() -> None:
    connections, _ = parse_connections(
        {
            "postgres://h:5432": {
                "platform_instance": "warehouse",
                "database": "analytics",
                "env": "dev",
                "convert_urns_to_lowercase": True,
            }
        }
    )
    # The database fills in a name that lacks it, and only then.
    assert ol_dataset_urn("postgres://h:5432", "Public.Orders", connections=connections) == (
        urn("postgres", "analytics.public.orders", "DEV", "warehouse"),
        None,
    )
    assert ol_dataset_urn("postgres://h:5432", "other.public.t", connections=connections) == (
        urn("postgres", "other.public.t", "DEV", "warehouse"),
        None,
    )
    # Another host of the same platform is another connection.
    assert ol_dataset_urn("postgres://other:5432", "a.b.c", connections=connections) == (
        urn("postgres", "a.b.c"),
        None,
    )


def test_the_instance_is_prefixed_as_datahubs_builder_does() -> None:
    connections, _ = parse_connections({"kafka://b:9092": {"platform_instance": "eu"}})
    found, _ = ol_dataset_urn("kafka://b:9092", "orders", connections=connections)
    assert found == "urn:li:dataset:(urn:li:dataPlatform:kafka,eu.orders,PROD)"


def test_a_connection_can_keep_snowflake_case_and_lower_case_anything() -> None:
    connections, _ = parse_connections(
        {
            "snowflake://acct": {"convert_urns_to_lowercase": False},
            "s3://bucket": {"convert_urns_to_lowercase": True},
        }
    )
    assert ol_dataset_urn("snowflake://acct", "DB.S.T", connections=connections)[0] == urn(
        "snowflake", "DB.S.T"
    )
    assert ol_dataset_urn("s3://bucket", "Key", connections=connections)[0] == urn(
        "s3", "bucket/key"
    )
    # Without an explicit setting, object keys keep their case.
    connections, _ = parse_connections({"s3://bucket": {"platform_instance": "x"}})
    assert ol_dataset_urn("s3://bucket", "Key", connections=connections)[0] == urn(
        "s3", "bucket/Key", instance="x"
    )


def test_a_connection_platform_names_an_unknown_scheme_without_a_warning() -> None:
    connections, _ = parse_connections({"starrocks://h:9030": {"platform": "starrocks"}})
    assert ol_dataset_urn("starrocks://h:9030", "db.t", connections=connections) == (
        urn("starrocks", "db.t"),
        None,
    )


def test_a_connection_platform_overrides_a_known_one_and_its_casing_rule() -> None:
    connections, _ = parse_connections({"mysql://h:9030": {"platform": "snowflake"}})
    found, _ = ol_dataset_urn("mysql://h:9030", "Db.T", connections=connections)
    assert found == urn("snowflake", "db.t")


def test_connections_keyed_by_hand_with_other_values_are_ignored() -> None:
    odd: Any = {"postgres://h:5432": {"platform_instance": "x"}}
    assert ol_dataset_urn("postgres://h:5432", "a.b.c", connections=odd) == (
        urn("postgres", "a.b.c"),
        None,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({"postgres://h": 3}, "expected an object of settings"),
        ({"postgres://h": {"env": "nope"}}, "env 'nope' is not a DataHub fabric"),
        ({"postgres://h": {"env": 3}}, "env 3 is not a non-empty string"),
        ({"postgres://h": {"convert_urns_to_lowercase": "yes"}}, "is not true or false"),
        ({"postgres://h": {"platform_instance": "x\ud800"}}, "platform_instance"),
        ({"postgres://h": {"platform": "a b"}}, "is not a platform name"),
        ({"postgres://h": {"instance": "x"}}, "unknown setting(s) instance"),
        ({"": {}}, "is not a connection"),
        ({"postgres://h": {}, "postgresql://H/": {}}, "name one connection"),
    ],
)
def test_bad_settings_give_warnings_not_exceptions(value: Any, expected: str) -> None:
    _, problems = parse_connections(value)
    assert any(expected in p for p in problems), problems


def test_a_bad_field_leaves_the_rest_of_its_entry_in_force() -> None:
    connections, problems = parse_connections(
        {"postgres://h": {"env": "nope", "platform_instance": "wh", "extra": 1}}
    )
    assert len(problems) == 2
    assert connections == {"postgres://h": ConnectionDetail(platform_instance="wh")}


@pytest.mark.parametrize("value", [None, "", "   ", {}])
def test_nothing_configured_maps_nothing(value: Any) -> None:
    assert parse_connections(value) == ({}, ())


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


@given(st.text(max_size=80) | _json.map(json.dumps))
def test_parse_connections_never_raises(text: str) -> None:
    connections, problems = parse_connections(text)
    assert all(isinstance(d, ConnectionDetail) for d in connections.values())
    assert all(isinstance(p, str) for p in problems)


# -- any text -------------------------------------------------------------------------------------

_namespaces = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda s, rest: f"{s}://{rest}",
        st.sampled_from([*NAMESPACES, "other"]),
        st.text(max_size=30),
    ),
)
_names = st.text(max_size=80) | st.text(st.sampled_from(". /None,()\u241f%aZ"), max_size=30)


@given(_namespaces, _names, st.sampled_from(["PROD", "dev", "nope"]), st.booleans())
def test_any_text_gives_a_urn_datahub_accepts(
    namespace: str, name: str, env: str, with_connection: bool
) -> None:
    connections = None
    if with_connection:
        scheme, _, authority = namespace.partition("://")
        connections = {
            connection_key(scheme, authority): ConnectionDetail(
                platform_instance="wh", database="db", lowercase=True
            )
        }
    try:
        found, warning = ol_dataset_urn(namespace, name, env=env, connections=connections)
    except OpenLineageNameError:
        assert not name.strip()
        return
    parsed = parse_urn(found)
    assert isinstance(parsed, DatasetUrn)
    assert warning is None or isinstance(warning, str)


# -- schemaField urns and column lineage ----------------------------------------------------------

OUT = urn("postgres", "db.public.out")


def test_schema_field_urn() -> None:
    assert schema_field_urn(OUT, "amount") == f"urn:li:schemaField:({OUT},amount)"
    assert schema_field_urn(OUT, "a,b(c)") == f"urn:li:schemaField:({OUT},a%2Cb%28c%29)"
    assert parse_urn(schema_field_urn(OUT, "x")).parts == (OUT, "x")


@pytest.mark.parametrize(("dataset", "field"), [(OUT, ""), (OUT, " x"), ("not a urn", "x")])
def test_schema_field_urn_refuses_what_datahub_would(dataset: str, field: str) -> None:
    with pytest.raises(InvalidUrnError):
        schema_field_urn(dataset, field)


def test_column_lineage_is_one_record_per_output_column_in_a_stable_order() -> None:
    pg = "postgres://h:5432"
    records = column_lineage(
        OUT,
        {
            "total": [(pg, "db.public.b", "price"), (pg, "db.public.a", "qty")],
            "id": [(pg, "db.public.a", "id"), (pg, "db.public.a", "id")],
        },
    )
    assert [r.downstreams for r in records] == [
        (schema_field_urn(OUT, "id"),),
        (schema_field_urn(OUT, "total"),),
    ]
    a, b = urn("postgres", "db.public.a"), urn("postgres", "db.public.b")
    assert records[0].upstreams == (schema_field_urn(a, "id"),)
    assert records[1].upstreams == (schema_field_urn(a, "qty"), schema_field_urn(b, "price"))
    for record in records:
        assert record.upstream_type == "FIELD_SET"
        assert record.downstream_type == "FIELD"
        assert record.confidence_score == 1.0


def test_column_lineage_names_inputs_like_datasets_and_lower_cases_snowflake_fields() -> None:
    connections, _ = parse_connections({"snowflake://acct": {"platform_instance": "sf"}})
    out = urn("snowflake", "db.s.out")
    (record,) = column_lineage(
        out,
        {"TOTAL": [("snowflake://acct", "DB.S.SRC", "AMOUNT")]},
        env="DEV",
        connections=connections,
    )
    source = urn("snowflake", "db.s.src", "DEV", "sf")
    assert record.upstreams == (schema_field_urn(source, "amount"),)
    assert record.downstreams == (schema_field_urn(out, "total"),)


def test_column_lineage_leaves_out_what_cannot_be_named() -> None:
    pg = "postgres://h:5432"
    records = column_lineage(
        OUT,
        {
            "kept": [(pg, "db.public.a", "x"), (pg, "", "y"), (pg, "db.public.a", " ")],
            "no_inputs": [],
            "only_bad": [(pg, "  ", "x")],
            "": [(pg, "db.public.a", "x")],
        },
    )
    assert [r.downstreams for r in records] == [(schema_field_urn(OUT, "kept"),)]
    assert records[0].upstreams == (schema_field_urn(urn("postgres", "db.public.a"), "x"),)
    assert column_lineage("not a urn", {"c": [(pg, "db.public.a", "x")]}) == ()


# -- the Airflow Asset mapping with connections ---------------------------------------------------


def test_asset_uris_without_a_matching_connection_are_unchanged() -> None:
    connections, _ = parse_connections({"postgres://other:5432": {"platform_instance": "x"}})
    for uri in ("postgres://h:5432/db/public/t", "s3://b/k", "orders", "snowflake://a/DB/S/T"):
        assert asset_uri_to_urn(uri, "PROD", connections) == asset_uri_to_urn(uri)


def test_asset_uris_of_a_connection_get_its_settings() -> None:
    connections, _ = parse_connections(
        {
            "postgresql://h:5432": {"platform_instance": "wh", "database": "analytics"},
            "s3://b": {"platform_instance": "lake", "env": "DEV"},
            "sqlite://tmp": {"database": "ignored"},
        }
    )
    assert asset_uri_to_urn("postgres://u:pw@h:5432/public/t", connections=connections)[0] == urn(
        "postgres", "analytics.public.t", instance="wh"
    )
    assert asset_uri_to_urn("postgres://h:5432/db/public/t", connections=connections)[0] == urn(
        "postgres", "db.public.t", instance="wh"
    )
    assert asset_uri_to_urn("s3://b/k", connections=connections)[0] == urn(
        "s3", "b/k", "DEV", "lake"
    )
    # A SQLite asset is the database file: no database goes in front of its path.
    assert asset_uri_to_urn("sqlite://tmp/app.db", connections=connections)[0] == urn(
        "sqlite", "/tmp/app.db"
    )
    # Both writers name one dataset of one connection alike.
    assert (
        asset_uri_to_urn("postgres://h:5432/db/public/t", connections=connections)[0]
        == ol_dataset_urn("postgres://h:5432", "db.public.t", connections=connections)[0]
    )


def test_annotations_pass_connections_to_asset_uris() -> None:
    connections, _ = parse_connections({"s3://b": {"platform_instance": "lake"}})
    lineage = normalize_annotations("d.t", ["s3://b/in"], [], connections=connections)
    assert lineage.inlets == (urn("s3", "b/in", instance="lake"),)


def test_named_urn_without_connections_is_make_dataset_urn() -> None:
    assert named_urn("postgres", "h:5432", "postgres", "a.b.c") == (urn("postgres", "a.b.c"), None)
    with pytest.raises(OpenLineageNameError):
        named_urn("postgres", "h:5432", "postgres", " ")
