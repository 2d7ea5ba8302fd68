#!/usr/bin/python3
"""WebSocket echo server for wsgate's interop tests (Debian's python3-websockets 10.4).

    /usr/bin/python3 python_echo_server.py [LIFETIME_SECONDS]   (default 60)

Binds 127.0.0.1 on a free port and prints the port as the first stdout line. Echoes every
message with its type (text or binary; a fragmented message is echoed as one message). Pings are
answered by the library; a received close is answered with the same code and reason (the
library echoes the close frame). Special text messages:
    "ping-me"      the server pings ("srv-ping"), waits for the pong, then sends "pong-received"
    "close-me"     the server closes with 4000 "server closing"
Exits by itself after LIFETIME_SECONDS, or as soon as stdin reaches EOF (the test process is
gone).
"""
import asyncio
import os
import sys

import websockets

MAX_MESSAGE = 16 * 1024 * 1024  # websockets' default max_size (1 MiB) is too small for the tests


async def handler(ws, path=None):
    try:
        async for message in ws:
            if message == "ping-me":
                pong = await ws.ping(b"srv-ping")
                await asyncio.wait_for(pong, timeout=10)
                await ws.send("pong-received")
            elif message == "close-me":
                await ws.close(code=4000, reason="server closing")
            else:
                await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main():
    lifetime = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def on_stdin():
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except OSError:
            data = b""
        if not data and not stop.done():
            stop.set_result("stdin closed")

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    loop.call_later(lifetime, lambda: stop.done() or stop.set_result("lifetime over"))
    async with websockets.serve(
        handler,
        "127.0.0.1",
        0,
        max_size=MAX_MESSAGE,
        max_queue=64,
        compression=None,
        ping_interval=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
