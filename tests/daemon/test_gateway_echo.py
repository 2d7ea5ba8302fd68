"""Gateway.Connect against a python websockets echo server: messages of every size class, fragments
both ways, ping/pong, the three ways a session closes, concurrency, Admin and health."""
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

import grpc

from daemon_fixture import SERVING, EchoServerTestCase, admin_pb2, gateway_pb2, wait_for
from servers import EchoSubprocess, pattern_bytes, wait_closed

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


def text_of(n):
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    return (alphabet * (n // len(alphabet) + 1))[:n]


class GatewayEchoTest(EchoServerTestCase):
    def open_tracked(self, **kwargs):
        """A session on a URL of its own, its `opened`, and the server's record of it."""
        url = self.server.unique_url()
        s, opened = self.open_session(url, **kwargs)
        return s, opened, self.server.connection(url)

    def echo(self, session, kind, payload):
        if kind == "text":
            session.send_text(payload)
        else:
            session.send_binary(payload)
        m = session.recv_kind("message")
        self.assertEqual(m.text, kind == "text")
        self.assertTrue(m.final)
        self.assertEqual(len(m.data), len(payload))
        self.assertEqual(m.data, payload)

    def test_opened_describes_the_upgrade(self):
        s, opened = self.open_session(self.server.url)
        self.assertEqual(opened.http_status, 101)
        self.assertTrue(opened.session_id)
        self.assertEqual(opened.subprotocol, "")
        names = {h.name.lower() for h in opened.response_headers}
        self.assertIn(b"sec-websocket-accept", names)
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)

    def test_text_and_binary_sizes(self):
        s, _ = self.open_session(self.server.url)
        for n in SIZES:
            with self.subTest(kind="text", size=n):
                self.echo(s, "text", text_of(n))
            with self.subTest(kind="binary", size=n):
                self.echo(s, "binary", pattern_bytes(n))
        # Multi-byte UTF-8 survives both ways.
        self.echo(s, "text", "h\u00e9llo w\u00f6rld \u2603 \U0001F600".encode())
        s.send_close(1000)
        closed = s.recv_kind("closed")
        self.assertEqual((closed.code, closed.clean), (1000, True))
        self.assertEqual(s.wait_done(), grpc.StatusCode.OK)

    def test_fragments_out_are_one_message_upstream(self):
        s, _, conn = self.open_tracked()
        # A text message in three fragments, one splitting a two-byte UTF-8 sequence.
        s.send_fragment(b"Hel", text=True)
        s.send_fragment(b"lo, w\xc3", text=True)
        s.send_fragment(b"\xb6rld", text=True, final=True)
        m = s.recv_kind("message")
        self.assertEqual((m.text, m.final, m.data), (True, True, "Hello, w\u00f6rld".encode()))
        # A binary message in fragments; `text` of later fragments does not count.
        s.send_fragment(b"\x00\x01", text=False)
        s.send_fragment(b"", text=True)
        s.send_fragment(pattern_bytes(70000), text=True)
        s.send_fragment(b"\xff", final=True)
        m = s.recv_kind("message")
        self.assertEqual((m.text, m.final), (False, True))
        self.assertEqual(m.data, b"\x00\x01" + pattern_bytes(70000) + b"\xff")
        self.server.wait_until(lambda: len(conn.received) >= 2, what="two messages upstream")
        self.assertEqual(conn.received[0], "Hello, w\u00f6rld")
        self.assertEqual(conn.received[1], b"\x00\x01" + pattern_bytes(70000) + b"\xff")
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)

    def test_stream_fragments_in(self):
        s, _ = self.open_session(self.server.url, stream_fragments=True)
        # A 1 MiB single-frame message arrives in several chunks; `final` on the last only.
        s.send_text("send-big:%d" % (1 << 20))
        chunks = []
        while True:
            m = s.recv_kind("message")
            self.assertFalse(m.text)
            chunks.append(m)
            if m.final:
                break
        self.assertGreater(len(chunks), 1)
        self.assertTrue(all(not c.final for c in chunks[:-1]))
        self.assertEqual(b"".join(c.data for c in chunks), pattern_bytes(1 << 20))
        # A message the server sends in three fragments.
        s.send_text("send-fragments")
        chunks = []
        while True:
            m = s.recv_kind("message")
            self.assertTrue(m.text)
            chunks.append(m)
            if m.final:
                break
        self.assertGreaterEqual(len(chunks), 3)
        self.assertEqual(b"".join(c.data for c in chunks), b"frag-one|frag-two|end")
        # Small whole messages are one final chunk.
        self.echo(s, "binary", b"small")
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)

    def test_whole_messages_without_stream_fragments(self):
        s, _ = self.open_session(self.server.url)
        s.send_text("send-fragments")
        m = s.recv_kind("message")
        self.assertEqual((m.text, m.final, m.data), (True, True, b"frag-one|frag-two|end"))
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)

    def test_ping_pong(self):
        s, _ = self.open_session(self.server.url)
        s.send_ping()
        s.recv_kind("pong")
        # The server's ping is answered by the gateway (not shown to the client).
        s.send_text("ping-me")
        m = s.recv_kind("message")
        self.assertEqual(m.data, b"pong-received")
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)

    def test_client_close(self):
        s, _, conn = self.open_tracked()
        s.send_close(4001, "bye")
        closed = s.recv_kind("closed")
        self.assertEqual(closed.code, 4001)
        self.assertEqual(closed.reason, "bye")
        self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_CLIENT)
        self.assertTrue(closed.clean)
        self.assertIsNone(s.recv())  # the stream ends after `closed`
        self.assertEqual(s.wait_done(), grpc.StatusCode.OK)
        self.assertEqual(wait_closed(conn), 4001)
        self.assertEqual(conn.close_reason, "bye")

    def test_server_close(self):
        s, _, conn = self.open_tracked()
        s.send_text("close-me")
        closed = s.recv_kind("closed")
        self.assertEqual(closed.code, 4000)
        self.assertEqual(closed.reason, "server closing")
        self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_SERVER)
        self.assertTrue(closed.clean)
        self.assertIsNone(s.recv())
        self.assertEqual(s.wait_done(), grpc.StatusCode.OK)
        self.assertEqual(wait_closed(conn), 4000)  # the gateway echoed the code

    def test_server_killed_mid_session(self):
        child = EchoSubprocess().start()
        try:
            s, _ = self.open_session(child.url)
            self.echo(s, "text", b"before the kill")
            child.kill()
            closed = s.recv_kind("closed")
            self.assertEqual(closed.code, 1006)
            self.assertFalse(closed.clean)
            self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_SERVER)
            s.wait_done()
        finally:
            child.kill()
        self.assert_alive_and_serving()

    def test_ending_the_stream_sends_1001(self):
        s, _, conn = self.open_tracked()
        self.echo(s, "text", b"last words")
        s.end()
        closed = s.recv_kind("closed")
        self.assertEqual(closed.code, 1001)
        self.assertEqual(closed.initiator, gateway_pb2.INITIATOR_CLIENT)
        self.assertEqual(s.wait_done(), grpc.StatusCode.OK)
        self.assertEqual(wait_closed(conn), 1001)

    def test_50_concurrent_sessions(self):
        count = 50
        all_open = threading.Barrier(count, timeout=30)
        sessions = [self.session() for _ in range(count)]

        def run(i):
            s = sessions[i]
            s.open(self.server.url)
            all_open.wait()
            for j in range(5):
                payload = ("session %d message %d " % (i, j)).encode() * (j * 40 + 1)
                if j % 2:
                    self.echo(s, "binary", payload)
                else:
                    self.echo(s, "text", payload)
            s.send_close(1000, "done %d" % i)
            closed = s.recv_kind("closed")
            return closed.code, closed.reason, s.wait_done()

        with ThreadPoolExecutor(max_workers=count) as pool:
            results = list(pool.map(run, range(count), timeout=90))
        for i, (code, reason, status) in enumerate(results):
            self.assertEqual((code, reason, status), (1000, "done %d" % i, grpc.StatusCode.OK))
        self.assert_alive_and_serving()

    def test_admin_reflects_an_open_session(self):
        admin = self.daemon.admin()
        before = admin.GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        s, opened = self.open_session(self.server.url + "?q=1")
        self.echo(s, "text", b"12345")
        self.echo(s, "binary", b"123")

        def ours():
            for info in admin.ListSessions(admin_pb2.ListSessionsRequest(), timeout=5).sessions:
                if info.id == opened.session_id:
                    return info
            return None

        info = wait_for(lambda: (lambda i: i if i and i.messages_received == 2 else None)(ours()),
                        10, what="ListSessions to show the session's counters")
        self.assertEqual(info.url, self.server.url + "?q=***")  # log.redact: query values masked
        self.assertEqual(info.state, admin_pb2.SESSION_STATE_OPEN)
        self.assertEqual((info.messages_sent, info.bytes_sent), (2, 8))
        self.assertEqual((info.messages_received, info.bytes_received), (2, 8))
        stats = admin.GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        self.assertGreaterEqual(stats.active_sessions, 1)
        self.assertEqual(stats.opens_total, before.opens_total + 1)

        s.send_close(1000)
        s.recv_kind("closed")
        wait_for(lambda: ours() is None, 10, what="the closed session to leave ListSessions")
        stats = admin.GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        self.assertGreaterEqual(stats.bytes_sent, before.bytes_sent + 8)
        self.assertGreaterEqual(stats.bytes_received, before.bytes_received + 8)

    def test_health_serving(self):
        self.assertEqual(self.daemon.health(), SERVING)
        with self.assertRaises(grpc.RpcError) as raised:
            self.daemon.health("no.such.Service")
        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)


if __name__ == "__main__":
    unittest.main()
