"""Gateway failures: connect errors, refused and rejected upgrades, policy, limits, bad requests,
and malformed frames from a raw server (closed by the gateway while other sessions go on)."""
import socket
import threading
import time
import unittest

import grpc

from daemon_fixture import (DaemonTestCase, EchoServerTestCase, admin_pb2, gateway_pb2, common_pb2,
                            wait_for)
from servers import (BacklogFull, EchoServer, RawServer, close_payload, frame, wait_closed)

E_INVALID_PROTOCOL_FORMAT = 0x80000052
E_SUBPROTOCOL_NOT_SUPPORTED = 0x83760004


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def headers_dict(headers):
    return {h.name.lower(): h.value for h in headers}


def answer_with(response_bytes):
    """A raw-server script: read the upgrade request, write `response_bytes`, then wait until the
    gateway hangs up (so the bytes are not cut off by our close)."""
    def script(conn):
        conn.read_request()
        conn.send(response_bytes)
        try:
            conn.read_exactly(1, timeout=10)
        except (EOFError, OSError):
            pass
    return script


class ConnectFailureTest(DaemonTestCase):
    def open_expecting(self, url, code, cause, **kwargs):
        s = self.session()
        s.send_open(url, **kwargs)
        return s.expect_failure(code, cause)

    def test_connection_refused(self):
        detail = self.open_expecting("ws://127.0.0.1:%d/" % closed_port(),
                                     grpc.StatusCode.UNAVAILABLE, "connection_refused")
        self.assertEqual(detail.http_status, 0)

    def test_dns_failure(self):
        # .invalid never resolves (RFC 6761). Should the machine's resolver hang instead of
        # answering, the short connect timeout turns it into DEADLINE_EXCEEDED.
        s = self.session()
        s.send_open("ws://no-such-host.wsgate-test.invalid:8080/",
                    timeouts=gateway_pb2.Timeouts(connect_ms=4000))
        m = s.recv()
        self.assertIsNotNone(m, "no message (status %s %s)" % (s.code, s.details))
        self.assertEqual(m.WhichOneof("kind"), "error", m)
        s.wait_done()
        detail = s.error_detail()
        self.assertIn((s.code, detail.cause),
                      [(grpc.StatusCode.UNAVAILABLE, "dns_failure"),
                       (grpc.StatusCode.DEADLINE_EXCEEDED, "connect_timeout")])

    def test_connect_timeout(self):
        hang = BacklogFull()
        try:
            if not hang.fill():
                self.skipTest("cannot fill a listen backlog on this kernel")
            detail = self.open_expecting(hang.url, grpc.StatusCode.DEADLINE_EXCEEDED,
                                         "connect_timeout",
                                         timeouts=gateway_pb2.Timeouts(connect_ms=300))
            self.assertEqual(detail.http_status, 0)
        finally:
            hang.close()

    def test_handshake_timeout(self):
        def silent(conn):  # reads the request and never answers
            conn.read_request()
            try:
                conn.read_exactly(1, timeout=10)
            except (EOFError, OSError):
                pass
        raw = RawServer(silent).start()
        try:
            self.open_expecting(raw.url, grpc.StatusCode.DEADLINE_EXCEEDED, "handshake_timeout",
                                timeouts=gateway_pb2.Timeouts(handshake_ms=300))
            raw.wait_connection()
        finally:
            raw.stop()

    def refused_upgrade(self, response, code):
        raw = RawServer(answer_with(response)).start()
        try:
            detail = self.open_expecting(raw.url, code, "upgrade_refused")
            conn = raw.wait_connection()
            self.assertEqual(conn.request_line, "GET /raw HTTP/1.1")
            self.assertEqual(conn.headers.get("upgrade", "").lower(), "websocket")
            return detail
        finally:
            raw.stop()

    def test_http_404(self):
        detail = self.refused_upgrade(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nX-Wsgate-Test: nope\r\n\r\nnot found",
            grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(detail.http_status, 404)
        self.assertEqual(headers_dict(detail.http_headers).get(b"x-wsgate-test"), b"nope")

    def test_http_426(self):
        detail = self.refused_upgrade(
            b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"
            b"Content-Length: 0\r\n\r\n",
            grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(detail.http_status, 426)
        self.assertEqual(headers_dict(detail.http_headers).get(b"sec-websocket-version"), b"13")

    def test_http_503_is_unavailable(self):
        detail = self.refused_upgrade(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n",
            grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(detail.http_status, 503)
        self.assertEqual(headers_dict(detail.http_headers).get(b"retry-after"), b"5")

    def rejected_handshake(self, script, **open_kwargs):
        raw = RawServer(script).start()
        try:
            s = self.session()
            s.send_open(raw.url, **open_kwargs)
            detail = s.expect_failure(grpc.StatusCode.FAILED_PRECONDITION, "handshake_rejected")
            raw.wait_connection()
            return detail
        finally:
            raw.stop()

    def test_wrong_accept(self):
        def script(conn):
            conn.read_request()
            conn.send(conn.response_101(accept="dGhlIHNhbXBsZSBub25jZQ=="))
            try:
                conn.read_exactly(1, timeout=10)
            except (EOFError, OSError):
                pass
        detail = self.rejected_handshake(script)
        self.assertEqual(detail.hresult_symbol, "E_INVALID_PROTOCOL_FORMAT")
        self.assertEqual(detail.hresult_value, E_INVALID_PROTOCOL_FORMAT)
        self.assertEqual(detail.http_status, 101)

    def test_unoffered_subprotocol(self):
        seen = {}

        def script(conn):
            seen.update(conn.read_request())
            conn.send(conn.response_101(headers=[("Sec-WebSocket-Protocol", "other")]))
            try:
                conn.read_exactly(1, timeout=10)
            except (EOFError, OSError):
                pass
        detail = self.rejected_handshake(script, subprotocols=["chat", "superchat"])
        self.assertEqual(seen.get("sec-websocket-protocol"), "chat, superchat")
        self.assertEqual(detail.hresult_symbol, "E_SUBPROTOCOL_NOT_SUPPORTED")
        self.assertEqual(detail.hresult_value, E_SUBPROTOCOL_NOT_SUPPORTED)

    def test_garbage_instead_of_http(self):
        raw = RawServer(answer_with(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")).start()
        try:
            s = self.session()
            s.send_open(raw.url)
            s.expect_failure(grpc.StatusCode.FAILED_PRECONDITION, "handshake_rejected")
        finally:
            raw.stop()

    def test_subprotocol_negotiated(self):
        server = EchoServer(subprotocols=["chat"]).start()
        try:
            s, opened = self.open_session(server.url, subprotocols=["superchat", "chat"])
            self.assertEqual(opened.subprotocol, "chat")
            s.send_close(1000)
            self.assertEqual(s.recv_kind("closed").code, 1000)
        finally:
            server.stop()

    def test_failures_are_counted(self):
        self.open_expecting("ws://127.0.0.1:%d/" % closed_port(),
                            grpc.StatusCode.UNAVAILABLE, "connection_refused")
        stats = self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        self.assertGreaterEqual(stats.failures_by_cause["connection_refused"], 1)


class BadRequestTest(EchoServerTestCase):
    def test_first_message_not_open(self):
        s = self.session()
        s.send_text("hello")
        s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")

    def test_stream_ends_before_open(self):
        s = self.session()
        s.end()
        s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")

    def test_bad_urls(self):
        for url in ["", "http://127.0.0.1:%d/" % self.server.port, "not a url",
                    "ws://", "ws://127.0.0.1:99999/", "ws://[::1/"]:
            with self.subTest(url=url):
                s = self.session()
                s.send_open(url)
                s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")

    def test_reserved_headers(self):
        for name in ["Host", "host", "Connection", "Upgrade", "Sec-WebSocket-Key",
                     "Sec-WebSocket-Protocol", "Content-Length"]:
            with self.subTest(header=name):
                s = self.session()
                s.send_open(self.server.url,
                            headers=[common_pb2.HttpHeader(name=name.encode(), value=b"x")])
                s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")

    def test_header_injection(self):
        s = self.session()
        s.send_open(self.server.url, headers=[
            common_pb2.HttpHeader(name=b"X-Ok", value=b"a\r\nX-Injected: 1")])
        s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")

    def test_extra_header_reaches_the_server(self):
        url = self.server.unique_url()
        s, _ = self.open_session(url, headers=[
            common_pb2.HttpHeader(name=b"X-Wsgate-Test", value=b"42"),
            common_pb2.HttpHeader(name=b"User-Agent", value=b"daemon-test")])
        conn = self.server.connection(url)
        self.assertEqual(conn.request_headers["X-Wsgate-Test"], "42")
        self.assertEqual(conn.request_headers["User-Agent"], "daemon-test")
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)

    def drain_until_end(self, s):
        kinds = []
        while True:
            m = s.recv()
            if m is None:
                return kinds
            kinds.append(m)

    def test_invalid_utf8_text_from_the_client(self):
        url = self.server.unique_url()
        s, _ = self.open_session(url)
        conn = self.server.connection(url)
        s.send_text(b"\xff\xfe not utf-8")
        messages = self.drain_until_end(s)
        errors = [m.error for m in messages if m.WhichOneof("kind") == "error"]
        self.assertEqual(len(errors), 1, messages)
        self.assertEqual(errors[0].code, "INVALID_ARGUMENT")
        self.assertEqual(s.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(s.error_detail().cause, "bad_request")
        self.assertEqual(wait_closed(conn), 1008)  # policy violation upstream
        self.assertEqual(conn.received, [])

    def test_invalid_close_code_from_the_client(self):
        for code in [1005, 1006, 999, 5000, 70000]:
            with self.subTest(code=code):
                url = self.server.unique_url()
                s, _ = self.open_session(url)
                s.send_close(code)
                self.drain_until_end(s)
                self.assertEqual(s.code, grpc.StatusCode.INVALID_ARGUMENT, s.details)
                self.assertEqual(wait_closed(self.server.connection(url)), 1008)

    def test_second_open(self):
        s, _ = self.open_session(self.server.url)
        s.send_open(self.server.url)
        self.drain_until_end(s)
        self.assertEqual(s.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_daemon_still_serves(self):
        s, _ = self.open_session(self.server.url)
        s.send_text("still here")
        self.assertEqual(s.recv_kind("message").data, b"still here")
        self.assert_alive_and_serving()


class PolicyTest(DaemonTestCase):
    CONFIG = {"policy": {"deny_cidrs": ["127.0.0.0/8"], "deny_hosts": ["denied.example"]}}

    def setUp(self):
        super().setUp()
        self.raw = RawServer(answer_with(b"HTTP/1.1 500 Should Not Happen\r\n\r\n")).start()

    def tearDown(self):
        self.raw.stop()
        super().tearDown()

    def test_denied_cidr(self):
        s = self.session()
        s.send_open(self.raw.url)
        detail = s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "destination_denied")
        self.assertEqual(detail.http_status, 0)
        self.assertEqual(self.raw.connections, [])  # never connected

    def test_denied_host(self):
        s = self.session()
        s.send_open("ws://denied.example:%d/" % self.raw.port)
        s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "destination_denied")

    def test_denied_after_resolution(self):
        s = self.session()
        s.send_open("ws://localhost:%d/" % self.raw.port)  # resolves to loopback only
        s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "destination_denied")
        self.assertEqual(self.raw.connections, [])

    def test_denials_are_counted(self):
        s = self.session()
        s.send_open(self.raw.url)
        s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "destination_denied")
        stats = self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        self.assertGreaterEqual(stats.failures_by_cause["destination_denied"], 1)


class SessionLimitTest(EchoServerTestCase):
    CONFIG = {"limits": {"max_sessions": 1}}

    def test_second_session_is_refused(self):
        admin = self.daemon.admin()
        first, _ = self.open_session(self.server.url)
        second = self.session()
        second.send_open(self.server.url)
        second.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "session_limit")
        stats = admin.GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        self.assertGreaterEqual(stats.failures_by_cause["session_limit"], 1)
        # The first one is unaffected.
        first.send_text("first")
        self.assertEqual(first.recv_kind("message").data, b"first")
        first.send_close(1000)
        first.recv_kind("closed")
        # Its slot is free again once it is gone.
        wait_for(lambda: admin.GetStats(admin_pb2.GetStatsRequest(), timeout=5)
                 .active_sessions == 0, 10, what="the first session's slot to be released")
        third, _ = self.open_session(self.server.url)
        third.send_close(1000)
        self.assertEqual(third.recv_kind("closed").code, 1000)


# --- malformed frames ---------------------------------------------------------------------------

def malformed(bad_bytes):
    """A raw-server script: a valid 101, then `bad_bytes`; records the frame the gateway sends
    back (it must be a close), or what happened instead, and answers nothing."""
    def script(conn):
        conn.read_request()
        conn.send(conn.response_101())
        conn.send(bad_bytes)
        start = time.monotonic()
        try:
            conn.result["frame"] = conn.read_frame(timeout=10)
        except EOFError:
            conn.result["frame"] = None
            conn.result["instead"] = ("the connection was closed after %.2f s without a frame"
                                      % (time.monotonic() - start))
            return
        try:  # then the gateway drops the connection
            conn.read_exactly(1, timeout=10)
            conn.result["after"] = "data"
        except EOFError:
            conn.result["after"] = "eof"
        except OSError as e:
            conn.result["after"] = repr(e)
    return script


MALFORMED = [
    # name, bytes after the 101, expected close code
    ("reserved_opcode_0x3", frame(0x3, b"x"), 1002),
    ("invalid_utf8_text", frame(0x1, b"ok \xff\xfe"), 1007),
    ("ping_of_126_bytes", frame(0x9, b"p" * 126), 1002),
    ("masked_server_frame", frame(0x1, b"masked", mask=b"\x01\x02\x03\x04"), 1002),
    ("rsv1_without_extension", frame(0x1, b"rsv", rsv=4), 1002),
    ("continuation_without_start", frame(0x0, b"cont"), 1002),
    ("fragmented_ping", frame(0x9, b"p", fin=False), 1002),
    ("close_with_one_byte", frame(0x8, b"\x03"), 1002),
    ("close_with_code_1005", frame(0x8, close_payload(1005)), 1002),
    ("invalid_utf8_across_fragments", frame(0x1, b"ab\xc3", fin=False) + frame(0x0, b"(", fin=True),
     1007),
]


class MalformedFramesTest(EchoServerTestCase):
    # A short close timeout: a close frame that is never sent costs 1 s per case, not 3.
    CONFIG = {"timeouts": {"close_ms": 1000}}

    def run_malformed(self, name, bad_bytes, expected_code):
        raw = RawServer(malformed(bad_bytes)).start()
        try:
            s, _ = self.open_session(raw.url)
            closed = s.recv_kind("closed")
            self.assertEqual(closed.code, expected_code, name)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY, name)
            self.assertFalse(closed.clean, name)
            detail = s.expect_failure(grpc.StatusCode.DATA_LOSS, "protocol_violation")
            self.assertTrue(detail.hresult_symbol, name)
            conn = raw.wait_connection()
            self.assertIsNone(conn.error, "%s: raw server: %r" % (name, conn.error))
            self.assertIsNotNone(conn.result["frame"], "%s: the server expected the gateway's "
                                 "close frame (%d), but %s" % (name, expected_code,
                                                               conn.result.get("instead")))
            fin, opcode, payload, masked = conn.result["frame"]
            self.assertEqual((fin, opcode, masked), (True, 0x8, True), name)
            self.assertEqual(int.from_bytes(payload[:2], "big"), expected_code, name)
            return detail
        finally:
            raw.stop()

    def test_malformed_frames_while_other_sessions_work(self):
        others = []
        for i in range(4):
            url = self.server.unique_url()
            s, _ = self.open_session(url)
            others.append((s, self.server.connection(url)))
        for name, bad_bytes, code in MALFORMED:
            with self.subTest(case=name):
                self.run_malformed(name, bad_bytes, code)
            for i, (s, _) in enumerate(others):
                s.send_text("after %s on %d" % (name, i))
                self.assertEqual(s.recv_kind("message").data,
                                 ("after %s on %d" % (name, i)).encode())
        self.assert_alive_and_serving()
        for s, conn in others:
            s.send_close(1000)
            self.assertEqual(s.recv_kind("closed").code, 1000)
            self.assertEqual(wait_closed(conn), 1000)

    def test_malformed_frames_in_parallel(self):
        errors = []

        def run(case):
            try:
                self.run_malformed(*case)
            except BaseException as e:  # collected for the main thread
                errors.append("%s: %s" % (case[0], e))

        threads = [threading.Thread(target=run, args=(case,)) for case in MALFORMED]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "a case did not finish")
        self.assertEqual(errors, [])
        self.assert_alive_and_serving()

    def test_message_too_big(self):
        raw = RawServer(malformed(frame(0x2, b"\x00" * 2000))).start()
        try:
            s, _ = self.open_session(raw.url, limits=gateway_pb2.Limits(max_message_bytes=1000))
            closed = s.recv_kind("closed")
            self.assertEqual(closed.code, 1009)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY)
            s.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "message_too_big")
            conn = raw.wait_connection()
            fin, opcode, payload, masked = conn.result["frame"]
            self.assertEqual((opcode, int.from_bytes(payload[:2], "big")), (0x8, 1009))
        finally:
            raw.stop()


if __name__ == "__main__":
    unittest.main()
