"""permessage-deflate (RFC 7692) through the real daemon: against Python `websockets` with
compression on (context takeover, no context takeover, server_max_window_bits), a decompression
bomb from a raw server (1009 upstream, message_too_big to the client), RSV1 without negotiation
(1002), a server answer the gateway refuses, Open.extensions refused, and the daemon default."""
import asyncio
import json
import os
import queue
import shutil
import subprocess
import threading
import unittest
import zlib

import grpc
import websockets
from websockets.extensions.permessage_deflate import (PerMessageDeflate,
                                                      ServerPerMessageDeflateFactory)

from daemon_fixture import DaemonTestCase, gateway_pb2
from servers import RawServer, frame, wait_closed

C = gateway_pb2.Compression


def deflate_raw(data):
    """RFC 7692 §7.2.1: raw deflate, sync flush, the 4-byte tail removed."""
    z = zlib.compressobj(wbits=-15)
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class CompressingEchoServer:
    """A websockets 10 echo server with permessage-deflate on (its factory's options), which
    records for every message it receives whether it came compressed (RSV1), and the
    extensions it negotiated."""

    def __init__(self, **factory_options):
        self.factory_options = factory_options
        self.rsv1 = []          # per received frame: RSV1 set?
        self.extensions = []    # per connection: the negotiated extension objects' names
        self.request_offers = []
        self._lock = threading.Lock()
        self.port = None
        self._started = threading.Event()

    @property
    def url(self):
        return "ws://127.0.0.1:%d/echo" % self.port

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise AssertionError("the compressing echo server did not start")
        return self

    def _run(self):
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._main())
        loop.close()

    async def _main(self):
        self._stop = asyncio.get_running_loop().create_future()
        recorder = self

        class Recording(PerMessageDeflate):
            def decode(self, frame, *, max_size=None):
                if frame.opcode in (0, 1, 2):
                    with recorder._lock:
                        recorder.rsv1.append(frame.rsv1)
                return super().decode(frame, max_size=max_size)

        class Factory(ServerPerMessageDeflateFactory):
            def process_request_params(self, params, accepted_extensions):
                response, extension = super().process_request_params(params, accepted_extensions)
                extension.__class__ = Recording
                return response, extension

        async def handler(ws, path=None):
            with self._lock:
                self.request_offers.append(ws.request_headers.get("Sec-WebSocket-Extensions"))
                self.extensions.append([e.name for e in ws.extensions])
            try:
                async for message in ws:
                    await ws.send(message)
            except websockets.ConnectionClosed:
                pass

        async with websockets.serve(handler, "127.0.0.1", 0, compression=None,
                                    extensions=[Factory(**self.factory_options)],
                                    max_size=1 << 24, ping_interval=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._started.set()
            await self._stop

    def stop(self):
        self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
        self._thread.join(15)


class CompressionTest(DaemonTestCase):
    CONFIG = {"timeouts": {"close_ms": 1000}}

    def echo(self, server, compression, messages):
        s, opened = self.open_session(server.url, compression=compression)
        for m in messages:
            if isinstance(m, str):
                s.send_text(m)
            else:
                s.send_binary(m)
            got = s.recv_kind("message")
            self.assertEqual(got.data, m.encode() if isinstance(m, str) else m)
            self.assertEqual(got.text, isinstance(m, str))
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)
        return opened

    def messages(self):
        text_16k = "".join("wsgate compresses this line %05d. " % i for i in range(500))[:16384]
        return ["x" * 64, text_16k, text_16k, bytes(range(256)) * 400, "é€😀" * 1000, ""]

    def test_context_takeover_both_ways(self):
        server = CompressingEchoServer().start()
        try:
            opened = self.echo(server, C(mode=C.COMPRESSION_MODE_ON), self.messages())
            self.assertEqual(len(opened.extensions), 1)
            self.assertTrue(opened.extensions[0].startswith("permessage-deflate"), opened.extensions)
            self.assertIn("permessage-deflate", server.request_offers[0])
            self.assertEqual(server.extensions[0], ["permessage-deflate"])
            # Below the 128-byte threshold: plain; the larger ones compressed; the empty one plain.
            self.assertEqual(server.rsv1, [False, True, True, True, True, False])
        finally:
            server.stop()

    def test_no_context_takeover_both_ways(self):
        server = CompressingEchoServer(server_no_context_takeover=True,
                                       client_no_context_takeover=True).start()
        try:
            opened = self.echo(server, C(mode=C.COMPRESSION_MODE_ON, threshold_bytes=1,
                                         server_no_context_takeover=True,
                                         client_no_context_takeover=True), self.messages())
            self.assertIn("server_no_context_takeover", opened.extensions[0])
            self.assertIn("client_no_context_takeover", opened.extensions[0])
            offer = server.request_offers[0]
            self.assertIn("server_no_context_takeover", offer)
            self.assertIn("client_no_context_takeover", offer)
            self.assertEqual(server.rsv1, [True] * 5 + [False])  # "" is below threshold 1
        finally:
            server.stop()

    def test_server_max_window_bits(self):
        server = CompressingEchoServer(server_max_window_bits=10, client_max_window_bits=9).start()
        try:
            opened = self.echo(server, C(mode=C.COMPRESSION_MODE_ON, server_max_window_bits=10),
                               self.messages())
            self.assertIn("server_max_window_bits=10", opened.extensions[0])
            self.assertIn("client_max_window_bits=9", opened.extensions[0])
            self.assertIn("server_max_window_bits=10", server.request_offers[0])
        finally:
            server.stop()

    def test_off_unless_asked(self):
        server = CompressingEchoServer().start()
        try:
            opened = self.echo(server, None, ["x" * 1000])
            self.assertEqual(list(opened.extensions), [])
            self.assertIsNone(server.request_offers[0])
            self.assertEqual(server.extensions[0], [])
        finally:
            server.stop()

    def test_decompression_bomb_is_1009_and_message_too_big(self):
        bomb = deflate_raw(b"\x00" * (32 << 20))  # 32 MiB of zeros in ~32 KiB
        self.assertLess(len(bomb), 65536)

        def script(conn):
            conn.read_request()
            conn.result["offer"] = conn.headers.get("sec-websocket-extensions")
            conn.send(conn.response_101(headers=[("Sec-WebSocket-Extensions",
                                                  "permessage-deflate")]))
            conn.send(frame(0x2, bomb, rsv=4))
            conn.result["frame"] = conn.read_frame(timeout=10)

        raw = RawServer(script).start()
        try:
            s, _ = self.open_session(raw.url, compression=C(mode=C.COMPRESSION_MODE_ON),
                                     limits=gateway_pb2.Limits(max_message_bytes=1 << 20))
            closed = s.recv_kind("closed")
            self.assertEqual(closed.code, 1009)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY)
            s.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "message_too_big")
            self.assertIn("max_message_bytes", s.details)
            conn = raw.wait_connection()
            self.assertIsNone(conn.error, repr(conn.error))
            self.assertIn("permessage-deflate", conn.result["offer"])
            fin, opcode, payload, masked = conn.result["frame"]
            self.assertEqual((opcode, int.from_bytes(payload[:2], "big")), (0x8, 1009))
        finally:
            raw.stop()
        self.assert_alive_and_serving()

    def test_rsv1_without_negotiation_is_1002(self):
        for offered in (None, C(mode=C.COMPRESSION_MODE_ON)):
            def script(conn):
                conn.read_request()
                conn.send(conn.response_101())  # no Sec-WebSocket-Extensions: not negotiated
                conn.send(frame(0x1, deflate_raw(b"Hello"), rsv=4))
                conn.result["frame"] = conn.read_frame(timeout=10)

            raw = RawServer(script).start()
            try:
                s, opened = self.open_session(raw.url, compression=offered)
                self.assertEqual(list(opened.extensions), [])
                closed = s.recv_kind("closed")
                self.assertEqual(closed.code, 1002)
                s.expect_failure(grpc.StatusCode.DATA_LOSS, "protocol_violation")
                conn = raw.wait_connection()
                fin, opcode, payload, masked = conn.result["frame"]
                self.assertEqual((opcode, int.from_bytes(payload[:2], "big")), (0x8, 1002))
            finally:
                raw.stop()

    def test_a_bad_answer_fails_the_handshake(self):
        def script(conn):
            conn.read_request()
            conn.send(conn.response_101(headers=[("Sec-WebSocket-Extensions",
                                                  "permessage-deflate; server_max_window_bits=99")]))
            try:
                conn.read_exactly(1, timeout=10)
            except (EOFError, OSError):
                pass

        raw = RawServer(script).start()
        try:
            s = self.session()
            s.send_open(raw.url, compression=C(mode=C.COMPRESSION_MODE_ON))
            s.expect_failure(grpc.StatusCode.FAILED_PRECONDITION, "handshake_rejected")
            self.assertIn("server_max_window_bits", s.details)
        finally:
            raw.stop()

    def test_open_extensions_are_refused(self):
        s = self.session()
        s.send_open("ws://127.0.0.1:9/", extensions=["permessage-deflate"])
        s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")
        self.assertIn("open.compression", s.details)
        s = self.session()
        s.send_open("ws://127.0.0.1:9/", extensions=["x-webkit-deflate-frame"])
        s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")
        self.assertIn("not implemented by the gateway", s.details)
        s = self.session()
        s.send_open("ws://127.0.0.1:9/", compression=C(client_max_window_bits=8))
        s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")
        self.assertIn("zlib", s.details)


NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


class NodeDeflateServer:
    """node/deflate_echo_server.js: a Node `ws` echo server with permessage-deflate on
    (`options`: ws's perMessageDeflate options); events() yields what it prints."""

    def __init__(self, options):
        node = shutil.which("node")
        if node is None or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
            raise AssertionError("Node `ws` is missing: run tests/daemon/node/setup.sh "
                                 "(scripts/setup.sh does)")
        self.proc = subprocess.Popen([node, os.path.join(NODE_DIR, "deflate_echo_server.js"),
                                      json.dumps(options), "60"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = self.next("port")["port"]

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, key, timeout=10):
        try:
            event = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the Node server printed nothing within %s s" % timeout) from None
        if key not in event:
            raise AssertionError("expected a %r event from the Node server, got %r" % (key, event))
        return event

    @property
    def url(self):
        return "ws://127.0.0.1:%d/" % self.port

    def stop(self):
        self.proc.stdin.close()  # the server exits when stdin closes
        self.proc.wait(10)
        self._reader.join(10)  # it ends at the end of the output
        self.proc.stdout.close()


class NodeWsTest(DaemonTestCase):
    TEXT = "".join("node ws line %05d; " % i for i in range(1000))[:16384]

    def run_echo(self, options, compression):
        server = NodeDeflateServer(options)
        try:
            s, opened = self.open_session(server.url, compression=compression)
            answered = server.next("extensions")["extensions"]
            self.assertEqual(list(opened.extensions), [answered])
            for m in ("x" * 64, self.TEXT, self.TEXT, bytes(range(256)) * 64):
                if isinstance(m, str):
                    s.send_text(m)
                else:
                    s.send_binary(m)
                got = s.recv_kind("message")
                self.assertEqual(got.data, m.encode() if isinstance(m, str) else m)
                event = server.next("size")
                self.assertEqual(event["size"], len(m))
                if m == self.TEXT:
                    # 16 KiB of repetitive text crossed the wire in far fewer bytes.
                    self.assertLess(event["bytes_read"] - before, 8192)
                before = event["bytes_read"]
            s.send_close(1000)
            self.assertEqual(s.recv_kind("closed").code, 1000)
            return answered
        finally:
            server.stop()

    def test_node_ws_context_takeover(self):
        answered = self.run_echo({"threshold": 0}, C(mode=C.COMPRESSION_MODE_ON))
        self.assertTrue(answered.startswith("permessage-deflate"), answered)
        self.assertNotIn("no_context_takeover", answered)

    def test_node_ws_no_context_takeover(self):
        answered = self.run_echo(
            {"threshold": 0, "serverNoContextTakeover": True, "clientNoContextTakeover": True},
            C(mode=C.COMPRESSION_MODE_ON, server_no_context_takeover=True,
              client_no_context_takeover=True))
        self.assertIn("server_no_context_takeover", answered)
        self.assertIn("client_no_context_takeover", answered)

    def test_node_ws_window_bits(self):
        answered = self.run_echo({"threshold": 0, "serverMaxWindowBits": 10,
                                  "clientMaxWindowBits": 11},
                                 C(mode=C.COMPRESSION_MODE_ON, server_max_window_bits=10))
        self.assertIn("server_max_window_bits=10", answered)
        self.assertIn("client_max_window_bits=11", answered)


class DaemonDefaultTest(DaemonTestCase):
    CONFIG = {"compression": {"enabled": True, "threshold_bytes": 16,
                              "server_no_context_takeover": True}}

    def test_the_daemon_default_offers_and_open_can_turn_it_off(self):
        server = CompressingEchoServer(server_no_context_takeover=True).start()
        try:
            s, opened = self.open_session(server.url)
            self.assertIn("server_no_context_takeover", opened.extensions[0])
            s.send_text("y" * 32)
            self.assertEqual(s.recv_kind("message").data, b"y" * 32)
            s.send_close(1000)
            s.recv_kind("closed")
            s, opened = self.open_session(server.url, compression=C(mode=C.COMPRESSION_MODE_OFF))
            self.assertEqual(list(opened.extensions), [])
            s.send_text("z" * 32)  # echoed: the server's handler has recorded the connection
            self.assertEqual(s.recv_kind("message").data, b"z" * 32)
            self.assertEqual(server.request_offers, [server.request_offers[0], None])
            self.assertEqual(server.rsv1, [True])  # the second session's message went plain
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
