#!/usr/bin/python3
"""echo.py [--deflate] [--proxy PROXY] URL [MESSAGE...]: opens a WebSocket session through
wsgated (Gateway.Connect), sends each message, prints the echoed replies, then closes with 1000.
--deflate asks the gateway to offer permessage-deflate (Open.compression).
--proxy: the session's HTTP CONNECT proxy (Open.proxy): "direct", or "http://[user:pw@]host:port"
when the daemon allows session proxies; without it, the daemon's [proxy] settings apply."""
import queue
import sys

from wsgate_example_common import connect, error_detail, gateway_pb2, gateway_pb2_grpc, grpc

TIMEOUT = 10.0


def main():
    args = sys.argv[1:]
    deflate = "--deflate" in args
    args = [a for a in args if a != "--deflate"]
    proxy = ""
    if args[:1] == ["--proxy"]:
        proxy, args = args[1], args[2:]
    url = args[0]
    messages = args[1:] or ["hello", "world"]
    outgoing = queue.Queue()
    open_message = gateway_pb2.Open(url=url, proxy=proxy)
    if deflate:
        # permessage-deflate is negotiated and done by the gateway: the messages here stay plain.
        # (Open.extensions cannot name it; zero fields mean the daemon's [compression] settings.)
        open_message.compression.mode = gateway_pb2.Compression.COMPRESSION_MODE_ON
        open_message.compression.threshold_bytes = 256  # smaller messages go uncompressed
    outgoing.put(gateway_pb2.ClientMessage(open=open_message))

    def requests():
        while True:
            m = outgoing.get()
            if m is None:
                return
            yield m

    channel = connect()
    stub = gateway_pb2_grpc.GatewayStub(channel)
    stream = stub.Connect(requests(), timeout=60)
    try:
        first = next(stream)
        print("opened %s (session %s, extensions %s)"
              % (url, first.opened.session_id, list(first.opened.extensions)))
        for text in messages:
            outgoing.put(gateway_pb2.ClientMessage(text=text.encode()))
            reply = next(stream)
            print("echo: %s" % reply.message.data.decode())
            if reply.message.data.decode() != text:
                return 1
        outgoing.put(gateway_pb2.ClientMessage(close=gateway_pb2.Close(code=1000, reason="done")))
        for m in stream:
            if m.HasField("closed"):
                print("closed %d %s" % (m.closed.code, m.closed.reason))
        outgoing.put(None)
        return 0
    except grpc.RpcError as e:
        detail = error_detail(e)
        print("error: %s %s (cause %s)" % (e.code().name, e.details(),
                                            detail.cause if detail else "-"), file=sys.stderr)
        outgoing.put(None)
        return 1
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
