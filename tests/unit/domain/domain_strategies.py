"""Hypothesis strategies shared by the domain tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from datahub_airflow_listener.domain import aspects as a
from datahub_airflow_listener.domain.urns import make_dataset_urn

RESERVED = ",()\u241f"

# Any unicode text a user might type (no lone surrogates: they are not text).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
# A urn part: non-empty, no leading/trailing whitespace, reserved characters likely.
part = st.text(
    st.one_of(st.sampled_from(RESERVED + "%.:/_- "), st.characters(exclude_categories=("Cs",))),
    min_size=1,
    max_size=40,
).filter(lambda s: s == s.strip() and bool(s))

# Airflow ids match [\w.-]+ (unicode word characters); run ids are arbitrary text.
airflow_id = st.from_regex(r"[\w.-]{1,30}", fullmatch=True)
run_id = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
map_index = st.one_of(st.just(-1), st.integers(min_value=0, max_value=10_000))

millis = st.integers(min_value=0, max_value=4_102_444_800_000)
small_map = st.dictionaries(text, text, max_size=4)
dataset_urn = st.builds(
    lambda name: make_dataset_urn("hive", name), part.filter(lambda s: len(s) < 100)
)


def _stamp() -> st.SearchStrategy[a.AuditStamp]:
    return st.builds(a.AuditStamp, time=millis, actor=st.just("urn:li:corpuser:datahub"))


edge = st.builds(
    a.Edge,
    destination_urn=dataset_urn,
    source_urn=st.none() | dataset_urn,
    created=st.none() | _stamp(),
    last_modified=st.none() | _stamp(),
    properties=st.none() | small_map,
)
opt_text = st.none() | text
urns = st.lists(dataset_urn, max_size=3).map(tuple)
fine_grained = st.builds(
    a.FineGrainedLineage,
    upstream_type=st.sampled_from(a.FineGrainedLineageUpstreamType),
    upstreams=st.none() | urns,
    downstream_type=st.sampled_from(a.FineGrainedLineageDownstreamType),
    downstreams=st.none() | urns,
    transform_operation=opt_text,
    confidence_score=st.floats(min_value=0.0, max_value=1.0),
    query=opt_text,
)

process_instance_aspects: st.SearchStrategy[Any] = st.one_of(
    st.builds(
        a.DataProcessInstanceProperties,
        name=text,
        created=_stamp(),
        custom_properties=small_map,
        external_url=opt_text,
        type=st.none() | st.sampled_from(a.DataProcessType),
    ),
    st.builds(
        a.DataProcessInstanceRelationships,
        parent_template=opt_text,
        parent_instance=opt_text,
        upstream_instances=urns,
    ),
    st.builds(
        a.DataProcessInstanceInput,
        inputs=urns,
        input_edges=st.none() | st.lists(edge, max_size=2).map(tuple),
    ),
    st.builds(
        a.DataProcessInstanceOutput,
        outputs=urns,
        output_edges=st.none() | st.lists(edge, max_size=2).map(tuple),
    ),
    st.builds(
        a.DataProcessInstanceRunEvent,
        timestamp_millis=millis,
        status=st.sampled_from(a.DataProcessRunStatus),
        attempt=st.none() | st.integers(min_value=1, max_value=100),
        message_id=opt_text,
        external_url=opt_text,
        duration_millis=st.none() | millis,
        result=st.none()
        | st.builds(a.RunResult, type=st.sampled_from(a.RunResultType), native_result_type=text),
    ),
    st.builds(a.Status, removed=st.booleans()),
    st.builds(a.SubTypes, type_names=st.lists(text, max_size=2).map(tuple)),
    st.builds(a.Container, container=text),
    st.builds(a.DataPlatformInstance, platform=text, instance=opt_text),
)

job_aspects: st.SearchStrategy[Any] = st.one_of(
    st.builds(
        a.DataJobInfo,
        name=text,
        type=st.sampled_from(["COMMAND", "PYTHON", "SQL"]),
        description=opt_text,
        custom_properties=small_map,
        external_url=opt_text,
        flow_urn=opt_text,
        env=st.none() | st.just("PROD"),
        created=st.none() | st.builds(a.TimeStamp, time=millis, actor=opt_text),
    ),
    st.builds(
        a.DataJobInputOutput,
        input_datasets=urns,
        output_datasets=urns,
        input_dataset_edges=st.none() | st.lists(edge, max_size=2).map(tuple),
        input_datajobs=st.none() | urns,
        fine_grained_lineages=st.none() | st.lists(fine_grained, max_size=2).map(tuple),
    ),
    st.builds(
        a.DataTransformLogic,
        transforms=st.lists(
            st.builds(
                a.DataTransform,
                query_statement=st.none()
                | st.builds(
                    a.QueryStatement, value=text, language=st.sampled_from(a.QueryLanguage)
                ),
            ),
            max_size=2,
        ).map(tuple),
    ),
    st.builds(
        a.Ownership,
        owners=st.lists(
            st.builds(a.Owner, owner=text, type=st.sampled_from(a.OwnershipType)), max_size=2
        ).map(tuple),
        last_modified=st.none() | _stamp(),
    ),
    st.builds(
        a.GlobalTags, tags=st.lists(st.builds(a.TagAssociation, tag=text), max_size=2).map(tuple)
    ),
    st.builds(
        a.BrowsePathsV2,
        path=st.lists(st.builds(a.BrowsePathEntry, id=text, urn=opt_text), max_size=2).map(tuple),
    ),
)
