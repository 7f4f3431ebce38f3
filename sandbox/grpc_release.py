"""Releasing grpc.aio objects before the interpreter finalizes.

grpc.aio shuts its poller thread down when its last object is freed. If that happens during
the interpreter's finalization it can crash (grpc/grpc#40447): a process that stopped
cleanly exits with SIGSEGV. Objects kept in reference cycles (an aborted call's exception
and its traceback) or in module-level caches are freed only then, unless released first.
"""
from __future__ import annotations

import gc


def release_grpc_objects() -> None:
    """Frees unreachable grpc.aio objects (reference cycles) now, while the interpreter runs."""
    gc.collect()
