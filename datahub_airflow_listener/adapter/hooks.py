"""Airflow connection hooks ``datahub-rest`` and ``datahub-file``.

Each hook does one thing: turn its Airflow connection into the plain settings dict that the
transport registry builds a transport from (``create_transport(kind, settings)``, kind =
the connection type). The conversion itself is two pure functions,
:func:`rest_config_from_fields` and :func:`file_config_from_fields`, so it is tested without
any Airflow connection store; :func:`transport_config_for` picks one by connection type.

``datahub-rest`` (default id ``datahub_rest_default``):

* host: ``datahub-gms``, ``datahub-gms:8080``, ``http://datahub-gms:8080`` or
  ``https://acme.acryl.io/gms``; no scheme means ``http``; the Port field is used only when the
  host has none.
* password: the DataHub access token (optional).
* extra (JSON): ``timeout_sec`` (> 0), ``retry_max_times`` (>= 0), ``extra_headers``
  (object of strings), ``disable_ssl_verification`` (bool; verification is on by default),
  ``ca_certificate_path`` (a CA bundle). A bad value is dropped with one warning naming it.

``datahub-file``: the output path in the host field (as the official plugin), or in the URI's
path (``datahub-file:///tmp/out.json``); settings ``{"filename": path}``.

The token travels in the settings under ``token`` (the transport needs it) and nowhere else: it
is registered with Airflow's secrets masker when available, and :func:`redacted` is the only
form of the settings that may be logged.

Where the connection is resolved: :func:`datahub_airflow_listener.adapter.compat.get_connection`.

DAG code written for the official plugin also finds its hook names and methods here:
``emit(items)`` (``emit_mces``, ``emit_mcps``) and ``make_emitter()`` send through the outbox
(:mod:`.emitter`); ``DatahubGenericHook`` / ``DatahubCompositeHook`` pick the hook by the
connection's type; ``SynchronizedFileHook`` is the official name of the file hook;
``DatahubKafkaHook`` imports, and raises one clear error when used (no Kafka here).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from datahub_airflow_listener.adapter import compat
from datahub_airflow_listener.adapter.ui_fields import FILE_UI_BEHAVIOUR, REST_UI_BEHAVIOUR

if TYPE_CHECKING:
    from datahub_airflow_listener.adapter.emitter import ConnectionEmitter

log = logging.getLogger(__name__)

__all__ = [
    "DatahubCompositeHook",
    "DatahubFileHook",
    "DatahubGenericHook",
    "DatahubKafkaHook",
    "DatahubRestHook",
    "SynchronizedFileHook",
    "HOOK_CLASSES",
    "ConnectionConfigError",
    "file_config_from_fields",
    "redacted",
    "rest_config_from_fields",
    "transport_config_for",
]

REST_CONN_TYPE: Final = "datahub-rest"
FILE_CONN_TYPE: Final = "datahub-file"
KAFKA_CONN_TYPE: Final = "datahub-kafka"
KAFKA_UNSUPPORTED: Final = (
    "datahub-airflow-listener sends to DataHub over REST (a datahub-rest connection) or to a "
    "file (datahub-file), not through Kafka: point the connection id at a datahub-rest "
    "connection to the GMS"
)
_REST_EXTRA_KEYS: Final = frozenset(
    {
        "timeout_sec",
        "retry_max_times",
        "extra_headers",
        "disable_ssl_verification",
        "ca_certificate_path",
    }
)


class ConnectionConfigError(ValueError):
    """A connection that cannot become a transport config (e.g. no host)."""


# -- pure conversion ------------------------------------------------------------------------------


def _server_url(host: str, port: int | None) -> str:
    text = host.strip()
    if not text:
        raise ConnectionConfigError("the connection has no host (the DataHub GMS URL)")
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"}:
        raise ConnectionConfigError(f"unsupported scheme {parts.scheme!r} (use http or https)")
    if not parts.hostname:
        raise ConnectionConfigError("the connection's host has no server name")
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
        return value.strip().lower() in {"true", "1"}
    raise ValueError("expected true or false")


def _as_headers(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        import json

        value = json.loads(value)
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("expected an object of string header values")
    return dict(value)


def _positive(value: Any) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("expected a positive number")
    return number


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    number = int(value)
    if number < 0:
        raise ValueError("expected an integer >= 0")
    return number


_REST_EXTRA_PARSERS: Final = {
    "timeout_sec": _positive,
    "retry_max_times": _non_negative_int,
    "extra_headers": _as_headers,
    "disable_ssl_verification": _as_bool,
    "ca_certificate_path": lambda v: str(v) if str(v).strip() else None,
}


def rest_config_from_fields(
    fields: compat.ConnectionFields, default_token: str | None = None
) -> dict[str, Any]:
    """The ``datahub-rest`` transport settings of a connection. Raises ConnectionConfigError.

    ``default_token`` (``[datahub] token``) is the token when the connection has no password.
    """
    config: dict[str, Any] = {"server": _server_url(fields.host or "", fields.port)}
    token = fields.password or default_token
    if token:
        config["token"] = token
        _mask(token)
    for key, value in fields.extra.items():
        if key not in _REST_EXTRA_KEYS:
            log.warning(
                "datahub-airflow-listener: connection %r: unknown extra key %r is ignored",
                fields.conn_id,
                key,
            )
            continue
        if value is None or value == "":
            continue
        try:
            parsed = _REST_EXTRA_PARSERS[key](value)
        except (TypeError, ValueError) as exc:
            log.warning(
                "datahub-airflow-listener: connection %r: extra %r is invalid (%s); "
                "using the default",
                fields.conn_id,
                key,
                exc,
            )
            continue
        if parsed is not None:
            config[key] = parsed
    return config


def file_config_from_fields(fields: compat.ConnectionFields) -> dict[str, Any]:
    """The ``datahub-file`` transport settings of a connection. Raises ConnectionConfigError."""
    path = (fields.host or "").strip()
    if not path and fields.schema:
        path = "/" + fields.schema.lstrip("/")  # datahub-file:///abs/path.json
    if not path:
        raise ConnectionConfigError("the connection has no host (the output file path)")
    return {"filename": path}


def transport_config_for(
    fields: compat.ConnectionFields, default_token: str | None = None
) -> tuple[str, dict[str, Any]]:
    """``(kind, settings)`` for the transport registry. ConnectionConfigError for other types.

    A connection given as a URI arrives as ``datahub_rest`` (Airflow turns ``-`` into ``_``
    in URI schemes); both spellings are accepted. ``default_token``: see
    :func:`rest_config_from_fields`.
    """
    conn_type = (fields.conn_type or "").replace("_", "-").lower()
    if conn_type == REST_CONN_TYPE:
        return REST_CONN_TYPE, rest_config_from_fields(fields, default_token)
    if conn_type == FILE_CONN_TYPE:
        return FILE_CONN_TYPE, file_config_from_fields(fields)
    if conn_type == KAFKA_CONN_TYPE:
        raise ConnectionConfigError(KAFKA_UNSUPPORTED)
    raise ConnectionConfigError(
        f"connection {fields.conn_id!r} has type {fields.conn_type!r}; "
        f"expected {REST_CONN_TYPE} or {FILE_CONN_TYPE}"
    )


def redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a transport config that is safe to log (token and headers hidden)."""
    safe = dict(config)
    if safe.get("token"):
        safe["token"] = "***"  # noqa: S105 -- the mask, not a password
    if isinstance(safe.get("extra_headers"), Mapping):
        safe["extra_headers"] = {k: "***" for k in safe["extra_headers"]}
    return safe


def _without(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _mask(secret: str) -> None:
    """Register the token with Airflow's log masker (best effort; never raises)."""
    import importlib

    try:
        for module in ("airflow.sdk.log", "airflow.utils.log.secrets_masker"):
            try:
                importlib.import_module(module).mask_secret(secret)
                return
            except (ImportError, AttributeError):
                continue
    except Exception:
        log.debug("could not register the token with the secrets masker", exc_info=True)


# -- hooks -----------------------------------------------------------------------------------------

_BaseHook: Any = compat.base_hook_class()


class DatahubRestHook(_BaseHook):  # type: ignore[misc]
    """Connection type ``datahub-rest``: a DataHub GMS reached over Rest.li."""

    conn_name_attr = "datahub_rest_conn_id"
    default_conn_name = "datahub_rest_default"
    conn_type = REST_CONN_TYPE
    hook_name = "DataHub REST Server (listener)"

    def __init__(self, datahub_rest_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datahub_rest_conn_id = datahub_rest_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return copy.deepcopy(REST_UI_BEHAVIOUR)

    def transport_config(self) -> dict[str, Any]:
        """This connection as ``datahub-rest`` transport settings."""
        from datahub_airflow_listener.adapter.config import get_config

        fields = compat.get_connection(self.datahub_rest_conn_id)
        return rest_config_from_fields(fields, get_config().token)

    def _get_config(self) -> tuple[str, str | None, float | None]:
        """(server, token, timeout) of the connection, as the official hook's method gives."""
        settings = self.transport_config()
        return settings["server"], settings.get("token"), settings.get("timeout_sec")

    def make_emitter(self) -> ConnectionEmitter:
        """An emitter to this connection through the outbox (:mod:`.emitter`)."""
        return _emitter(self.datahub_rest_conn_id)

    def make_graph(self) -> Any:
        raise NotImplementedError(GRAPH_UNSUPPORTED)

    def emit(self, items: Sequence[Any]) -> None:
        """Send MCPs (this package's, acryl-datahub's, MetadataChangeEvents); raises
        :class:`~.emitter.EmitError` if DataHub refused one or it could not be delivered."""
        self.make_emitter().emit_mcps(items)

    emit_mces = emit
    emit_mcps = emit

    def test_connection(self) -> tuple[bool, str]:
        """The form's Test button: ``GET /config`` on the server, with a clear message.

        Says whether the address is a GMS (not DataHub's frontend) and whether the token is
        accepted; the message never contains the token.
        """
        try:
            settings = self.transport_config()
        except Exception as exc:
            return False, f"Invalid connection: {exc}"
        transport: Any = None
        try:
            from datahub_airflow_listener.transport import create_transport

            transport = create_transport(REST_CONN_TYPE, settings)
            ok, message = transport.test_connection()
        except Exception as exc:
            return False, _without(f"{type(exc).__name__}: {exc}", settings.get("token"))
        finally:
            if transport is not None:
                transport.close()
        return bool(ok), _without(str(message), settings.get("token"))


class DatahubFileHook(_BaseHook):  # type: ignore[misc]
    """Connection type ``datahub-file``: DataHub's file format (a JSON array of MCPs)."""

    conn_name_attr = "datahub_file_conn_id"
    default_conn_name = "datahub_file_default"
    conn_type = FILE_CONN_TYPE
    hook_name = "DataHub File (listener)"

    def __init__(self, datahub_file_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datahub_file_conn_id = datahub_file_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return copy.deepcopy(FILE_UI_BEHAVIOUR)

    def transport_config(self) -> dict[str, Any]:
        """This connection as ``datahub-file`` transport settings."""
        fields = compat.get_connection(self.datahub_file_conn_id)
        return file_config_from_fields(fields)

    def make_emitter(self) -> ConnectionEmitter:
        return _emitter(self.datahub_file_conn_id)

    def emit(self, items: Sequence[Any]) -> None:
        """Append MCPs to the file (through the outbox, like every event)."""
        self.make_emitter().emit_mcps(items)

    emit_mces = emit
    emit_mcps = emit

    def test_connection(self) -> tuple[bool, str]:
        """Check that the output file's directory exists and is writable."""
        import os

        try:
            path = self.transport_config()["filename"]
        except Exception as exc:
            return False, f"Invalid connection: {exc}"
        directory = os.path.dirname(os.path.abspath(path)) or "."
        if not os.path.isdir(directory):
            return False, f"Directory {directory} does not exist"
        if not os.access(directory, os.W_OK):
            return False, f"Directory {directory} is not writable"
        return True, f"Will write DataHub's file format to {path}"


class SynchronizedFileHook(DatahubFileHook):
    """The official plugin's name for the ``datahub-file`` hook (``datahub_conn_id``)."""

    def __init__(self, datahub_conn_id: str = DatahubFileHook.default_conn_name) -> None:
        super().__init__(datahub_file_conn_id=datahub_conn_id)
        self.datahub_conn_id = datahub_conn_id


class DatahubKafkaHook(_BaseHook):  # type: ignore[misc]
    """The official plugin's Kafka hook, kept so DAG code that names it still imports; this
    package does not send through Kafka, so every use raises one clear error."""

    conn_name_attr = "datahub_kafka_conn_id"
    default_conn_name = "datahub_kafka_default"
    conn_type = KAFKA_CONN_TYPE
    hook_name = "DataHub Kafka Sink (not supported by datahub-airflow-listener)"

    def __init__(self, datahub_kafka_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.datahub_kafka_conn_id = datahub_kafka_conn_id

    def make_emitter(self) -> Any:
        raise NotImplementedError(KAFKA_UNSUPPORTED)

    def emit(self, items: Sequence[Any]) -> None:
        raise NotImplementedError(KAFKA_UNSUPPORTED)

    emit_mces = emit
    emit_mcps = emit


class DatahubGenericHook(_BaseHook):  # type: ignore[misc]
    """The hook for a connection of either type, chosen as the official plugin chooses: by
    the connection's type, else by its id (``...rest...`` / ``...kafka...``)."""

    def __init__(self, datahub_conn_id: str) -> None:
        super().__init__()
        self.datahub_conn_id = datahub_conn_id

    def get_underlying_hook(self) -> Any:
        fields = compat.get_connection(self.datahub_conn_id)
        conn_type = (fields.conn_type or "").replace("_", "-").lower()
        if conn_type == REST_CONN_TYPE:
            return DatahubRestHook(self.datahub_conn_id)
        if conn_type == FILE_CONN_TYPE:
            return SynchronizedFileHook(self.datahub_conn_id)
        if conn_type == KAFKA_CONN_TYPE:
            return DatahubKafkaHook(self.datahub_conn_id)
        if "rest" in self.datahub_conn_id:
            return DatahubRestHook(self.datahub_conn_id)
        if "kafka" in self.datahub_conn_id:
            return DatahubKafkaHook(self.datahub_conn_id)
        raise ConnectionConfigError(
            f"connection {self.datahub_conn_id!r} has type {fields.conn_type!r}; "
            f"expected {REST_CONN_TYPE} or {FILE_CONN_TYPE}"
        )

    def make_emitter(self) -> Any:
        return self.get_underlying_hook().make_emitter()

    def emit(self, items: Sequence[Any]) -> None:
        self.get_underlying_hook().emit(items)

    emit_mces = emit


class DatahubCompositeHook(_BaseHook):  # type: ignore[misc]
    """Emits to several connections, one after the other (each as :class:`DatahubGenericHook`)."""

    def __init__(self, datahub_conn_ids: Sequence[str]) -> None:
        super().__init__()
        self.datahub_conn_ids = list(datahub_conn_ids)

    def emit(self, items: Sequence[Any]) -> None:
        listed = list(items)
        for conn_id in self.datahub_conn_ids:
            DatahubGenericHook(conn_id).emit(listed)


GRAPH_UNSUPPORTED: Final = (
    "make_graph() returns acryl-datahub's DataHubGraph, which datahub-airflow-listener does "
    "not ship; install acryl-datahub and build DataHubGraph from the connection yourself"
)


def _emitter(conn_id: str) -> ConnectionEmitter:
    from datahub_airflow_listener.adapter.emitter import ConnectionEmitter

    return ConnectionEmitter(conn_id)


HOOK_CLASSES: Final[dict[str, type]] = {
    REST_CONN_TYPE: DatahubRestHook,
    FILE_CONN_TYPE: DatahubFileHook,
}
