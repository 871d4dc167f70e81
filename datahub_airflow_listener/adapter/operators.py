"""``DatahubEmitterOperator``: a task that sends the MCPs a DAG built, to one connection.

The constructor of the official plugin's operator: ``mces`` (this package's MCPs; and,
duck-typed, acryl-datahub's MetadataChangeProposalWrappers, MetadataChangeEvents or anything
with ``to_obj()``), ``datahub_conn_id`` and any BaseOperator argument. ``metadata`` (the
``mces``) is a templated field: every string inside the MCPs -- urns, aspect values -- that
holds a Jinja template is rendered with the try's context when the task runs. Delivery goes
through the hook of the connection's type, i.e. the outbox (:mod:`.emitter`); the task fails
when DataHub refuses an MCP or it cannot be delivered (see there).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from datahub_airflow_listener.adapter import compat

log = logging.getLogger(__name__)

__all__ = ["DatahubBaseOperator", "DatahubEmitterOperator"]

_BaseOperator: Any = compat.base_operator_class()
_JINJA_MARKERS: Final = ("{{", "{%", "{#")


class DatahubBaseOperator(_BaseOperator):  # type: ignore[misc]
    """Base of the DataHub operators: holds ``datahub_conn_id`` and its generic hook."""

    ui_color = "#4398c8"

    def __init__(self, *, datahub_conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from datahub_airflow_listener.adapter.hooks import DatahubGenericHook

        self.datahub_conn_id = datahub_conn_id
        self.generic_hook = DatahubGenericHook(datahub_conn_id)


class DatahubEmitterOperator(DatahubBaseOperator):
    """Emits MCPs (or MetadataChangeEvents) to DataHub through ``datahub_conn_id``."""

    template_fields = ("metadata",)

    def __init__(self, mces: list[Any], datahub_conn_id: str, **kwargs: Any) -> None:
        super().__init__(datahub_conn_id=datahub_conn_id, **kwargs)
        self.metadata = mces

    def execute(self, context: Any) -> None:
        from datahub_airflow_listener.domain.foreign import map_strings, proposals_of

        # Airflow renders ``metadata`` itself but leaves objects alone: the strings inside
        # the MCPs are rendered here.
        proposals: list[Any] = [p for item in self.metadata for p in proposals_of(item)]
        if context:
            jinja_env = self.get_template_env()

            def render(text: str) -> str:
                if not any(marker in text for marker in _JINJA_MARKERS):
                    return text
                return str(self.render_template(text, context, jinja_env))

            proposals = [map_strings(p, render) if _templated(p) else p for p in proposals]
        self.generic_hook.get_underlying_hook().emit(proposals)
        log.info(
            "datahub-airflow-listener: %d MCP(s) sent through connection %r",
            len(proposals),
            self.datahub_conn_id,
        )


def _templated(proposal: Any) -> bool:
    """Whether any string of the proposal holds a Jinja marker (cheap: one JSON text)."""
    try:
        text = proposal.to_wire_json(last_observed=0)
    except Exception:
        return True
    return any(marker in text for marker in _JINJA_MARKERS)
