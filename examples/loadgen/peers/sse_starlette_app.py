"""sse-starlette on uvicorn: GET /sub streams, POST /pub sends its body to
every stream as one event. `python sse_starlette_app.py PORT`."""
import asyncio
import sys

import uvicorn
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

queues: set[asyncio.Queue] = set()


async def sub(request):
    queue: asyncio.Queue = asyncio.Queue()
    queues.add(queue)

    async def events():
        try:
            yield {"comment": "ok"}
            while True:
                yield {"data": await queue.get()}
        finally:
            queues.discard(queue)

    return EventSourceResponse(events(), ping=3600)


async def pub(request):
    body = (await request.body()).decode()
    for queue in queues:
        queue.put_nowait(body)
    return Response(status_code=204)


app = Starlette(routes=[Route("/sub", sub), Route("/pub", pub, methods=["POST"])])

if __name__ == "__main__":
    print("READY", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False, backlog=4096)
