"""Session upkeep: idle timeout, keepalive (unsolicited pong), dead-peer detection (ping timeout),
the message size limit (close 1009 + RESOURCE_EXHAUSTED), and frames that arrive in the same TCP
segment as the 101 response."""
import threading
import unittest

import grpc

from daemon_fixture import DaemonTestCase, gateway_pb2
from servers import EchoServer, RawServer, close_payload, frame, wait_closed


def upgrade(conn):
    conn.read_request()
    conn.send(conn.response_101())


class IdleTimeoutTest(DaemonTestCase):
    CONFIG = {"pool": {"idle_timeout_ms": 800}}

    def test_idle_session_is_closed_with_1001(self):
        echo = EchoServer().start()
        try:
            url = echo.unique_url("idle")
            s, _ = self.open_session(url)
            s.send_text(b"keep me busy")
            self.assertEqual(s.recv_kind("message").data, b"keep me busy")
            # Now nothing more: the gateway closes the session once it has been idle 800 ms.
            closed = s.recv_kind("closed", timeout=10)
            self.assertEqual(closed.code, 1001)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY)
            self.assertTrue(closed.clean)
            self.assertEqual(s.wait_done(), grpc.StatusCode.OK)
            conn = echo.connection(url)
            wait_closed(conn)
            self.assertEqual(conn.close_code, 1001)
        finally:
            echo.stop()


class KeepaliveTest(DaemonTestCase):
    # The keepalive floor is 15 s (as KEEPALIVE_INTERVAL's), so this test takes that long; the two
    # cases run side by side against two daemons (this class's, and one with a ping timeout).
    CONFIG = {"pool": {"keepalive_interval_ms": 15000}}

    def test_unsolicited_pong_when_idle_and_dead_peer_detection(self):
        from daemon_fixture import Daemon

        pinging = Daemon({"pool": {"keepalive_interval_ms": 15000, "ping_timeout_ms": 1000}}).start()
        try:
            frames = {}

            def record_one_control_frame(name):
                def script(conn):
                    upgrade(conn)
                    # Never answer: a pong (keepalive) or a ping (dead-peer probe) is expected
                    # once the session has been idle for the keepalive interval.
                    fin, opcode, payload, masked = conn.read_frame(timeout=30)
                    frames[name] = (opcode, payload, masked)
                    try:
                        conn.read_frame(timeout=10)  # whatever follows (close, or nothing)
                    except (EOFError, OSError, TimeoutError):
                        pass
                return script

            raw_pong = RawServer(record_one_control_frame("keepalive")).start()
            raw_ping = RawServer(record_one_control_frame("probe")).start()
            try:
                a, _ = self.open_session(raw_pong.url)
                b, _ = self.open_session(raw_ping.url, daemon=pinging)
                # The dead peer never answers the ping: 1006, not clean, DEADLINE_EXCEEDED.
                closed = b.recv_kind("closed", timeout=30)
                self.assertEqual(closed.code, 1006)
                self.assertFalse(closed.clean)
                self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY)
                detail = b.expect_failure(grpc.StatusCode.DEADLINE_EXCEEDED, "ping_timeout")
                self.assertEqual(detail.cause, "ping_timeout")
                raw_ping.wait_connection(timeout=30)
                raw_pong.wait_connection(timeout=30)
                self.assertEqual(frames["keepalive"][0], 0xA, "an unsolicited pong")
                self.assertTrue(frames["keepalive"][2], "client frames are masked")
                self.assertEqual(frames["probe"][0], 0x9, "a ping")
                a.send_close(1000)
            finally:
                raw_pong.stop()
                raw_ping.stop()
        finally:
            self.assertEqual(pinging.stop(), 0)
            pinging.remove_files()


class MessageLimitTest(DaemonTestCase):
    def test_message_over_the_limit_closes_with_1009(self):
        echo = EchoServer().start()
        try:
            url = echo.unique_url("big")
            s, _ = self.open_session(url, limits=gateway_pb2.Limits(max_message_bytes=1000))
            s.send_text(b"small")
            self.assertEqual(s.recv_kind("message").data, b"small")
            s.send_text(b"send-big:5000")  # the server answers with 5000 bytes
            closed = s.recv_kind("closed", timeout=10)
            self.assertEqual(closed.code, 1009)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_GATEWAY)
            s.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "message_too_big")
            conn = echo.connection(url)
            wait_closed(conn)
            self.assertEqual(conn.close_code, 1009)
            self.assert_alive_and_serving()
        finally:
            echo.stop()


class BytesAfterUpgradeTest(DaemonTestCase):
    def test_frames_in_the_same_segment_as_the_101_are_not_lost(self):
        def script(conn):
            conn.read_request()
            # One send: the 101, a text message, a binary message and a close.
            conn.send(conn.response_101() + frame(0x1, b"first") + frame(0x2, b"\x00\x01") +
                      frame(0x8, close_payload(4001, b"bye")))
            try:
                conn.read_frame(timeout=10)  # the gateway's close reply
            except (EOFError, OSError, TimeoutError):
                pass

        raw = RawServer(script).start()
        try:
            s, _ = self.open_session(raw.url)
            m1 = s.recv_kind("message")
            self.assertEqual((m1.text, m1.data), (True, b"first"))
            m2 = s.recv_kind("message")
            self.assertEqual((m2.text, m2.data), (False, b"\x00\x01"))
            closed = s.recv_kind("closed")
            self.assertEqual((closed.code, closed.reason), (4001, "bye"))
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_SERVER)
        finally:
            raw.stop()


if __name__ == "__main__":
    unittest.main()
