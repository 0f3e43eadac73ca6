"""aiohttp-sse on aiohttp: GET /sub streams, POST /pub sends its body to
every stream as one event. `python aiohttp_sse_app.py PORT`."""
import asyncio
import sys

from aiohttp import web
from aiohttp_sse import sse_response

queues: set[asyncio.Queue] = set()


async def sub(request):
    queue: asyncio.Queue = asyncio.Queue()
    queues.add(queue)
    try:
        async with sse_response(request) as stream:
            stream.ping_interval = 3600
            await stream.send("ok", event="hello")
            while stream.is_connected():
                await stream.send(await queue.get())
    finally:
        queues.discard(queue)
    return stream


async def pub(request):
    body = await request.text()
    for queue in queues:
        queue.put_nowait(body)
    return web.Response(status=204)


app = web.Application()
app.add_routes([web.get("/sub", sub), web.post("/pub", pub)])

if __name__ == "__main__":
    print("READY", flush=True)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None,
                access_log=None, backlog=4096)
