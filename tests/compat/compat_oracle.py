"""acryl-datahub as a test oracle: parse, validate and compare what this package produces.

Comparison rule ("no field dropped"): parse our wire MCP with acryl-datahub, serialize it back
with acryl-datahub, and require the result to equal ours once fields holding their schema
default are removed from BOTH sides (acryl-datahub writes defaults we leave out, such as a run
event's ``partitionSpec``). A field we send that the oracle does not know, or changes, shows
up as a difference. Keys must also come in the schema's order (what golden files rely on).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from avro.schema import ArraySchema, MapSchema, RecordSchema, Schema, UnionSchema
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import SystemMetadataClass

JSON = dict[str, Any]


def oracle_mcp(wire: JSON) -> MetadataChangeProposalWrapper:
    """acryl-datahub's reading of one wire- or file-form MCP; fails unless it validates."""
    mcpw = MetadataChangeProposalWrapper.from_obj_require_wrapper(copy.deepcopy(wire))
    assert mcpw.validate(), f"acryl-datahub rejects {wire['aspectName']} on {wire['entityUrn']}"
    return mcpw


def _branch(schema: UnionSchema, value: Any) -> tuple[Schema | None, str | None]:
    """The union branch a JSON value uses, and the wrapper key when it is wrapped."""
    branches = [s for s in schema.schemas if s.type != "null"]
    if len(branches) == 1:
        return branches[0], None
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        for b in branches:
            if key in (b.type, getattr(b, "fullname", None), getattr(b, "name", None)):
                return b, key
    return None, None


def normalize(value: Any, schema: Schema) -> Any:
    """``value`` with every record field that holds its schema default removed."""
    if value is None:
        return None
    if isinstance(schema, UnionSchema):
        branch, key = _branch(schema, value)
        if branch is None:
            return value
        if key is None:
            return normalize(value, branch)
        return {key: normalize(value[key], branch)}
    if isinstance(schema, RecordSchema) and isinstance(value, dict):
        out: JSON = {}
        known = {f.name for f in schema.fields}
        for f in schema.fields:
            if f.name not in value:
                continue
            v = normalize(value[f.name], f.type)
            if f.has_default and v == normalize(f.default, f.type):
                continue
            out[f.name] = v
        out.update(
            {k: v for k, v in value.items() if k not in known}
        )  # unknown: kept, so they differ
        return out
    if isinstance(schema, ArraySchema) and isinstance(value, list):
        return [normalize(v, schema.items) for v in value]
    if isinstance(schema, MapSchema) and isinstance(value, dict):
        return {k: normalize(v, schema.values) for k, v in value.items()}
    return value


def schema_order_errors(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Places where ``value``'s keys are not in the order the schema declares its fields."""
    errors: list[str] = []
    if isinstance(schema, UnionSchema):
        branch, key = _branch(schema, value)
        if branch is not None:
            inner = value[key] if key is not None else value
            errors += schema_order_errors(inner, branch, path)
    elif isinstance(schema, RecordSchema) and isinstance(value, dict):
        order = [f.name for f in schema.fields]
        keys = [k for k in value if k in order]
        if keys != sorted(keys, key=order.index):
            errors.append(f"{path or '<root>'}: {keys} (schema: {order})")
        for f in schema.fields:
            if f.name in value:
                errors += schema_order_errors(value[f.name], f.type, f"{path}.{f.name}")
    elif isinstance(schema, ArraySchema) and isinstance(value, list):
        for i, v in enumerate(value):
            errors += schema_order_errors(v, schema.items, f"{path}[{i}]")
    return errors


def our_aspect(wire: JSON) -> JSON:
    aspect = wire["aspect"]
    return aspect["json"] if "json" in aspect else json.loads(aspect["value"])


def assert_round_trips(wire: JSON) -> MetadataChangeProposalWrapper:
    """Accepted by acryl-datahub, nothing dropped or changed, keys in schema order."""
    mcpw = oracle_mcp(wire)
    schema = type(mcpw.aspect).RECORD_SCHEMA
    ours = our_aspect(wire)
    theirs = mcpw.aspect.to_obj()
    assert normalize(ours, schema) == normalize(theirs, schema), (
        f"{wire['aspectName']}: ours {ours} != acryl-datahub {theirs}"
    )
    assert schema_order_errors(ours, schema) == []
    assert mcpw.entityUrn == wire["entityUrn"]
    assert mcpw.entityType == wire["entityType"]
    assert mcpw.aspectName == wire["aspectName"]
    assert mcpw.changeType == wire["changeType"]
    sm_schema = SystemMetadataClass.RECORD_SCHEMA
    assert mcpw.systemMetadata is not None
    assert normalize(wire["systemMetadata"], sm_schema) == normalize(
        mcpw.systemMetadata.to_obj(), sm_schema
    )
    return mcpw


def check_metadata_file(path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``datahub check metadata-file`` (the oracle CLI beside this interpreter) on ``path``."""
    env = {
        **os.environ,
        "DATAHUB_TELEMETRY_ENABLED": "false",
        "DATAHUB_SUPPRESS_LOGGING_MANAGER": "1",
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("datahub")), "check", "metadata-file", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
