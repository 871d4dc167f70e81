"""Property-based tests for urn escaping: parse(build(x)) round-trips, nothing reserved leaks."""

from __future__ import annotations

import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from datahub_airflow_listener.domain import urns as u
from datahub_airflow_listener.domain.errors import InvalidUrnError
from tests.unit.domain.domain_strategies import RESERVED, airflow_id, part

_DECODE = {"%2C": ",", "%28": "(", "%29": ")", "%E2%90%9F": "\u241f"}


def _decode(encoded: str) -> str:
    for seq, ch in _DECODE.items():
        encoded = encoded.replace(seq, ch)
    return encoded


def _no_reserved(*parts: str) -> bool:
    return not any(ch in p for p in parts for ch in RESERVED)


def _java_len(urn: str) -> int:
    """Java's URLEncoder length: like quote_plus with '*' safe, but '~' encoded too."""
    return len(urllib.parse.quote_plus(urn, safe="*").replace("~", "%7E"))


# Without '%' a value decodes unambiguously; an existing urn would be taken as is, not as a name.
percent_free_part = part.filter(lambda s: "%" not in s and not s.startswith("urn:li:"))


@given(name=percent_free_part, platform=percent_free_part)
def test_dataset_round_trip(name: str, platform: str) -> None:
    urn = u.make_dataset_urn(platform, name)
    parsed = u.parse_urn(urn)
    assert isinstance(parsed, u.DatasetUrn)
    assert str(parsed) == urn
    platform_name = u.DataPlatformUrn.from_string(parsed.platform).platform_name
    assert _decode(parsed.name) == name
    assert _decode(platform_name) == platform
    assert _no_reserved(parsed.name, platform_name)


@given(flow_id=percent_free_part, cluster=percent_free_part, job_id=percent_free_part)
def test_flow_and_job_round_trip(flow_id: str, cluster: str, job_id: str) -> None:
    flow = u.make_data_flow_urn("airflow", flow_id, cluster)
    try:
        job_urn = u.make_data_job_urn(flow, job_id)
    except InvalidUrnError as exc:  # the flow urn is nested: long unicode parts may not fit
        assert exc.field == "job_id"
        assert _java_len(f"urn:li:dataJob:({flow},{u.encode_part(job_id, 'j')})") > 512
        return
    job = u.parse_urn(job_urn)
    assert isinstance(job, u.DataJobUrn)
    assert str(job.flow_urn) == flow
    assert _decode(job.flow_urn.flow_id) == flow_id
    assert _decode(job.flow_urn.cluster) == cluster
    assert _decode(job.job_id) == job_id
    assert _no_reserved(job.job_id, job.flow_urn.flow_id, job.flow_urn.cluster)


@given(value=percent_free_part, kind=st.sampled_from(["tag", "user", "group", "platform"]))
def test_one_part_round_trip(value: str, kind: str) -> None:
    build = {
        "tag": u.make_tag_urn,
        "user": u.make_user_urn,
        "group": u.make_group_urn,
        "platform": u.make_data_platform_urn,
    }[kind]
    urn = build(value)
    parsed = u.parse_urn(urn)
    assert str(parsed) == urn
    assert len(parsed.parts) == 1
    assert _decode(parsed.parts[0]) == value
    assert _no_reserved(parsed.parts[0])


@given(value=st.text(min_size=1, max_size=40))
def test_encode_part_leaves_nothing_reserved_and_only_touches_reserved(value: str) -> None:
    try:
        encoded = u.encode_part(value, "f")
    except InvalidUrnError as exc:
        assert exc.field == "f"
        assert value != value.strip() or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        return
    assert _no_reserved(encoded)
    escapes = {",": "%2C", "(": "%28", ")": "%29", "\u241f": "%E2%90%9F"}
    assert encoded == "".join(escapes.get(c, c) for c in value)


@settings(max_examples=60)
@given(value=st.one_of(st.text(max_size=600), st.none(), st.integers(), st.binary(max_size=4)))
def test_builders_return_a_valid_urn_or_raise_the_typed_error(value: object) -> None:
    """Never another exception, never a truncated value, never an overlong urn."""
    for build, field in (
        (lambda v: u.make_dataset_urn("hive", v), "name"),
        (lambda v: u.make_data_flow_urn("airflow", v, "prod"), "flow_id"),
        (u.make_tag_urn, "tag"),
    ):
        try:
            urn = build(value)
        except InvalidUrnError as exc:
            assert exc.field == field
            continue
        assert isinstance(value, str)
        assert _java_len(urn) <= u.MAX_URN_LENGTH
        assert u.encode_part(value, field) in urn


@given(dag_id=airflow_id, run_id=st.text(min_size=1, max_size=80))
def test_process_instance_urns_are_deterministic_and_well_formed(dag_id: str, run_id: str) -> None:
    a = u.make_data_process_instance_urn("airflow", "prod", f"{dag_id}_{run_id}")
    b = u.make_data_process_instance_urn("airflow", "prod", f"{dag_id}_{run_id}")
    assert a == b
    parsed = u.parse_urn(a)
    assert isinstance(parsed, u.DataProcessInstanceUrn)
    assert len(parsed.id) == 32
    assert int(parsed.id, 16) >= 0
