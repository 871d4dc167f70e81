"""A task's inlet/outlet annotations -> (inputs, outputs, upstream jobs, warnings)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from datahub_airflow_listener import entities
from datahub_airflow_listener.domain import urns as u
from datahub_airflow_listener.domain.lineage import (
    DatasetPattern,
    TaskLineage,
    Unresolved,
    normalize_annotations,
    parse_entity_repr,
)

PG = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.src,PROD)"
S3 = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/out,PROD)"
MODEL = "urn:li:mlModel:(urn:li:dataPlatform:mlflow,churn,PROD)"
FLOW = "urn:li:dataFlow:(airflow,other_dag,prod)"
JOB = f"urn:li:dataJob:({FLOW},publish)"


def run(inlets: Any = (), outlets: Any = (), **kw: Any) -> TaskLineage:
    return normalize_annotations("etl.load", inlets, outlets, **kw)


# -- every accepted form --------------------------------------------------------------------------


def test_urn_strings_go_where_they_belong() -> None:
    lineage = run([PG, MODEL, JOB], [S3])
    assert lineage == TaskLineage(
        inlets=(PG, MODEL), outlets=(S3,), upstream_jobs=(JOB,), warnings=()
    )


def test_urn_strings_are_stripped() -> None:
    assert run([f"  {PG}\n"]).inlets == (PG,)


def test_package_entities() -> None:
    lineage = run(
        [entities.Dataset("postgres", "db.public.src"), entities.Urn(JOB)], [entities.Urn(S3)]
    )
    assert lineage.inlets == (PG,)
    assert lineage.upstream_jobs == (JOB,)
    assert lineage.outlets == (S3,)
    assert lineage.warnings == ()


def test_entity_env_and_platform_instance_are_kept() -> None:
    lineage = run([entities.Dataset("hive", "db.t", env="DEV", platform_instance="eu")])
    assert lineage.inlets == ("urn:li:dataset:(urn:li:dataPlatform:hive,eu.db.t,DEV)",)


@attrs.frozen
class CallableUrn:
    """Something whose ``urn`` is a method (the domain's Urn objects have ``urn()``)."""

    value: str

    def urn(self) -> str:
        return self.value


def test_objects_with_a_urn_method_and_domain_urn_objects() -> None:
    lineage = run([CallableUrn(PG), u.parse_urn(MODEL)], [u.DatasetUrn.create("s3", "bucket/out")])
    assert lineage.inlets == (PG, MODEL)
    assert lineage.outlets == (S3,)


def test_asset_uri_strings_are_mapped_with_the_env() -> None:
    lineage = run(["postgres://h:5432/db/public/src"], ["s3://bucket/out"], env="DEV")
    assert lineage.inlets == ("urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.src,DEV)",)
    assert lineage.outlets == ("urn:li:dataset:(urn:li:dataPlatform:s3,bucket/out,DEV)",)
    assert lineage.warnings == ()


def test_serialized_entity_reprs_are_read_back() -> None:
    # What Airflow's DAG serializer leaves of entities (str() of the object).
    ours = str(entities.Dataset("postgres", "db.public.src"))
    ours_urn = str(entities.Urn(JOB))
    official_urn = f"Urn(_urn='{S3}')"
    lineage = run([ours, ours_urn], [official_urn])
    assert lineage.inlets == (PG,)
    assert lineage.upstream_jobs == (JOB,)
    assert lineage.outlets == (S3,)
    assert lineage.warnings == ()


@pytest.mark.parametrize(
    ("text", "urn"),
    [
        ("Dataset(platform='s3', name='bucket/out', env='PROD', platform_instance=None)", S3),
        ("Dataset('s3', 'bucket/out')", S3),
        (
            "Dataset(platform='hive', name='t', env='DEV', platform_instance='x')",
            "urn:li:dataset:(urn:li:dataPlatform:hive,x.t,DEV)",
        ),
        (f"Urn(value='{JOB}')", JOB),
        ("Dataset(platform=__import__('os').system('true'), name='x')", None),
        ("Dataset(platform='s3')", None),
        ("Dataset(platform='s3', name='x', colour='red')", None),
        ("Urn('a', 'b')", None),
        ("Urn(1)", None),
        ("Dataset(", None),
        ("not a repr", None),
    ],
)
def test_parse_entity_repr(text: str, urn: str | None) -> None:
    assert parse_entity_repr(text) == urn


def test_a_single_bare_value_is_a_list_of_one() -> None:
    assert run(PG, S3) == TaskLineage((PG,), (S3,), (), ())


def test_none_means_no_annotations() -> None:
    assert run(None, None) == TaskLineage((), (), (), ())


def test_duplicates_are_dropped_and_order_kept() -> None:
    lineage = run([S3, PG, S3, entities.Dataset("postgres", "db.public.src")])
    assert lineage.inlets == (S3, PG)


# -- malformed items: one warning each, naming the task and the value; the rest is kept -----------


class Boom:
    @property
    def urn(self) -> str:
        raise RuntimeError("kaboom")

    def __repr__(self) -> str:
        return "Boom()"


class NotStr:
    urn = 42

    def __repr__(self) -> str:
        return "NotStr()"


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        ("urn:li:dataset:(urn:li:dataPlatform:s3,missing-env)", "missing-env"),
        ("urn:li:dataset:(urn:li:dataPlatform:s3,x,NOT_A_FABRIC)", "NOT_A_FABRIC"),
        ("urn:li:", "urn:li:"),
        ("s3://", "s3://"),
        (42, "42"),
        (None, "None"),
        (b"bytes", "b'bytes'"),
        (object(), "object"),
        ({"a": 1}, "{'a': 1}"),
        (Boom(), "Boom()"),
        (NotStr(), "NotStr()"),
        (Unresolved(shown="Asset.ref(name='n')", reason="only the name"), "Asset.ref(name='n')"),
        ("urn:li:corpuser:alice", "urn:li:corpuser:alice"),
        (FLOW, FLOW),
    ],
)
def test_a_malformed_inlet_gets_one_warning_and_the_rest_is_kept(bad: object, shown: str) -> None:
    lineage = run([PG, bad, MODEL], [S3])
    assert lineage.inlets == (PG, MODEL)
    assert lineage.outlets == (S3,)
    assert len(lineage.warnings) == 1
    (warning,) = lineage.warnings
    assert warning.startswith("task etl.load: inlet ")
    assert shown in warning
    assert "ignored" in warning


def test_a_datajob_among_outlets_is_reported_not_used() -> None:
    lineage = run([], [JOB, S3])
    assert lineage.upstream_jobs == ()
    assert lineage.outlets == (S3,)
    assert len(lineage.warnings) == 1
    assert "outlet" in lineage.warnings[0]
    assert JOB in lineage.warnings[0]


def test_unknown_scheme_is_kept_and_warned_about() -> None:
    lineage = run(["iceberg://cat/db/t"])
    assert lineage.inlets == ("urn:li:dataset:(urn:li:dataPlatform:iceberg,cat/db/t,PROD)",)
    assert len(lineage.warnings) == 1
    assert "iceberg" in lineage.warnings[0]
    assert "etl.load" in lineage.warnings[0]


def test_a_long_value_is_shortened_in_the_warning() -> None:
    lineage = run(["urn:li:" + "x" * 5000])
    assert len(lineage.warnings) == 1
    assert len(lineage.warnings[0]) < 400


def test_unreadable_annotation_list_is_one_warning() -> None:
    class Exploding:
        def __iter__(self) -> Any:
            raise RuntimeError("no")

    lineage = normalize_annotations("etl.load", Exploding(), [S3])
    assert lineage.outlets == (S3,)
    assert len(lineage.warnings) == 1
    assert "inlets" in lineage.warnings[0]


# -- dataset_pattern ------------------------------------------------------------------------------


def test_dataset_pattern_drops_denied_datasets_silently() -> None:
    pattern = DatasetPattern(deny=["s3:.*"])
    lineage = run([PG, MODEL, JOB], [S3], dataset_pattern=pattern)
    assert lineage.inlets == (PG, MODEL)
    assert lineage.outlets == ()
    assert lineage.upstream_jobs == (JOB,)
    assert lineage.warnings == ()


def test_dataset_pattern_allow_list_matches_platform_and_name() -> None:
    pattern = DatasetPattern(allow=["postgres:db\\.public\\..*"])
    lineage = run(
        ["postgres://h/db/public/a", "postgres://h/db/private/b"], [S3], dataset_pattern=pattern
    )
    assert lineage.inlets == ("urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.a,PROD)",)
    assert lineage.outlets == ()


def test_any_object_with_allowed_is_a_pattern() -> None:
    class OnlyS3:
        def allowed(self, value: str) -> bool:
            return value.startswith("s3:")

    assert run([PG], [S3], dataset_pattern=OnlyS3()) == TaskLineage((), (S3,), (), ())
