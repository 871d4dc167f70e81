"""The dataset_pattern filter: allow/deny regexes on ``<platform>:<name>``."""

from __future__ import annotations

import pytest

from datahub_airflow_listener.domain.lineage import DatasetPattern, dataset_key, filter_urns

PG = "urn:li:dataset:(urn:li:dataPlatform:postgres,db.public.src,PROD)"
S3 = "urn:li:dataset:(urn:li:dataPlatform:s3,bucket/out,PROD)"
JOB = "urn:li:dataJob:(urn:li:dataFlow:(airflow,d,prod),t)"


def test_default_allows_everything() -> None:
    assert filter_urns([PG, S3, JOB], DatasetPattern()) == (PG, S3, JOB)


def test_no_pattern_allows_everything() -> None:
    assert filter_urns([PG, S3], None) == (PG, S3)


def test_deny_wins_over_allow() -> None:
    pattern = DatasetPattern(allow=[".*"], deny=["postgres:db\\.public\\.src"])
    assert filter_urns([PG, S3], pattern) == (S3,)


def test_allow_is_anchored_at_the_start() -> None:
    pattern = DatasetPattern(allow=["bucket"])
    assert filter_urns([S3], pattern) == ()
    assert filter_urns([S3], DatasetPattern(allow=["s3:bucket"])) == (S3,)


def test_case_is_ignored_by_default_and_can_be_respected() -> None:
    assert filter_urns([S3], DatasetPattern(allow=["S3:BUCKET"])) == (S3,)
    assert filter_urns([S3], DatasetPattern(allow=["S3:BUCKET"], ignore_case=False)) == ()


def test_non_dataset_urns_are_never_filtered() -> None:
    assert filter_urns([JOB], DatasetPattern(allow=[], deny=[".*"])) == (JOB,)


@pytest.mark.parametrize(
    ("urn", "key"),
    [
        (PG, "postgres:db.public.src"),
        (S3, "s3:bucket/out"),
        ("urn:li:dataset:(urn:li:dataPlatform:hive,a%2Cb%28c%29,DEV)", "hive:a,b(c)"),
        (JOB, None),
        ("not a urn", None),
    ],
)
def test_dataset_key_is_platform_colon_name_as_written(urn: str, key: str | None) -> None:
    assert dataset_key(urn) == key


def test_bad_regex_fails_when_the_pattern_is_built() -> None:
    import re

    with pytest.raises(re.error):
        DatasetPattern(allow=["("])
