"""What a command reads: the ``[datahub]`` settings, the local store, or a GMS reader.

Only :func:`settings` imports Airflow (its configuration); a command given ``--store`` or
``--server`` never calls it.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from datahub_airflow_listener.cli import CliError

if TYPE_CHECKING:
    from datahub_airflow_listener.adapter.config import DatahubConfig
    from datahub_airflow_listener.domain.runs import RunMapper
    from datahub_airflow_listener.transport.gms_read import GmsReader
    from datahub_airflow_listener.transport.local import LocalStore

__all__ = ["TOKEN_ENV", "gms", "local_store", "mapper", "settings", "urn_of"]

log = logging.getLogger(__name__)

TOKEN_ENV = "DATAHUB_GMS_TOKEN"  # noqa: S105 -- the NAME of the variable holding the token


def settings() -> tuple[DatahubConfig, list[str]]:
    """The ``[datahub]`` config as the listener reads it (imports Airflow's configuration)."""
    try:
        from datahub_airflow_listener.adapter.operate import load_settings
    except ImportError as exc:
        raise CliError(
            f"this command reads the Airflow configuration, but Airflow cannot be imported ({exc})"
        ) from None
    return load_settings()


def local_store(args: argparse.Namespace) -> tuple[LocalStore, str | None]:
    """The local store (``--store DIR`` or the config's ``outbox_path``); must already exist."""
    from datahub_airflow_listener.transport.local import LocalConfig, LocalStore

    platform_instance = None
    if args.store:
        directory = Path(args.store).expanduser()
    else:
        from datahub_airflow_listener.adapter.operate import local_store_dir

        config, _ = settings()
        directory = local_store_dir(config)
        platform_instance = config.platform_instance
    store = LocalStore(LocalConfig(directory=str(directory)))
    if not store.path.exists():
        raise CliError(
            f"no local store at {store.path}: the plugin writes there only while no DataHub "
            "connection is configured (or give --store DIR)"
        )
    return store, platform_instance


def gms(args: argparse.Namespace) -> tuple[GmsReader, str, str | None]:
    """A GMS reader, and the cluster/platform instance of this deployment's urns."""
    from datahub_airflow_listener.transport.gms_read import GmsReader
    from datahub_airflow_listener.transport.rest import RestConfig

    if args.server:
        try:
            config = RestConfig.from_dict(
                {"server": args.server, "token": os.environ.get(TOKEN_ENV) or None}
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return GmsReader(config), args.cluster or "prod", args.platform_instance
    from datahub_airflow_listener.adapter.operate import rest_config_for

    deployment, _ = settings()
    rest = rest_config_for(deployment, args.conn)
    return (
        GmsReader(rest),
        args.cluster or deployment.cluster,
        args.platform_instance or deployment.platform_instance,
    )


def mapper(cluster: str, platform_instance: str | None) -> RunMapper:
    """The urn builder of this deployment's DataFlows and DataJobs."""
    from datahub_airflow_listener.domain.runs import RunMapper

    return RunMapper(cluster=cluster, platform_instance=platform_instance)


def urn_of(build: Callable[..., str], *parts: str) -> str:
    """``build(*parts)``, a DAG or task id that DataHub cannot hold being the user's error."""
    try:
        return build(*parts)
    except ValueError as exc:  # InvalidUrnError
        raise CliError(str(exc)) from None
