"""An in-memory, size-bounded store of test sets keyed by digest, fair between clients.

Sizes are what a stored set really costs in memory, not its wire size: an empty test is 2
bytes on the wire but ~75 bytes in memory. A stored set is always a fresh message: a set that
arrived inside a request (a upb sub-message) would otherwise keep the whole request alive.

Eviction is max-min fair: when the store is over its cap, the least recently used set of the
client holding the most bytes goes first. A client flooding the store only pushes out its own
sets until it holds no more than anyone else: each of N clients keeps at least cap / N.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sandbox.digest import test_set_digest
from sandbox.settings import positive_from_env
from sandbox.v1 import sandbox_pb2 as pb

DEFAULT_MAX_BYTES = 2 << 30
MAX_BYTES_ENV = "SANDBOX_TEST_SET_BYTES"
# Memory a stored set costs beyond its wire size: per test (a upb message, its arena share)
# and per set (the Python object, the first arena block, the store's own bookkeeping).
TEST_OVERHEAD_BYTES = 96
SET_OVERHEAD_BYTES = 1024


def memory_size(test_set: pb.TestSet) -> int:
    """What holding this test set costs in memory, about (an upper estimate)."""
    return test_set.ByteSize() + TEST_OVERHEAD_BYTES * len(test_set.tests) + SET_OVERHEAD_BYTES


def client_identity(peer: str) -> str:
    """A client as the store tells clients apart: its IP address (no port, so new connections
    do not make a new client); every unix-socket client is one local client."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rsplit(":", 1)[0]
    return peer.split(":", 1)[0]


@dataclass
class _Entry:
    test_set: pb.TestSet
    size: int
    owner: str


class TestSetStore:
    __test__ = False  # not a pytest class

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = (positive_from_env(MAX_BYTES_ENV, DEFAULT_MAX_BYTES, int)
                          if max_bytes is None else max_bytes)
        self._entries: dict[str, _Entry] = {}
        self._lru: dict[str, OrderedDict[str, None]] = {}  # owner -> its digests, oldest first
        self._owned: dict[str, int] = {}  # owner -> bytes
        self._total = 0
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        return self._total

    def bytes_of(self, owner: str) -> int:
        with self._lock:
            return self._owned.get(owner, 0)

    def put(self, test_set: pb.TestSet, owner: str = "") -> str:
        """Stores a copy of `test_set` (charged to `owner`, the client that sent it first)."""
        digest = test_set_digest(test_set)
        if self._touch(digest):
            return digest
        copy = pb.TestSet()
        copy.CopyFrom(test_set)
        entry = _Entry(copy, memory_size(copy), owner)
        with self._lock:
            if digest in self._entries:
                return digest
            self._add(digest, entry)
            self._evict(keep=digest)
        return digest

    def get(self, digest: str) -> pb.TestSet | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            self._lru[entry.owner].move_to_end(digest)
            return entry.test_set

    def __contains__(self, digest: str) -> bool:
        with self._lock:
            return digest in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _touch(self, digest: str) -> bool:
        return self.get(digest) is not None

    def _add(self, digest: str, entry: _Entry) -> None:
        self._entries[digest] = entry
        self._lru.setdefault(entry.owner, OrderedDict())[digest] = None
        self._owned[entry.owner] = self._owned.get(entry.owner, 0) + entry.size
        self._total += entry.size

    def _remove(self, digest: str) -> None:
        entry = self._entries.pop(digest)
        del self._lru[entry.owner][digest]
        self._owned[entry.owner] -= entry.size
        self._total -= entry.size
        if not self._lru[entry.owner]:
            del self._lru[entry.owner], self._owned[entry.owner]

    def _evict(self, keep: str) -> None:
        """Brings the store under its cap, heaviest client first. The set just stored is never
        its own victim: when its client is the heaviest and holds nothing else, the store stays
        over the cap by that one set until the next one arrives."""
        while self._total > self.max_bytes:
            heaviest = max(self._owned, key=self._owned.__getitem__)
            victim = next(iter(self._lru[heaviest]))
            if victim == keep:
                return
            self._remove(victim)
