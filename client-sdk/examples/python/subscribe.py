#!/usr/bin/python3
"""subscribe.py URL [--send TEXT]... [--count N] [--timeout S]: opens a session through wsgated,
sends the given subscription messages, then prints every message the server pushes (one line
each) until N messages arrived, the server closed, or S seconds passed; then closes with 1000.
"""
import argparse
import queue
import sys
import threading

from wsgate_example_common import connect, error_detail, gateway_pb2, gateway_pb2_grpc, grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("--count", type=int, default=0, help="stop after N messages (0: no limit)")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    outgoing = queue.Queue()
    outgoing.put(gateway_pb2.ClientMessage(open=gateway_pb2.Open(url=args.url)))

    def requests():
        while True:
            m = outgoing.get()
            if m is None:
                return
            yield m

    channel = connect()
    stream = gateway_pb2_grpc.GatewayStub(channel).Connect(requests())
    inbox = queue.Queue()

    def reader():
        try:
            for m in stream:
                inbox.put(m)
            inbox.put(None)
        except grpc.RpcError as e:
            inbox.put(e)

    threading.Thread(target=reader, daemon=True).start()
    received = 0
    rc = 0
    try:
        while True:
            try:
                m = inbox.get(timeout=args.timeout)
            except queue.Empty:
                print("timeout after %.0f s" % args.timeout)
                break
            if m is None:
                break
            if isinstance(m, grpc.RpcError):
                detail = error_detail(m)
                print("error: %s %s (cause %s)" % (m.code().name, m.details(),
                                                    detail.cause if detail else "-"))
                rc = 1
                break
            kind = m.WhichOneof("kind")
            if kind == "opened":
                print("subscribed to %s (session %s)" % (args.url, m.opened.session_id))
                for text in args.send:
                    outgoing.put(gateway_pb2.ClientMessage(text=text.encode()))
            elif kind == "message":
                received += 1
                data = m.message.data.decode() if m.message.text else m.message.data.hex()
                print("message %d: %s" % (received, data))
                sys.stdout.flush()
                if args.count and received >= args.count:
                    outgoing.put(gateway_pb2.ClientMessage(
                        close=gateway_pb2.Close(code=1000, reason="done")))
            elif kind == "closed":
                print("closed %d %s" % (m.closed.code, m.closed.reason))
                break
    finally:
        outgoing.put(None)
        stream.cancel()
        channel.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
