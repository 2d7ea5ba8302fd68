"""Session upkeep end to end: the idle timeout (the one real-time timeout kept here; keepalive,
ping timeout, close/connect/handshake timeouts and every close path are tested without real
time in tests/unit/session/session_machine_test.cc), the message size limit (close 1009 +
RESOURCE_EXHAUSTED), and frames that arrive in the same TCP segment as the 101 response."""
import queue
import socket
import struct
import threading
import unittest

import grpc

from daemon_fixture import DaemonTestCase, gateway_pb2, gateway_pb2_grpc
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


class PerHostLimitTest(DaemonTestCase):
    CONFIG = {"limits": {"max_sessions_per_host": 1}}

    def test_second_session_to_the_same_host_is_refused(self):
        echo = EchoServer().start()
        try:
            first, _ = self.open_session(echo.unique_url("a"))
            second = self.session()
            second.send_open(echo.unique_url("b"))
            second.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "session_limit")
            # The same server named differently is the same host once resolved (see
            # test_gateway_hardening.PerHostNormalizationTest).
            other = self.session()
            other.send_open(echo.unique_url("c").replace("127.0.0.1", "localhost"))
            other.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "session_limit")
            # The slot is freed when the first session ends.
            first.send_close(1000)
            self.assertEqual(first.recv_kind("closed").code, 1000)
            first.wait_done()
            third, _ = self.open_session(echo.unique_url("d"))
            third.send_close(1000)
            self.assertEqual(third.recv_kind("closed").code, 1000)
        finally:
            echo.stop()


class Ipv6Test(DaemonTestCase):
    def test_ipv6_literal_url(self):
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.bind(("::1", 0))
        listener.listen(1)
        listener.settimeout(30)
        port = listener.getsockname()[1]
        seen = {}

        def serve():
            from servers import RawConnection
            sock, _ = listener.accept()
            conn = RawConnection(sock)
            try:
                headers = conn.read_request()
                seen["host"] = headers.get("host")
                conn.send(conn.response_101())
                fin, opcode, payload, masked = conn.read_frame(timeout=30)
                conn.send(frame(opcode, payload))  # echo one message
                fin, opcode, payload, masked = conn.read_frame(timeout=30)
                conn.send(frame(0x8, payload[:2]))  # answer the close
            finally:
                conn.close()

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            s, _ = self.open_session("ws://[::1]:%d/v6" % port)
            s.send_text(b"over IPv6")
            self.assertEqual(s.recv_kind("message").data, b"over IPv6")
            s.send_close(1000)
            self.assertEqual(s.recv_kind("closed").code, 1000)
            server.join(30)
            self.assertEqual(seen["host"], "[::1]:%d" % port)
        finally:
            listener.close()


class BackpressureTest(DaemonTestCase):
    CHUNK = 64 * 1024
    TOTAL_CHUNKS = 1024  # 64 MiB: far more than the socket buffers and gRPC windows hold

    def gateway_with_fixed_window(self):
        """A Gateway stub on a channel whose HTTP/2 receive window does not grow (BDP probing
        off), so that a client that reads nothing holds only the initial window. With probing
        on, gRPC's client grows the window from the bandwidth it measures, whether the
        application reads or not: 7-14 MiB went through before the server blocked here (3-4
        MiB with it off, the TCP buffers), and a CI run on a loaded machine saw all 64 MiB go
        through, which hid the gateway's pause."""
        channel = self.daemon.new_channel([("grpc.http2.bdp_probe", 0)])
        self.addCleanup(channel.close)
        return gateway_pb2_grpc.GatewayStub(channel)

    def test_slow_grpc_client_stops_the_upstream_reads_and_loses_nothing(self):
        blocked = threading.Event()
        state = {"sent": 0}

        def flood(conn):
            upgrade(conn)
            conn.sock.settimeout(2.0)
            for i in range(self.TOTAL_CHUNKS):
                payload = struct.pack("!I", i) + bytes(self.CHUNK - 4)
                data = frame(0x2, payload)
                view = memoryview(data)
                while view:
                    try:
                        n = conn.sock.send(view)
                    except socket.timeout:
                        # Nothing could be written for 2 s: the gateway stopped reading.
                        blocked.set()
                        conn.sock.settimeout(30.0)
                        continue
                    view = view[n:]
                state["sent"] = i + 1
            conn.send(frame(0x8, close_payload(1000)))
            try:
                conn.read_frame(timeout=30)
            except (EOFError, OSError, TimeoutError):
                pass

        raw = RawServer(flood).start()
        requests = queue.Queue()

        def request_iterator():
            while True:
                m = requests.get()
                if m is None:
                    return
                yield m

        requests.put(gateway_pb2.ClientMessage(open=gateway_pb2.Open(
            url=raw.url, limits=gateway_pb2.Limits(max_queued_bytes=256 * 1024))))
        call = self.gateway_with_fixed_window().Connect(request_iterator(), timeout=120)
        try:
            # This client reads nothing until the server reports that it cannot write any more.
            self.assertTrue(blocked.wait(60), "the upstream was never slowed down: the gateway "
                            "kept reading while its client did not (sent %d chunks)" % state["sent"])
            self.assertLess(state["sent"], self.TOTAL_CHUNKS)
            first = next(call)
            self.assertEqual(first.WhichOneof("kind"), "opened")
            received = 0
            for m in call:
                kind = m.WhichOneof("kind")
                if kind == "closed":
                    self.assertEqual(m.closed.code, 1000)
                    break
                self.assertEqual(kind, "message")
                self.assertEqual(len(m.message.data), self.CHUNK)
                self.assertEqual(struct.unpack("!I", m.message.data[:4])[0], received,
                                 "messages lost or reordered")
                received += 1
            self.assertEqual(received, self.TOTAL_CHUNKS)
        finally:
            requests.put(None)
            call.cancel()
            raw.stop()
        self.assert_alive_and_serving()

    def test_slow_upstream_stops_the_grpc_reads_and_loses_nothing(self):
        may_read = threading.Event()
        got = {"count": 0, "in_order": True}

        def slow_reader(conn):
            upgrade(conn)
            may_read.wait(60)  # reads nothing until the client has been slowed down
            while True:
                # Like conn.read_frame(), but unmasking only the sequence number: 64 MiB through
                # Python's per-byte unmasking would take most of a minute.
                b0, b1 = conn.read_exactly(2, 60)
                length = b1 & 0x7F
                if length == 126:
                    length = struct.unpack("!H", conn.read_exactly(2, 60))[0]
                elif length == 127:
                    length = struct.unpack("!Q", conn.read_exactly(8, 60))[0]
                mask = conn.read_exactly(4, 60)
                payload = conn.read_exactly(length, 60)
                head = bytes(c ^ mask[i] for i, c in enumerate(payload[:4]))
                if b0 & 0x0F == 0x8:
                    conn.send(frame(0x8, head[:2]))
                    return
                if struct.unpack("!I", head)[0] != got["count"]:
                    got["in_order"] = False
                got["count"] += 1

        raw = RawServer(slow_reader).start()
        pulled = {"n": 0}
        stalled = threading.Event()
        progress = threading.Condition()

        def request_iterator():
            yield gateway_pb2.ClientMessage(open=gateway_pb2.Open(
                url=raw.url, limits=gateway_pb2.Limits(max_queued_bytes=256 * 1024)))
            for i in range(self.TOTAL_CHUNKS):
                with progress:
                    pulled["n"] = i + 1
                    progress.notify_all()
                yield gateway_pb2.ClientMessage(
                    binary=struct.pack("!I", i) + bytes(self.CHUNK - 4))
            yield gateway_pb2.ClientMessage(close=gateway_pb2.Close(code=1000))

        call = self.daemon.gateway().Connect(request_iterator(), timeout=120)
        try:
            self.assertEqual(next(call).WhichOneof("kind"), "opened")
            # gRPC pulls the next message only when the daemon reads: wait until it stops.
            with progress:
                last = -1
                while pulled["n"] != last and pulled["n"] < self.TOTAL_CHUNKS:
                    last = pulled["n"]
                    progress.wait(2.0)
                if pulled["n"] < self.TOTAL_CHUNKS:
                    stalled.set()
            self.assertTrue(stalled.is_set(), "the client was never slowed down: the gateway "
                            "read all %d messages while the upstream read none" % pulled["n"])
            may_read.set()
            closed = None
            for m in call:
                if m.WhichOneof("kind") == "closed":
                    closed = m.closed
            self.assertIsNotNone(closed)
            self.assertEqual(closed.code, 1000)
            raw.wait_connection(timeout=60)
            self.assertEqual(got["count"], self.TOTAL_CHUNKS, "messages lost")
            self.assertTrue(got["in_order"], "messages reordered")
        finally:
            may_read.set()
            call.cancel()
            raw.stop()
        self.assert_alive_and_serving()


if __name__ == "__main__":
    unittest.main()
