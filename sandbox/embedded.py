"""The embedded sandbox: the same engine as the server, called in this process (no gRPC)."""
from __future__ import annotations

import os

from sandbox.info import build_info
from sandbox.service import SandboxCore
from sandbox.v1 import sandbox_pb2 as pb


class EmbeddedSandbox:
    """Offers the client's grade / execute / info calls without a server.

    Raises sandbox.service.RequestRejected where a server would answer a gRPC error.
    """

    def __init__(self, core: SandboxCore | None = None) -> None:
        self.core = core or SandboxCore()

    def info(self) -> pb.InfoResponse:
        return build_info(self.core.judge, os.cpu_count() or 1, 0)

    def grade(self, request: pb.GradeRequest, timeout: float | None = None) -> pb.GradeResponse:
        return self.core.grade(request)

    def execute(self, request: pb.ExecuteRequest, timeout: float | None = None) -> pb.ExecuteResponse:
        return self.core.execute(request)

    def close(self) -> None:
        pass
