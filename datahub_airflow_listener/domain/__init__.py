"""The pure domain: urns, the process-instance model, aspects and the MCP wire format.

Nothing here imports Airflow, requests or the other layers of this package, so it can be
used and tested anywhere (enforced by import-linter contracts in setup.cfg).
"""
