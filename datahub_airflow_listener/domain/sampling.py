"""The sampling decision: whether a DAG run is recorded when recording 1 run in N.

Pure (stdlib only), so every process (the scheduler, each task) computes it alike.
"""

from __future__ import annotations

import hashlib

__all__ = ["sampled_in"]


def sampled_in(dag_id: str, run_id: str, every_n: int) -> bool:
    """Whether the DAG run ``(dag_id, run_id)`` is recorded when sampling 1 in ``every_n``.

    Deterministic across processes, hosts and Python versions (a keyed-free BLAKE2b of the two
    ids, not ``hash()``, whose seed differs per process): the scheduler and every task process
    reach the same answer for the same run with no shared state, so a sampled-out DAG run
    loses its task runs too. Over many runs about 1 in N is recorded (not exactly every Nth:
    that would need a counter shared by all processes). ``every_n`` <= 1 records everything.
    """
    if every_n <= 1:
        return True
    digest = hashlib.blake2b(f"{dag_id}\x00{run_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % every_n == 0
