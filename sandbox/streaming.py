"""GradeStream's shape, shared by the server and the gateway: grade each request as it
arrives, answer in completion order, turn a rejected request into GradeResponse.error.

Flow control: a stream holds at most `max_answers` requests read but not yet answered (being
graded, or answered and waiting for gRPC to send), and at most `max_bytes` of them and their
answers. At the bound it stops reading requests until answers have been sent, so a client
that does not read its answers gets backpressure (HTTP/2 flow control stops its sends) instead
of growing the server's memory.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from sandbox.v1 import sandbox_pb2 as pb

# grade(request) -> GradeResponse, or raises an exception carrying `.code` (grpc.StatusCode)
# and `.message` for a rejected request.
GradeFunction = Callable[[pb.GradeRequest], Awaitable[pb.GradeResponse]]

STREAM_MAX_ANSWERS = 256
STREAM_MAX_BYTES = 64 << 20


def _size(message: object) -> int:
    byte_size = getattr(message, "ByteSize", None)  # a MalformedRequest has none
    return byte_size() if byte_size is not None else 0


class AnswerWindow:
    """Requests a stream has taken on and not yet answered: a count and their bytes.

    One request is always let in when the window is empty, however big, so a stream never
    stalls for good."""

    def __init__(self, max_answers: int = STREAM_MAX_ANSWERS,
                 max_bytes: int = STREAM_MAX_BYTES) -> None:
        self.max_answers = max_answers
        self.max_bytes = max_bytes
        self.count = 0
        self.bytes = 0
        self._changed = asyncio.Condition()

    def _has_room(self, size: int) -> bool:
        return self.count == 0 or (self.count < self.max_answers
                                   and self.bytes + size <= self.max_bytes)

    async def admit(self, size: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._has_room(size))
            self.count += 1
            self.bytes += size

    def charge(self, size: int) -> None:
        """Adds an answer's bytes to its request's (no waiting: the work is done)."""
        self.bytes += size

    async def release(self, size: int) -> None:
        async with self._changed:
            self.count -= 1
            self.bytes -= size
            self._changed.notify_all()


async def stream_answers(requests: AsyncIterator[pb.GradeRequest], grade: GradeFunction,
                         rejection: type[Exception],
                         window: AnswerWindow | None = None) -> AsyncIterator[pb.GradeResponse]:
    window = window or AnswerWindow()
    results: asyncio.Queue = asyncio.Queue()
    pending: set[asyncio.Task] = set()

    async def answer(request: pb.GradeRequest) -> pb.GradeResponse:
        if not isinstance(request, pb.GradeRequest):  # did not parse (server.MalformedRequest)
            return pb.GradeResponse(error=pb.RequestError(
                code=3, message=getattr(request, "message", "malformed request")))
        try:
            return await grade(request)
        except rejection as exc:
            return pb.GradeResponse(request_id=request.request_id, error=pb.RequestError(
                code=exc.code.value[0], message=exc.message))
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the stream
            return pb.GradeResponse(request_id=request.request_id, error=pb.RequestError(
                code=13, message=f"internal error: {exc}"))

    async def grade_one(request: pb.GradeRequest, size: int) -> None:
        response = await answer(request)
        del request  # free it now; its bytes stay charged until the answer is sent
        answer_size = _size(response)
        window.charge(answer_size)
        await results.put((response, size + answer_size))

    async def reader() -> None:
        async for request in requests:
            size = _size(request)
            await window.admit(size)
            task = asyncio.create_task(grade_one(request, size))
            pending.add(task)
            task.add_done_callback(pending.discard)
            del request
        await asyncio.gather(*list(pending))
        await results.put(None)

    reading = asyncio.create_task(reader())
    try:
        while (item := await results.get()) is not None:
            response, size = item
            del item
            yield response
            del response
            await window.release(size)
    finally:
        reading.cancel()
        for task in list(pending):
            task.cancel()
