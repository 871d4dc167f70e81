"""Connection-form labels of the two connection types (plain data, no imports).

Shared by :mod:`.provider` (declarative form, Airflow 3.2+) and :mod:`.hooks`
(``get_ui_field_behaviour``, older Airflow), so the two can never disagree.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["FILE_UI_BEHAVIOUR", "REST_EXTRA_EXAMPLE", "REST_UI_BEHAVIOUR"]

REST_EXTRA_EXAMPLE: Final = (
    '{"timeout_sec": 30, "retry_max_times": 4, "extra_headers": {"X-Team": "data"}, '
    '"disable_ssl_verification": false, "ca_certificate_path": "/etc/ssl/certs/ca.pem"}'
)

REST_UI_BEHAVIOUR: Final[dict[str, Any]] = {
    "hidden_fields": ["schema", "login"],
    "relabeling": {
        "host": "DataHub GMS URL",
        "port": "Port (optional, if not in the URL)",
        "password": "DataHub access token (optional)",
        "extra": "Options (JSON)",
    },
    "placeholders": {
        "host": "http://datahub-gms:8080  (GMS, not the frontend on :9002)",
        "password": "personal access token; leave empty if DataHub has no auth",
        "extra": REST_EXTRA_EXAMPLE,
    },
}

FILE_UI_BEHAVIOUR: Final[dict[str, Any]] = {
    "hidden_fields": ["schema", "login", "password", "port", "extra"],
    "relabeling": {"host": "Output file path"},
    "placeholders": {"host": "/opt/airflow/datahub/metadata.json"},
}
