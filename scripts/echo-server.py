#!/usr/bin/python3
"""A local WebSocket echo server for trying wsgate offline (README, "Trying it").

    /usr/bin/python3 scripts/echo-server.py [--host 127.0.0.1] [--port 8765]

Echoes every message with its type (text or binary) until Ctrl-C. "--port 0" picks a free port.
Prints "listening on ws://HOST:PORT/" once it accepts connections. Needs Debian's
python3-websockets (scripts/deps.txt), hence /usr/bin/python3 rather than another python3.
"""
import argparse
import asyncio

import websockets


async def echo(ws, path=None):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main(host, port):
    async with websockets.serve(echo, host, port, max_size=16 << 20) as server:
        bound = server.sockets[0].getsockname()
        print("listening on ws://%s:%d/" % (bound[0], bound[1]), flush=True)
        await asyncio.Future()  # until Ctrl-C


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
