"""Urn builders, the parser and the guid: what a DataHub server accepts, nothing less."""

from __future__ import annotations

import urllib.parse

import pytest

from datahub_airflow_listener.domain import urns as u
from datahub_airflow_listener.domain.errors import InvalidUrnError


def _java_encoded_length(urn: str) -> int:
    """Independent reference: Java's URLEncoder keeps [A-Za-z0-9.*_-], space -> '+'.

    Python's quote_plus agrees but for '~', which it keeps and Java encodes."""
    return len(urllib.parse.quote_plus(urn, safe="*").replace("~", "%7E"))


# -- worked examples (DATAHUB_WIRE.md) ---------------------------------------------------


def test_guid_worked_example() -> None:
    key = {"cluster": "prod", "orchestrator": "airflow", "id": "x"}
    assert u.datahub_guid(key) == "3b554376399927fc165c8e4325700faf"


def test_guid_is_independent_of_key_order_and_drops_none() -> None:
    a = u.datahub_guid({"id": "x", "orchestrator": "airflow", "cluster": "prod"})
    b = u.datahub_guid({"cluster": "prod", "orchestrator": "airflow", "id": "x", "extra": None})
    assert a == b == "3b554376399927fc165c8e4325700faf"


def test_official_plugin_task_run_urn_worked_example() -> None:
    run_id = "my_dag_extract_scheduled__2024-01-01T00:00:00+00:00"
    assert (
        u.make_data_process_instance_urn("airflow", "prod", run_id)
        == "urn:li:dataProcessInstance:4c378e9cb955769d457950caf4c41dfa"
    )


def test_cluster_case_matters_for_process_instances() -> None:
    assert u.make_data_process_instance_urn(
        "airflow", "prod", "x"
    ) != u.make_data_process_instance_urn("airflow", "PROD", "x")


def test_process_instance_without_cluster_drops_it_from_the_key() -> None:
    expected = u.datahub_guid({"orchestrator": "airflow", "id": "x"})
    assert u.make_data_process_instance_urn("airflow", None, "x").endswith(expected)


def test_process_instance_id_with_unicode_and_reserved_characters_is_hashed_ascii_escaped() -> None:
    import hashlib

    text = '{"cluster":"prod","id":"r\\u00e9,(\\u241f)","orchestrator":"airflow"}'
    expected = hashlib.md5(text.encode()).hexdigest()
    assert u.make_data_process_instance_urn("airflow", "prod", "ré,(\u241f)") == (
        f"urn:li:dataProcessInstance:{expected}"
    )


# -- reserved characters and unicode ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a,b", "a%2Cb"),
        ("f(x)", "f%28x%29"),
        ("a\u241fb", "a%E2%90%9Fb"),
        ("(,)", "%28%2C%29"),
        ("50%", "50%"),  # '%' itself is not reserved (DataHub's SDK leaves it too)
    ],
)
def test_reserved_characters_are_percent_encoded_in_every_builder(raw: str, encoded: str) -> None:
    assert (
        u.make_dataset_urn("hive", raw)
        == f"urn:li:dataset:(urn:li:dataPlatform:hive,{encoded},PROD)"
    )
    flow = u.make_data_flow_urn("airflow", raw, "prod")
    assert flow == f"urn:li:dataFlow:(airflow,{encoded},prod)"
    assert u.make_data_job_urn(flow, raw) == f"urn:li:dataJob:({flow},{encoded})"
    assert u.make_tag_urn(raw) == f"urn:li:tag:{encoded}"
    assert u.make_user_urn(raw) == f"urn:li:corpuser:{encoded}"
    assert u.make_group_urn(raw) == f"urn:li:corpGroup:{encoded}"
    assert u.make_data_platform_urn(raw) == f"urn:li:dataPlatform:{encoded}"


@pytest.mark.parametrize("value", ["名前", "tåble", "emoji🎉", "a b", "x:y/z"])
def test_unicode_and_other_characters_are_kept_as_is(value: str) -> None:
    assert (
        u.make_dataset_urn("hive", value)
        == f"urn:li:dataset:(urn:li:dataPlatform:hive,{value},PROD)"
    )
    assert u.make_tag_urn(value) == f"urn:li:tag:{value}"


def test_encode_part_escapes_only_reserved_characters() -> None:
    assert u.encode_part("db.t,(x)\u241f", "name") == "db.t%2C%28x%29%E2%90%9F"


# -- refused input: one typed error that names the field ----------------------------------


BUILDERS = {
    "platform": lambda v: u.make_dataset_urn(v, "t"),
    "name": lambda v: u.make_dataset_urn("hive", v),
    "platform_instance": lambda v: u.make_dataset_urn("hive", "t", "PROD", v),
    "orchestrator": lambda v: u.make_data_flow_urn(v, "f", "prod"),
    "flow_id": lambda v: u.make_data_flow_urn("airflow", v, "prod"),
    "cluster": lambda v: u.make_data_flow_urn("airflow", "f", v),
    "job_id": lambda v: u.make_data_job_urn("urn:li:dataFlow:(airflow,f,prod)", v),
    "flow_urn": lambda v: u.make_data_job_urn(v, "j"),
    "tag": u.make_tag_urn,
    "user": u.make_user_urn,
    "group": u.make_group_urn,
    "instance": lambda v: u.make_data_platform_instance_urn("airflow", v),
}
BAD_VALUES = {
    "empty": "",
    "leading space": " x",
    "trailing newline": "x\n",
    "only whitespace": "   ",
    "None": None,
    "int": 42,
    "bytes": b"x",
    "lone surrogate": "x\ud800",
}


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        (field, bad)
        for field in sorted(BUILDERS)
        for bad in sorted(BAD_VALUES)
        if not (field == "platform_instance" and bad == "None")  # None: no platform instance
    ],
)
def test_bad_parts_raise_invalid_urn_error_naming_the_field(field: str, bad: str) -> None:
    value = BAD_VALUES[bad]
    with pytest.raises(InvalidUrnError) as info:
        BUILDERS[field](value)
    assert info.value.field == field
    assert info.value.value == value
    assert field in str(info.value)


@pytest.mark.parametrize("field", sorted(BUILDERS))
def test_good_parts_are_accepted_by_the_same_builders(field: str) -> None:
    # Control for the test above: the builders do accept an ordinary value.
    value = "urn:li:dataFlow:(airflow,f,prod)" if field == "flow_urn" else "ok_value"
    assert BUILDERS[field](value).startswith("urn:li:")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: u.make_data_process_instance_urn("airflow", "prod", ""), "id"),
        (lambda: u.make_data_process_instance_urn("airflow", "prod", None), "id"),
        (lambda: u.make_data_process_instance_urn("", "prod", "x"), "orchestrator"),
        (lambda: u.make_data_process_instance_urn("airflow", 5, "x"), "cluster"),
        (lambda: u.make_data_job_urn("urn:li:tag:x", "j"), "flow_urn"),
        (lambda: u.make_dataset_urn("urn:li:tag:hive", "t"), "platform"),
        (lambda: u.make_user_urn("urn:li:tag:x"), "user"),
    ],
)
def test_other_refusals_name_their_field(call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidUrnError) as info:
        call()
    assert info.value.field == field


def test_invalid_urn_error_is_a_value_error_with_a_short_message() -> None:
    with pytest.raises(ValueError, match=r"invalid name .*\(10\d\d\d chars\)") as info:
        u.make_dataset_urn("hive", "x" * 10_000)
    assert isinstance(info.value, InvalidUrnError)
    assert len(str(info.value)) < 200


# -- length ---------------------------------------------------------------------------------


def test_urn_of_exactly_512_encoded_characters_is_accepted_and_513_refused() -> None:
    base = _java_encoded_length(u.make_tag_urn("a"))
    fits = "a" * (u.MAX_URN_LENGTH - base + 1)
    assert _java_encoded_length(u.make_tag_urn(fits)) == 512
    with pytest.raises(InvalidUrnError) as info:
        u.make_tag_urn(fits + "a")
    assert info.value.field == "tag"


@pytest.mark.parametrize("unit", ["~", ":", "/", "é", "名", "\U0001f389"])
def test_length_boundary_with_characters_that_grow_when_encoded(unit: str) -> None:
    base = _java_encoded_length(u.make_tag_urn("a"))
    per_unit = _java_encoded_length(unit)
    room = u.MAX_URN_LENGTH - base + 1  # encoded characters left for the tag
    fits = unit * (room // per_unit) + "a" * (room % per_unit)
    assert _java_encoded_length(u.make_tag_urn(fits)) == 512
    with pytest.raises(InvalidUrnError):
        u.make_tag_urn(fits + "a")


def test_length_is_measured_url_encoded_so_unicode_counts_per_utf8_byte() -> None:
    # 100 characters, but each is 3 UTF-8 bytes -> 9 encoded characters: 900 > 512.
    with pytest.raises(InvalidUrnError, match="512"):
        u.make_tag_urn("\u241f" * 100)
    with pytest.raises(InvalidUrnError, match="512"):
        u.make_tag_urn("名" * 60)
    assert u.make_tag_urn("名" * 50)  # 450 + prefix fits


def test_spaces_count_as_one_encoded_character() -> None:
    value = "a " * 240  # 480 characters, spaces are '+' once encoded
    urn = u.make_tag_urn(value.strip())
    assert _java_encoded_length(urn) <= 512


def test_parse_refuses_overlong_urns() -> None:
    with pytest.raises(InvalidUrnError):
        u.parse_urn("urn:li:tag:" + "x" * 600)


# -- datasets: env and platform instance ---------------------------------------------------


@pytest.mark.parametrize("env", ["prod", "Prod", "PROD", "dev", "non_prod", "uat"])
def test_dataset_env_is_upper_cased(env: str) -> None:
    assert u.make_dataset_urn("hive", "t", env).endswith(f",{env.upper()})")


@pytest.mark.parametrize("env", ["production", "staging", "", "PROD ", None])
def test_dataset_env_must_be_a_known_fabric(env: str | None) -> None:
    with pytest.raises(InvalidUrnError) as info:
        u.make_dataset_urn("hive", "t", env)  # type: ignore[arg-type]
    assert info.value.field == "env"


def test_fabric_list_matches_datahub() -> None:
    assert {
        "CERT", "CORP", "DEV", "EI", "NON_PROD", "PRD", "PRE", "PROD", "QA",
        "RVW", "SANDBOX", "SBX", "SIT", "STG", "TEST", "TST", "UAT",
    } == u.FABRIC_TYPES  # fmt: skip


def test_dataset_platform_instance_is_prefixed_to_the_name() -> None:
    assert (
        u.make_dataset_urn("postgres", "db.t", "PROD", "eu1")
        == "urn:li:dataset:(urn:li:dataPlatform:postgres,eu1.db.t,PROD)"
    )


def test_dataset_platform_instance_reserved_characters_are_encoded_too() -> None:
    assert ",eu%2C1.t," in u.make_dataset_urn("postgres", "t", "PROD", "eu,1")


def test_dataset_accepts_a_platform_urn() -> None:
    assert u.make_dataset_urn("urn:li:dataPlatform:hive", "t") == u.make_dataset_urn("hive", "t")


# -- flows and jobs -----------------------------------------------------------------------------


def test_flow_cluster_is_kept_as_given() -> None:
    assert u.make_data_flow_urn("airflow", "d", "Prod") == "urn:li:dataFlow:(airflow,d,Prod)"


def test_flow_platform_instance_is_prefixed_to_the_flow_id() -> None:
    assert (
        u.make_data_flow_urn("airflow", "my_dag", "prod", "ops")
        == "urn:li:dataFlow:(airflow,ops.my_dag,prod)"
    )


def test_job_urn_nests_the_flow_urn() -> None:
    flow = u.make_data_flow_urn("airflow", "d(1)", "prod")
    assert u.make_data_job_urn(flow, "t,1") == f"urn:li:dataJob:({flow},t%2C1)"
    assert u.make_data_job_urn(u.DataFlowUrn.from_string(flow), "t") == f"urn:li:dataJob:({flow},t)"


def test_owner_builders_pass_existing_user_and_group_urns_through() -> None:
    assert u.make_user_urn("urn:li:corpGroup:team") == "urn:li:corpGroup:team"
    assert u.make_group_urn("urn:li:corpuser:jdoe") == "urn:li:corpuser:jdoe"
    assert u.make_tag_urn("urn:li:tag:pii") == "urn:li:tag:pii"


# -- parser -------------------------------------------------------------------------------------


def test_parse_gives_the_specific_class_and_typed_accessors() -> None:
    job = u.parse_urn("urn:li:dataJob:(urn:li:dataFlow:(airflow,d%2C1,prod),t)")
    assert isinstance(job, u.DataJobUrn)
    assert job.job_id == "t"
    assert job.flow_urn == u.DataFlowUrn(entity_type="dataFlow", parts=("airflow", "d%2C1", "prod"))
    assert job.flow_urn.cluster == "prod"
    ds = u.parse_urn("urn:li:dataset:(urn:li:dataPlatform:hive,db.t,PROD)")
    assert isinstance(ds, u.DatasetUrn)
    assert (ds.platform, ds.name, ds.env) == ("urn:li:dataPlatform:hive", "db.t", "PROD")
    assert isinstance(
        u.parse_urn("urn:li:mlModel:(urn:li:dataPlatform:mlflow,m,PROD)"), u.MlModelUrn
    )
    assert type(u.parse_urn("urn:li:glossaryTerm:abc")) is u.Urn


@pytest.mark.parametrize(
    "text",
    [
        "urn:li:dataset:(urn:li:dataPlatform:hive,t,PROD)",
        "urn:li:dataFlow:(airflow,ops.d,prod)",
        "urn:li:dataJob:(urn:li:dataFlow:(airflow,d,prod),t)",
        "urn:li:dataProcessInstance:3b554376399927fc165c8e4325700faf",
        "urn:li:dataPlatformInstance:(urn:li:dataPlatform:airflow,ops)",
        "urn:li:tag:名前",
        "urn:li:corpuser:jdoe",
        "urn:li:corpGroup:team%2C1",
        "urn:li:container:abc",
    ],
)
def test_parse_then_str_is_identity(text: str) -> None:
    assert str(u.parse_urn(text)) == text
    assert u.parse_urn(text).urn() == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "urn:li:",
        "urn:li:tag",
        "urn:li:tag:",
        "urn:xx:tag:a",
        " urn:li:tag:a",
        "urn:li:tag:a ",
        "urn:li:dataset:(urn:li:dataPlatform:hive,t)",
        "urn:li:dataset:(urn:li:dataPlatform:hive,,PROD)",
        "urn:li:dataset:(hive,t,PROD)",
        "urn:li:dataJob:(urn:li:dataset:(urn:li:dataPlatform:h,t,PROD),t)",
        "urn:li:dataFlow:(airflow,(d,prod)",
        "urn:li:dataFlow:(airflow,d),prod)",
    ],
)
def test_parse_refuses_malformed_urns(text: str) -> None:
    with pytest.raises(InvalidUrnError) as info:
        u.parse_urn(text)
    assert info.value.field == "urn"


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(InvalidUrnError):
        u.parse_urn(None)  # type: ignore[arg-type]


def test_typed_from_string_checks_the_entity_type() -> None:
    with pytest.raises(InvalidUrnError, match="expected a dataJob urn"):
        u.DataJobUrn.from_string("urn:li:dataFlow:(airflow,d,prod)")
    assert (
        u.DataJobUrn.create_from_string("urn:li:dataJob:(urn:li:dataFlow:(a,d,p),t)").job_id == "t"
    )


def test_quote_urn_encodes_everything_for_a_rest_path() -> None:
    assert u.quote_urn("urn:li:tag:a b/c") == "urn%3Ali%3Atag%3Aa%20b%2Fc"
