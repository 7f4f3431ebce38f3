"""GradeStream's shape, shared by the server and the gateway: grade each request as it
arrives, answer in completion order, turn a rejected request into GradeResponse.error."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from sandbox.v1 import sandbox_pb2 as pb

# grade(request) -> GradeResponse, or raises an exception carrying `.code` (grpc.StatusCode)
# and `.message` for a rejected request.
GradeFunction = Callable[[pb.GradeRequest], Awaitable[pb.GradeResponse]]


async def stream_answers(requests: AsyncIterator[pb.GradeRequest], grade: GradeFunction,
                         rejection: type[Exception]) -> AsyncIterator[pb.GradeResponse]:
    results: asyncio.Queue = asyncio.Queue()
    pending: set[asyncio.Task] = set()

    async def grade_one(request: pb.GradeRequest) -> None:
        if not isinstance(request, pb.GradeRequest):  # did not parse (server.MalformedRequest)
            await results.put(pb.GradeResponse(error=pb.RequestError(
                code=3, message=getattr(request, "message", "malformed request"))))
            return
        try:
            response = await grade(request)
        except rejection as exc:
            response = pb.GradeResponse(request_id=request.request_id, error=pb.RequestError(
                code=exc.code.value[0], message=exc.message))
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the stream
            response = pb.GradeResponse(request_id=request.request_id, error=pb.RequestError(
                code=13, message=f"internal error: {exc}"))
        await results.put(response)

    async def reader() -> None:
        async for request in requests:
            task = asyncio.create_task(grade_one(request))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*list(pending))
        await results.put(None)

    reading = asyncio.create_task(reader())
    try:
        while (item := await results.get()) is not None:
            yield item
    finally:
        reading.cancel()
        for task in list(pending):
            task.cancel()
