"""An in-memory, size-bounded LRU store of test sets keyed by digest."""
from __future__ import annotations

import threading
from collections import OrderedDict

from sandbox.digest import test_set_digest
from sandbox.v1 import sandbox_pb2 as pb


class TestSetStore:
    __test__ = False  # not a pytest class

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.max_bytes = max_bytes
        self._sets: OrderedDict[str, pb.TestSet] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()

    def put(self, test_set: pb.TestSet) -> str:
        digest = test_set_digest(test_set)
        size = test_set.ByteSize()
        with self._lock:
            if digest in self._sets:
                self._sets.move_to_end(digest)
                return digest
            self._sets[digest] = test_set
            self._sizes[digest] = size
            self._total += size
            while self._total > self.max_bytes and len(self._sets) > 1:
                old, _ = self._sets.popitem(last=False)
                self._total -= self._sizes.pop(old)
        return digest

    def get(self, digest: str) -> pb.TestSet | None:
        with self._lock:
            found = self._sets.get(digest)
            if found is not None:
                self._sets.move_to_end(digest)
            return found

    def __contains__(self, digest: str) -> bool:
        with self._lock:
            return digest in self._sets
