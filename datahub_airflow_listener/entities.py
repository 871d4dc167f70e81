"""Lineage annotations for DAG ``inlets=`` / ``outlets=``: this package's own entity classes.

``Dataset(platform, name, env="PROD", platform_instance=None)`` names a dataset the way DataHub
does; ``Urn("urn:li:...")`` accepts any DataHub urn (a dataJob urn means an upstream job, a
dataset or mlModel urn an input/output). Both expose ``.urn`` (a string), which is all the
listener reads. Building one validates it, so a bad annotation fails where it is written.
"""

from __future__ import annotations

import attrs

from datahub_airflow_listener.domain.urns import make_dataset_urn, parse_urn

__all__ = ["Dataset", "Urn"]


class _Entity:
    """Base of the annotation classes (the official plugin's name, for DAG code that
    subclasses or checks it). The listener needs only a ``urn`` property: any class with one
    is read the same way."""

    @property
    def urn(self) -> str:
        raise NotImplementedError


@attrs.frozen
class Dataset(_Entity):
    platform: str
    name: str
    env: str = "PROD"
    platform_instance: str | None = None

    @property
    def urn(self) -> str:
        return make_dataset_urn(self.platform, self.name, self.env, self.platform_instance)

    def __attrs_post_init__(self) -> None:
        self.urn  # noqa: B018  # validate at DAG-parse time, where the mistake is written

    def __str__(self) -> str:
        # Airflow serializes unknown inlet/outlet objects by str(); the urn survives that.
        return self.urn


@attrs.frozen
class Urn(_Entity):
    value: str

    @property
    def urn(self) -> str:
        return str(parse_urn(self.value))

    @property
    def entity_type(self) -> str:
        return parse_urn(self.value).entity_type

    def __attrs_post_init__(self) -> None:
        parse_urn(self.value)

    def __str__(self) -> str:
        return self.urn
