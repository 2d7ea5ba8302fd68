#!/usr/bin/python3
"""WebSocket server for the SDK tests (Debian's python3-websockets 10.4).

Binds 127.0.0.1 on a free port and prints the port as its first stdout line. Echoes messages;
offers the subprotocol "chat.v2" (selected when the client offers it); answers a request for
/refuse with HTTP 403 and the header "X-Reason: nope" instead of upgrading, and /busy with
HTTP 503 and "Retry-After: 7" (the clients' retry_after). Exits when stdin
reaches EOF or after LIFETIME seconds (argv[1], default 120).
"""
import asyncio
import http
import sys

import websockets


async def handler(ws, path=None):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


def process_request(path, headers):
    if path.startswith("/refuse"):
        return http.HTTPStatus.FORBIDDEN, [("X-Reason", "nope")], b"refused\n"
    if path.startswith("/busy"):
        return http.HTTPStatus.SERVICE_UNAVAILABLE, [("Retry-After", "7")], b"busy\n"
    return None


async def main():
    lifetime = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.done() or (
        sys.stdin.buffer.read1(4096) or stop.set_result(None)))
    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["chat.v2"],
                                process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        try:
            await asyncio.wait_for(stop, timeout=lifetime)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
