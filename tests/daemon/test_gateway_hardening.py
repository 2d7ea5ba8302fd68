"""Gateway hardening: the daemon-wide memory budget, frames refused on their declared length,
the whole `Open` validated before any network I/O, per-host counting by normalized host and
resolved address, messages after the client's close, active_sessions after the stream ends,
lost upstreams in failures_by_cause, and a clear TLS version mismatch."""
import socket
import ssl
import struct
import threading
import time
import unittest

import grpc

from daemon_fixture import (DaemonTestCase, TlsEchoServerTestCase, admin_pb2, common_pb2,
                            gateway_pb2)
from servers import EchoServer, EchoSubprocess, RawServer, wait_closed


def upgrade(conn):
    conn.read_request()
    conn.send(conn.response_101())


def stats(daemon):
    return daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5)


class DeclaredLengthTest(DaemonTestCase):
    # A close timeout far above the waits below: a 1009 that only came with a timeout would fail.
    CONFIG = {"timeouts": {"close_ms": 60000}}

    def test_frame_header_declaring_too_much_is_refused_at_once(self):
        seen = {}
        header_sent = threading.Event()

        def script(conn):
            upgrade(conn)
            # Only the header of a binary frame declaring 2^40 bytes; the payload never comes.
            conn.send(bytes([0x82, 127]) + struct.pack("!Q", 1 << 40))
            header_sent.set()
            seen["frame"] = conn.read_frame(timeout=30)

        raw = RawServer(script).start()
        try:
            s, _ = self.open_session(raw.url)
            self.assertTrue(header_sent.wait(10))
            started = time.monotonic()
            closed = s.recv_kind("closed", timeout=10)
            self.assertEqual(closed.code, 1009)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY)
            s.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "message_too_big", timeout=10)
            self.assertLess(time.monotonic() - started, 10)
            conn = raw.wait_connection()
            self.assertIsNone(conn.error, conn.error)
            fin, opcode, payload, masked = seen["frame"]
            self.assertEqual((opcode, int.from_bytes(payload[:2], "big")), (0x8, 1009))
        finally:
            raw.stop()

    def test_declared_length_over_a_client_limit(self):
        def script(conn):
            upgrade(conn)
            conn.send(bytes([0x81, 126]) + struct.pack("!H", 5000) + b"x" * 100)
            conn.read_frame(timeout=30)

        raw = RawServer(script).start()
        try:
            s, _ = self.open_session(raw.url, limits=gateway_pb2.Limits(max_message_bytes=1000))
            self.assertEqual(s.recv_kind("closed", timeout=10).code, 1009)
            s.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "message_too_big", timeout=10)
        finally:
            raw.stop()


class UnparseableMessageTest(DaemonTestCase):
    def test_invalid_utf8_in_a_string_field_is_refused_without_a_log_line(self):
        """protobuf refuses a string field holding invalid UTF-8 (gRPC answers INTERNAL) and
        logs it; those lines go to debug, so clients cannot flood the daemon's log."""
        connect = self.daemon.channel.stream_stream(
            "/wsgate.v1.Gateway/Connect", request_serializer=lambda b: b,
            response_deserializer=lambda b: b)
        bad_open = b"\x0a\x03\x0a\x01\xff"  # ClientMessage{open: Open{url: "\xff"}}
        for _ in range(20):
            with self.assertRaises(grpc.RpcError) as cm:
                list(connect(iter([bad_open]), timeout=10))
            self.assertNotEqual(cm.exception.code(), grpc.StatusCode.OK)
        self.assertEqual(self.daemon.health(), 1)  # still serving
        self.assertNotIn("invalid UTF-8", self.daemon.log_text())


class OpenValidationTest(DaemonTestCase):
    CONFIG = {"limits": {"max_request_headers": 50, "max_request_header_bytes": 8192}}

    def setUp(self):
        super().setUp()
        self.raw = RawServer(upgrade).start()

    def tearDown(self):
        super().tearDown()
        self.raw.stop()

    def refused(self, where, url=None, **open_kwargs):
        s = self.session()
        s.send_open(url or self.raw.url, **open_kwargs)
        s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")
        self.assertIn(where, s.details)
        return s.details

    def test_every_bad_item_is_named_and_nothing_is_connected(self):
        H = common_pb2.HttpHeader
        self.refused("open.subprotocols[1]", subprotocols=["chat", "bad token"])
        self.refused("open.subprotocols[0]", subprotocols=["a,b"])
        self.refused("open.subprotocols[1]", subprotocols=["chat", "chat"])
        self.refused("open.extensions[0]", extensions=["a, b"])
        self.refused("open.extensions[0]", extensions=["x; =1", "permessage-deflate"])
        self.refused("open.extensions[0]", extensions=["x\r\nInjected: 1"])
        self.refused("open.headers[2].name", headers=[
            H(name=b"X-A", value=b"1"), H(name=b"X-B", value=b"2"), H(name=b"Bad Name", value=b"3")])
        self.refused("open.headers[0].value", headers=[H(name=b"X-A", value=b"a\r\nX-Injected: 1")])
        self.refused("open.headers[1].name",
                     headers=[H(name=b"X-A", value=b"1"), H(name=b"Sec-WebSocket-Key", value=b"k")])
        self.refused("open.headers[0].value", headers=[H(name=b"X-A", value=b"a\x00b")])
        # The request head is bounded: 10 000 headers, or one 1 MB value, are refused whole.
        detail = self.refused("limits.max_request_headers",
                              headers=[H(name=b"X-N", value=b"1")] * 10000)
        self.assertIn("10000", detail)
        self.refused("limits.max_request_header_bytes",
                     headers=[H(name=b"X-Big", value=b"v" * (1 << 20))])
        # TLS material is parsed (OpenSSL) before the connect.
        wss = self.raw.url.replace("ws://", "wss://")
        tls_detail = self.refused("open.tls", url=wss,
                                  tls=gateway_pb2.TlsOptions(ca_pem=b"not a certificate"))
        self.assertIn("ca_pem", tls_detail)
        self.refused("open.tls", url=wss, tls=gateway_pb2.TlsOptions(
            client_cert_pem=b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
            client_key_pem=b"garbage"))
        self.refused("open.tls", tls=gateway_pb2.TlsOptions(ca_pem=b"garbage"))  # even for ws://
        self.assertEqual(self.raw.connections, [], "a refused Open made a connection")

    def test_valid_offers_still_reach_the_server(self):
        seen = {}

        def script(conn):
            seen.update(conn.read_request())
            conn.send(conn.response_101())
            try:
                conn.read_frame(timeout=10)
            except (EOFError, OSError, TimeoutError):
                pass

        raw = RawServer(script).start()
        try:
            s, _ = self.open_session(raw.url, subprotocols=["chat", "v2.chat"],
                                     compression=gateway_pb2.Compression(
                                         mode=gateway_pb2.Compression.COMPRESSION_MODE_ON,
                                         server_max_window_bits=12),
                                     headers=[common_pb2.HttpHeader(name=b"X-Ok", value=b"1")] * 50)
            s.send_close(1000)
            raw.wait_connection()
            self.assertEqual(seen["sec-websocket-protocol"], "chat, v2.chat")
            self.assertEqual(seen["sec-websocket-extensions"],
                             "permessage-deflate; server_max_window_bits=12; client_max_window_bits")
        finally:
            raw.stop()


class PerHostNormalizationTest(DaemonTestCase):
    CONFIG = {"limits": {"max_sessions_per_host": 1}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = EchoServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()
        super().tearDownClass()

    def url(self, host):
        return "ws://%s:%d/h" % (host, self.echo.port)

    def refused(self, host):
        s = self.session()
        s.send_open(self.url(host))
        s.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "session_limit")

    def hold_then_refuse(self, holder, others):
        s, _ = self.open_session(self.url(holder))
        for host in others:
            with self.subTest(holder=holder, host=host):
                self.refused(host)
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)
        s.wait_done()

    def test_one_slot_for_every_name_of_the_same_host(self):
        names = ["LOCALHOST", "localhost", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "127.0.0.1"]
        self.hold_then_refuse("LOCALHOST", names)
        # Counted by address after resolution too: a literal first, the name second.
        self.hold_then_refuse("127.0.0.1", ["localhost", "[::ffff:7f00:1]"])
        self.hold_then_refuse("[::ffff:127.0.0.1]", ["localhost", "127.0.0.1"])
        # Every slot was freed: a new session is admitted.
        s, _ = self.open_session(self.url("localhost"))
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)


class SessionEndTest(DaemonTestCase):
    CONFIG = {"timeouts": {"close_ms": 30000}}

    def test_message_after_close_is_refused(self):
        seen = {"frames": []}

        def script(conn):
            upgrade(conn)
            # Reads what the gateway sends and never answers the close: the session stays in
            # its closing handshake while the client sends more.
            try:
                while True:
                    seen["frames"].append(conn.read_frame(timeout=10))
            except (EOFError, OSError, TimeoutError):
                pass

        raw = RawServer(script).start()
        try:
            s, _ = self.open_session(raw.url)
            s.send_close(1000, "bye")
            s.send_text("too late")
            detail = s.expect_failure(grpc.StatusCode.FAILED_PRECONDITION, "after_close")
            self.assertEqual(detail.cause, "after_close")
            self.assertIn("close", s.details)
            raw.wait_connection(timeout=20)
            opcodes = [f[1] for f in seen["frames"]]
            self.assertEqual(opcodes, [0x8], "only the close may reach the server: %r" % opcodes)
        finally:
            raw.stop()

    def test_active_sessions_is_zero_once_every_stream_has_ended(self):
        echo = EchoServer().start()
        raw = RawServer(upgrade).start()
        try:
            sessions = []
            for i in range(10):
                s, _ = self.open_session(echo.unique_url("a"))
                sessions.append(s)
            for s in sessions:
                s.send_close(1000)
            # One ended by a refused client message (the upstream close still runs after it).
            bad, _ = self.open_session(echo.unique_url("bad"))
            bad.send_text(b"\xff\xfe not utf-8")
            sessions.append(bad)
            for s in sessions:
                s.wait_done()
            # No polling: the slot is freed before the stream's status is sent.
            self.assertEqual(stats(self.daemon).active_sessions, 0)
        finally:
            echo.stop()
            raw.stop()

    def test_lost_upstream_is_counted(self):
        before = stats(self.daemon).failures_by_cause.get("connection_lost", 0)
        child = EchoSubprocess().start()
        try:
            s, _ = self.open_session(child.url)
            child.kill()
            closed = s.recv_kind("closed")
            self.assertEqual((closed.code, closed.clean), (1006, False))
            s.wait_done()
        finally:
            child.kill()
        self.assertEqual(stats(self.daemon).failures_by_cause.get("connection_lost", 0),
                         before + 1)


class TlsVersionTest(TlsEchoServerTestCase):
    TLS_MAX_VERSION = ssl.TLSVersion.TLSv1_2

    def test_no_common_version_is_named(self):
        # The websockets (asyncio) server hangs up on a ClientHello it cannot serve; OpenSSL
        # alone would only say "stream truncated".
        s = self.session()
        s.send_open(self.server.url, tls=gateway_pb2.TlsOptions(
            ca_pem=self.ca_pem, min_version=gateway_pb2.TLS_VERSION_1_3))
        m = s.recv()
        self.assertEqual(m.WhichOneof("kind"), "error", m)
        s.wait_done()
        self.assertIn(m.error.detail.cause, ("tls_version_mismatch", "tls_handshake_failed"))
        self.assertIn("TLS 1.3 or later (open.tls.min_version)", s.details)
        # TLS 1.2 (the default minimum) works with the same server.
        ok, _ = self.open_session(self.server.url, tls=gateway_pb2.TlsOptions(ca_pem=self.ca_pem))
        ok.send_close(1000)
        self.assertEqual(ok.recv_kind("closed").code, 1000)

    def test_protocol_version_alert_is_tls_version_mismatch(self):
        # A blocking OpenSSL server answers the same ClientHello with a protocol_version alert.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki["server.pem"], self.pki["server.key"])
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(30)
        port = listener.getsockname()[1]

        def serve():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            try:
                context.wrap_socket(sock, server_side=True).close()
            except (ssl.SSLError, OSError):
                pass
            finally:
                sock.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            s = self.session()
            s.send_open("wss://127.0.0.1:%d/" % port, tls=gateway_pb2.TlsOptions(
                ca_pem=self.ca_pem, min_version=gateway_pb2.TLS_VERSION_1_3))
            s.expect_failure(grpc.StatusCode.FAILED_PRECONDITION, "tls_version_mismatch")
            self.assertIn("no TLS protocol version in common", s.details)
            self.assertIn("TLS 1.3 or later", s.details)
            t.join(30)
        finally:
            listener.close()


class MemoryBudgetTest(DaemonTestCase):
    # 24 MiB for all sessions; a client may ask for messages of up to 64 MiB.
    CONFIG = {"limits": {"memory_budget_bytes": 24 << 20, "max_message_bytes_ceiling": 64 << 20}}

    def stalled_upstream(self):
        """A server that upgrades and then reads nothing, with small socket buffers, so what a
        session sends it stays queued in the daemon."""
        release = threading.Event()

        def script(conn):
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            upgrade(conn)
            release.wait(60)

        raw = RawServer(script)
        raw._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return raw.start(), release

    def test_large_client_messages_past_the_budget_are_refused(self):
        from daemon_fixture import wait_for
        echo = EchoServer().start()
        raw, release = self.stalled_upstream()
        try:
            # Two sessions each send 20 MiB to an upstream that reads nothing: a message is
            # charged until it is written whole, so 40 MiB cannot fit 24 MiB and exactly one of
            # them is refused, whichever came second.
            a, _ = self.open_session(raw.url)
            b, _ = self.open_session(raw.url)
            a.send_binary(b"\x01" * (20 << 20))
            b.send_binary(b"\x02" * (20 << 20))
            wait_for(lambda: a.done.is_set() or b.done.is_set(), 30, what="a refusal")
            refused, kept = (a, b) if a.done.is_set() else (b, a)
            m = refused.recv()
            self.assertEqual(m.WhichOneof("kind"), "error", m)
            self.assertEqual(m.error.code, "RESOURCE_EXHAUSTED")
            self.assertEqual(m.error.detail.cause, "memory_budget")
            self.assertIn("limits.memory_budget_bytes", m.error.message)
            self.assertEqual(refused.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertFalse(kept.done.is_set())
            # Other sessions keep working: small messages, and large ones while they fit.
            s, _ = self.open_session(echo.url)
            s.send_text("still here")
            self.assertEqual(s.recv_kind("message").data, b"still here")
            s.send_binary(b"\x03" * (1 << 20))
            self.assertEqual(len(s.recv_kind("message").data), 1 << 20)
            s.send_close(1000)
            self.assertEqual(s.recv_kind("closed").code, 1000)
            self.assertGreaterEqual(stats(self.daemon).failures_by_cause["memory_budget"], 1)
        finally:
            release.set()
            raw.stop()
            echo.stop()

    def test_large_upstream_message_past_the_budget_is_refused_while_it_streams_in(self):
        echo = EchoServer().start()
        try:
            url = echo.unique_url("big")
            s, _ = self.open_session(url, limits=gateway_pb2.Limits(max_message_bytes=64 << 20))
            s.send_text("send-big:%d" % (30 << 20))  # more than the whole budget
            closed = s.recv_kind("closed", timeout=20)
            self.assertEqual(closed.code, 1013)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY)
            s.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "memory_budget")
            self.assertEqual(wait_closed(echo.connection(url)), 1013)
            # The budget was given back: a message that fits goes through.
            t, _ = self.open_session(echo.unique_url("ok"),
                                     limits=gateway_pb2.Limits(max_message_bytes=64 << 20))
            t.send_text("send-big:%d" % (8 << 20))
            self.assertEqual(len(t.recv_kind("message", timeout=20).data), 8 << 20)
            t.send_close(1000)
            self.assertEqual(t.recv_kind("closed").code, 1000)
        finally:
            echo.stop()


if __name__ == "__main__":
    unittest.main()
