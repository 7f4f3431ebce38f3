"""Content addresses of test sets: lowercase hex sha256 of the deterministic serialization."""
from __future__ import annotations

import hashlib

from sandbox.v1 import sandbox_pb2 as pb


def test_set_digest(test_set: pb.TestSet) -> str:
    return hashlib.sha256(test_set.SerializeToString(deterministic=True)).hexdigest()


def is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
