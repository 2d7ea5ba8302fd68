"""SIGTERM drains: every open session is closed with 1001 by the gateway, data already on its way
is delivered first, and the daemon exits 0 within the drain timeout."""
import signal
import time
import unittest

import grpc

from daemon_fixture import Daemon, gateway_pb2, wait_for
from servers import EchoServer, RawServer, pattern_bytes, wait_closed

DRAIN_MS = 6000
GRPC_SHUTDOWN_S = 2.0  # Server::drain_and_stop gives in-flight RPCs 2 s after the drain
MARGIN_S = 3.0


class DrainTest(unittest.TestCase):
    def setUp(self):
        self.servers = [EchoServer().start(), EchoServer().start()]
        self.daemon = Daemon({"timeouts": {"drain_ms": DRAIN_MS, "close_ms": 3000}}).start()
        self.sessions = []

    def tearDown(self):
        for s in self.sessions:
            s.cleanup()
        self.daemon.kill()
        self.daemon.remove_files()
        for server in self.servers:
            server.stop()

    def payloads(self, i):
        return [("text", ("session %d: first" % i).encode()),
                ("binary", pattern_bytes(256 * 1024)),
                ("text", ("session %d: " % i).encode() * 2000),
                ("binary", b""),
                ("text", ("session %d: last before SIGTERM" % i).encode())]

    def test_sigterm_closes_sessions_with_1001_and_exits_0(self):
        upstream = []
        for i, server in enumerate(self.servers):
            url = server.unique_url("drain")
            s = self.daemon.session()
            self.sessions.append(s)
            s.open(url)
            upstream.append(server.connection(url))
            # A first round trip, then messages that are still in flight at SIGTERM.
            s.send_text("warm-up")
            self.assertEqual(s.recv_kind("message").data, b"warm-up")
        for i, s in enumerate(self.sessions):
            for kind, data in self.payloads(i):
                (s.send_text if kind == "text" else s.send_binary)(data)
        # The servers have received and echoed everything (the echoes may still be on their way
        # through the gateway), and nothing of it has been read from the streams yet.
        for i, conn in enumerate(upstream):
            self.servers[i].wait_until(lambda c=conn: c.sent == 1 + len(self.payloads(0)),
                                       timeout=15, what="session %d's echoes" % i)
        start = time.monotonic()
        self.daemon.signal(signal.SIGTERM)

        for i, s in enumerate(self.sessions):
            for kind, data in self.payloads(i):
                m = s.recv_kind("message")
                self.assertEqual((m.text, len(m.data)), (kind == "text", len(data)),
                                 "session %d lost or reordered an echo" % i)
                self.assertEqual(m.data, data)
            closed = s.recv_kind("closed")
            self.assertEqual(closed.code, 1001, closed)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY)
            self.assertTrue(closed.clean, closed)
            self.assertIsNone(s.recv())
            self.assertEqual(s.wait_done(), grpc.StatusCode.OK, s.details)
        for i, conn in enumerate(upstream):
            self.assertEqual(wait_closed(conn), 1001, "server %d" % i)
            self.assertEqual(len(conn.received), 1 + len(self.payloads(i)))

        code = self.daemon.wait(DRAIN_MS / 1000 + GRPC_SHUTDOWN_S + MARGIN_S)
        elapsed = time.monotonic() - start
        self.assertEqual(code, 0, self.daemon.log_tail())
        self.assertLess(elapsed, DRAIN_MS / 1000,
                        "the daemon exited %.2f s after SIGTERM although every session had closed "
                        "(drain_ms %d)%s" % (elapsed, DRAIN_MS, self.daemon.log_tail()))
        log = self.daemon.log_text()
        self.assertIn("drained 2 session(s)", log)
        self.assertIn("wsgated stopped", log)

    def test_new_sessions_are_refused_while_draining(self):
        # An upstream that never answers the close keeps the daemon draining for close_ms.
        def mute(conn):
            conn.read_request()
            conn.send(conn.response_101())
            conn.result["frame"] = conn.read_frame(timeout=15)
            try:
                conn.read_exactly(1, timeout=15)
            except (EOFError, OSError):
                pass
        raw = RawServer(mute).start()
        try:
            s = self.daemon.session()
            self.sessions.append(s)
            s.open(raw.url)
            start = time.monotonic()
            self.daemon.signal(signal.SIGTERM)
            # Once the gateway has sent its 1001 (the drain has begun) and while the session waits
            # for the answer, a new Connect is refused.
            wait_for(lambda: raw.connections and "frame" in raw.connections[0].result, 10,
                     what="the gateway's close frame at the raw server")
            late = self.daemon.session()
            self.sessions.append(late)
            late.send_open(self.servers[0].url)
            late.expect_failure(grpc.StatusCode.UNAVAILABLE, "shutdown")
            closed = s.recv_kind("closed", timeout=10)
            self.assertEqual((closed.code, closed.initiator, closed.clean),
                             (1001, gateway_pb2.INITIATOR_GATEWAY, False))
            self.assertEqual(self.daemon.wait(DRAIN_MS / 1000 + GRPC_SHUTDOWN_S + MARGIN_S), 0,
                             self.daemon.log_tail())
            self.assertLess(time.monotonic() - start, DRAIN_MS / 1000 + GRPC_SHUTDOWN_S)
            conn = raw.wait_connection()
            fin, opcode, payload, masked = conn.result["frame"]
            self.assertEqual((opcode, int.from_bytes(payload[:2], "big")), (0x8, 1001))
        finally:
            raw.stop()


class DrainTimeoutTest(unittest.TestCase):
    """An upstream that never answers the close cannot hold the daemon past drain_ms."""

    def test_exit_0_after_the_drain_timeout(self):
        def mute(conn):
            conn.read_request()
            conn.send(conn.response_101())
            conn.result["frame"] = conn.read_frame(timeout=20)
            try:
                conn.read_exactly(1, timeout=20)
            except (EOFError, OSError):
                pass
        raw = RawServer(mute).start()
        daemon = Daemon({"timeouts": {"drain_ms": 1000, "close_ms": 15000}}).start()
        s = daemon.session()
        try:
            s.open(raw.url)
            start = time.monotonic()
            daemon.signal(signal.SIGTERM)
            code = daemon.wait(1.0 + GRPC_SHUTDOWN_S + MARGIN_S)
            self.assertEqual(code, 0, daemon.log_tail())
            self.assertLess(time.monotonic() - start, 1.0 + GRPC_SHUTDOWN_S + MARGIN_S)
            self.assertIn("drain timeout", daemon.log_text())
            s.wait_done(10)
            conn = raw.wait_connection(timeout=20)
            self.assertEqual(conn.result["frame"][1], 0x8)
        finally:
            s.cleanup()
            daemon.kill()
            daemon.remove_files()
            raw.stop()


if __name__ == "__main__":
    unittest.main()
