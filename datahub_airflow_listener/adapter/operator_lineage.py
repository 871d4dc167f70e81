"""What an operator reports of its own lineage, read through the OpenLineage provider.

Airflow's operators describe their inputs and outputs to OpenLineage: ``get_openlineage_facets_on_
start`` / ``_on_complete(task_instance)`` / ``_on_failure(...)`` on the operator, or an extractor
registered for its class (the provider's registry, including ``[openlineage] extractors``).
``apache-airflow-providers-openlineage`` is optional: without it (or with ``enable_extractors``
false) nothing here imports anything and nothing is recorded beyond hand-written lineage.

Entry points, all for the task process (never the scheduler), none raising:

* :func:`wanted` ``(task, config) -> bool`` -- cheap: does this task report lineage at all (the
  operator has the methods, or a custom extractor names its class), and is extraction on for it?
* :func:`warm_up` -- import the provider in a background thread while the task runs: the
  import costs about half a second, which the task's own run hides.
* :func:`extract` ``(task, ti, *, failed, timeout) -> Found | None`` -- call the extractor at the
  try's end in a worker thread, waiting at most ``timeout`` seconds; plain values out
  (OpenLineage namespace and name of each dataset, the ``columnLineage`` facet, the SQL).

SQLite: the sqlite provider's hook gives OpenLineage no database information, so its SQL
operators report nothing. When an operator with ``sql`` and a SQLite hook reports nothing,
its SQL is parsed here with the provider's own SQL parser, the database named after the file
(``/data/shop.db`` -> ``shop``), without touching the database.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any, Final

import attrs

from datahub_airflow_listener.adapter.logs import log_once, one_line

log = logging.getLogger(__name__)

__all__ = ["Found", "extract", "provider_installed", "wanted", "warm_up"]

_PROVIDER: Final = "airflow.providers.openlineage"
_METHODS: Final = (
    "get_openlineage_facets_on_start",
    "get_openlineage_facets_on_complete",
    "get_openlineage_facets_on_failure",
)
# The provider's built-in extractors for these classes report only the source code, no data.
_NO_DATA_EXTRACTORS: Final = frozenset({"PythonExtractor", "BashExtractor"})

Dataset = tuple[str, str]  # (OpenLineage namespace, name)
InputField = tuple[str, str, str]  # (namespace, name, field)


@attrs.frozen(kw_only=True)
class Found:
    """An operator's lineage as plain values."""

    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()
    # (output dataset, output column, the input fields it derives from)
    columns: tuple[tuple[Dataset, str, tuple[InputField, ...]], ...] = ()
    sql: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.inputs or self.outputs or self.sql)


# -- cheap checks ---------------------------------------------------------------------------------


@functools.cache
def provider_installed() -> bool:
    """The OpenLineage provider can be imported (looked up, not imported)."""
    try:
        return importlib.util.find_spec(_PROVIDER) is not None
    except (ImportError, ValueError):
        return False


def _class_path(task: Any) -> tuple[str, str]:
    cls = type(task)
    return cls.__name__, f"{cls.__module__}.{cls.__qualname__}"


def disabled_for(task: Any, disabled: Iterable[str]) -> bool:
    """``task``'s class (by name or dotted path) is in ``disabled``."""
    names = set(_class_path(task))
    return any(entry in names for entry in disabled)


def _openlineage_disabled_operators() -> tuple[str, ...]:
    """``[openlineage] disabled_for_operators``: a user who turned OpenLineage off for a
    class did so for a reason (slow, broken); honoured here too."""
    try:
        from airflow.configuration import conf

        text = conf.get("openlineage", "disabled_for_operators", fallback="") or ""
    except Exception:
        return ()
    return tuple(p.strip() for p in text.replace(",", ";").split(";") if p.strip())


def _custom_extractor_classes() -> frozenset[str]:
    """Operator class names that ``[openlineage] extractors`` registers (imports those
    extractors, only when the option is set)."""
    try:
        from airflow.configuration import conf

        text = conf.get("openlineage", "extractors", fallback="") or ""
    except Exception:
        return frozenset()
    if not text.strip():
        return frozenset()
    return _imported_extractor_classes(text)


@functools.cache
def _imported_extractor_classes(text: str) -> frozenset[str]:
    from airflow.utils.module_loading import import_string

    names: set[str] = set()
    for path in (p.strip() for p in text.split(";")):
        if not path:
            continue
        try:
            names.update(import_string(path).get_operator_classnames())
        except Exception as exc:
            log_once(
                log,
                logging.WARNING,
                f"extractor:{path}",
                f"OpenLineage extractor {path!r} could not be loaded: {one_line(exc)}",
            )
    return frozenset(names)


def wanted(task: Any, config: Any) -> bool:
    """Whether ``task``'s operator lineage should be read (cheap; imports nothing heavy)."""
    if task is None or not getattr(config, "enable_extractors", True):
        return False
    if not provider_installed():
        return False
    cls = type(task)
    has_methods = any(callable(getattr(cls, name, None)) for name in _METHODS)
    if not has_methods:
        task_type = getattr(task, "task_type", None) or cls.__name__
        if task_type not in _custom_extractor_classes():
            return False
    disabled = (*getattr(config, "disabled_for_operators", ()), *_openlineage_disabled_operators())
    return not disabled_for(task, disabled)


# -- the provider, imported in the background ----------------------------------------------------

_warm: dict[int, threading.Event] = {}  # pid -> set when the import is done
_warm_lock = threading.Lock()


def _import_provider(done: threading.Event) -> None:
    try:
        importlib.import_module(f"{_PROVIDER}.extractors.manager")
        importlib.import_module(f"{_PROVIDER}.sqlparser")
        _manager()
        import sqlparse  # the provider's SQL splitter: its lexer compiles on first use

        sqlparse.format("SELECT 1", strip_comments=True)
    except Exception:
        log.debug("OpenLineage provider import failed", exc_info=True)
    finally:
        done.set()


def warm_up() -> threading.Event:
    """Import the provider once per process in a daemon thread; the event is set when done."""
    with _warm_lock:
        done = _warm.get(os.getpid())
        if done is None:
            done = _warm[os.getpid()] = threading.Event()
            threading.Thread(
                target=_import_provider, args=(done,), name="datahub-lineage-import", daemon=True
            ).start()
        return done


# -- extraction -----------------------------------------------------------------------------------


def extract(task: Any, ti: Any, *, failed: bool, timeout: float) -> Found | None:
    """The operator's lineage at the try's end, or None (nothing reported, too slow, failed).

    Runs in a daemon thread; after ``timeout`` seconds the task goes on without it (one log
    line) and the thread's late result is dropped.
    """
    label = f"{getattr(task, 'dag_id', '?')}.{getattr(task, 'task_id', '?')}"
    box: list[Found | None] = []
    problem: list[BaseException] = []

    def run() -> None:
        try:
            box.append(_extract(task, ti, failed=failed))
        except BaseException as exc:
            problem.append(exc)

    worker = threading.Thread(target=run, name="datahub-operator-lineage", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log_once(
            log,
            logging.WARNING,
            f"extract-timeout:{label}",
            f"task {label}: operator lineage not read within {timeout:g} s; "
            "the try is recorded without it",
        )
        return None
    if problem:
        log_once(
            log,
            logging.WARNING,
            f"extract-failed:{label}:{type(problem[0]).__name__}",
            f"task {label}: operator lineage not read: {one_line(problem[0])}",
        )
        return None
    found = box[0] if box else None
    return None if found is None or found.empty else found


@functools.cache
def _manager() -> Any:
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    return ExtractorManager()


def _extract(task: Any, ti: Any, *, failed: bool) -> Found | None:
    """The operator's own methods when it has them (called here, so that what they raise is
    reported once, by :func:`extract`), else the extractor registered for its class."""
    manager = _manager()
    extractor_cls = manager.get_extractor_class(task)
    found = None
    if extractor_cls is None or extractor_cls.__name__ in _NO_DATA_EXTRACTORS:
        pass
    elif extractor_cls is manager.default_extractor:
        found = _plain(_reported(task, ti, failed=failed))
    else:
        extractor = extractor_cls(task)
        if failed and callable(getattr(extractor, "extract_on_failure", None)):
            found = _plain(extractor.extract_on_failure(ti))
        else:
            found = _plain(extractor.extract_on_complete(ti))
    if found is None or not (found.inputs or found.outputs):
        hook = _sqlite_hook(task)
        if hook is not None:
            found = _plain(_sqlite_lineage(task, hook)) or found
    return found


def _reported(task: Any, ti: Any, *, failed: bool) -> Any:
    """What the operator's ``get_openlineage_facets_on_*`` says at the try's end."""
    on_failure = getattr(task, "get_openlineage_facets_on_failure", None)
    if failed and callable(on_failure):
        return on_failure(ti)
    on_complete = getattr(task, "get_openlineage_facets_on_complete", None)
    if callable(on_complete):
        return on_complete(ti)
    return task.get_openlineage_facets_on_start()


# -- SQLite, which the provider does not name ------------------------------------------------------


def _sqlite_hook(task: Any) -> Any:
    """The task's SQLite hook (already built by ``execute()``), or None."""
    if not getattr(task, "sql", None) or not callable(getattr(task, "get_db_hook", None)):
        return None
    hook = task.get_db_hook()
    return hook if getattr(type(hook), "conn_type", None) == "sqlite" else None


def _sqlite_lineage(task: Any, hook: Any) -> Any:
    from airflow.providers.openlineage.sqlparser import DatabaseInfo, SQLParser

    connection = hook.get_connection(getattr(hook, hook.conn_name_attr))
    path = connection.host or connection.schema or ""
    database = os.path.splitext(os.path.basename(path))[0] or None
    info = DatabaseInfo(scheme="sqlite", authority=None, database=database)
    metadata = SQLParser(
        dialect="sqlite", default_schema=None
    ).generate_openlineage_metadata_from_sql(
        sql=task.sql, hook=hook, database_info=info, use_connection=False
    )
    # SQLite has no schemas: the parser spells the missing one "None" (``shop.None.orders``)
    for item in (*metadata.inputs, *metadata.outputs):
        _drop_none_schema(item)
    return metadata


def _drop_none_schema(item: Any) -> None:
    name = getattr(item, "name", None)
    if isinstance(name, str) and ".None." in f".{name}.":
        object.__setattr__(item, "name", ".".join(p for p in name.split(".") if p != "None"))
    facets = getattr(item, "facets", None) or {}
    facet = facets.get("columnLineage") if isinstance(facets, dict) else None
    for value in (getattr(facet, "fields", None) or {}).values():
        for field in getattr(value, "inputFields", None) or ():
            _drop_none_schema(field)


# -- OpenLineage objects -> plain values ----------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dataset(item: Any) -> Dataset | None:
    namespace, name = _text(getattr(item, "namespace", None)), _text(getattr(item, "name", None))
    if namespace is None or name is None:
        return None
    return namespace, name


def _columns(dataset: Dataset, item: Any) -> list[tuple[Dataset, str, tuple[InputField, ...]]]:
    facets = getattr(item, "facets", None) or {}
    facet = facets.get("columnLineage") if isinstance(facets, dict) else None
    fields = getattr(facet, "fields", None)
    if not isinstance(fields, dict):
        return []
    out = []
    for column, value in fields.items():
        inputs: list[InputField] = []
        for field in getattr(value, "inputFields", None) or ():
            namespace = _text(getattr(field, "namespace", None))
            name = _text(getattr(field, "name", None))
            source = _text(getattr(field, "field", None))
            if namespace and name and source:
                inputs.append((namespace, name, source))
        if isinstance(column, str) and column and inputs:
            out.append((dataset, column, tuple(sorted(set(inputs)))))
    return out


def _sql(metadata: Any) -> str | None:
    facets = getattr(metadata, "job_facets", None) or {}
    facet = facets.get("sql") if isinstance(facets, dict) else None
    query = getattr(facet, "query", None)
    return query.strip() if isinstance(query, str) and query.strip() else None


def _plain(metadata: Any) -> Found | None:
    if metadata is None:
        return None
    inputs = [d for d in map(_dataset, getattr(metadata, "inputs", None) or ()) if d]
    outputs: list[Dataset] = []
    columns: list[tuple[Dataset, str, tuple[InputField, ...]]] = []
    for item in getattr(metadata, "outputs", None) or ():
        dataset = _dataset(item)
        if dataset is None:
            continue
        outputs.append(dataset)
        columns.extend(_columns(dataset, item))
    return Found(
        inputs=tuple(dict.fromkeys(inputs)),
        outputs=tuple(dict.fromkeys(outputs)),
        columns=tuple(columns),
        sql=_sql(metadata),
    )
