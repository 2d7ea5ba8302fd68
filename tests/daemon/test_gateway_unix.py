"""Unix-socket upstreams: ws+unix:///path/to.sock:/request/path through the daemon to a Python
`websockets` server on a unix socket (websockets.unix_serve), the destination policy on socket
paths (denied by default, allow_unix_sockets, deny_unix_sockets), and the failures."""
import os
import shutil
import tempfile
import unittest

import grpc

from daemon_fixture import DaemonTestCase
from servers import EchoServer, wait_closed


class UnixUpstreamTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        # The socket directory is known before the daemon starts: its configuration names it.
        cls.dir = tempfile.mkdtemp(prefix="wsgu-")
        cls.CONFIG = {"policy": {"allow_unix_sockets": [cls.dir + "/*.sock"],
                                 "deny_unix_sockets": [cls.dir + "/denied.sock"]}}
        super().setUpClass()
        cls.server = EchoServer(unix_path=os.path.join(cls.dir, "echo.sock")).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def test_echo_over_a_unix_socket(self):
        url = self.server.unique_url("echo")
        s, opened = self.open_session(url)
        self.assertEqual(opened.http_status, 101)
        s.send_text("over a unix socket")
        m = s.recv_kind("message")
        self.assertEqual((m.text, m.data), (True, b"over a unix socket"))
        conn = self.server.connection(url)
        # The request path is what follows the socket path's ':'; Host is "localhost".
        self.assertEqual(conn.path, url.split(":", 2)[2])
        self.assertEqual(conn.request_headers["Host"], "localhost")
        s.send_close(1000, "done")
        self.assertEqual(s.recv_kind("closed").code, 1000)
        self.assertEqual(wait_closed(conn), 1000)

    def test_missing_request_path_is_slash(self):
        before = len(self.server.connections)
        s, _ = self.open_session("ws+unix://%s" % self.server.unix_path)
        conn = self.server.wait_connections(before + 1)[before]
        self.assertEqual(conn.path, "/")
        s.send_close(1000)
        s.recv_kind("closed")

    def test_missing_socket_is_connection_refused(self):
        s = self.session()
        s.send_open("ws+unix://%s/missing.sock:/x" % self.dir)
        detail = s.expect_failure(grpc.StatusCode.UNAVAILABLE, "connection_refused")
        self.assertIn("no such socket", s.details)
        self.assertEqual(detail.http_status, 0)

    def test_deny_list_wins(self):
        s = self.session()
        s.send_open("ws+unix://%s/denied.sock:/x" % self.dir)
        s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "destination_denied")
        self.assertIn("deny_unix_sockets", s.details)

    def test_path_outside_the_allow_list_is_denied(self):
        s = self.session()
        s.send_open("ws+unix://%s/echo.socket:/x" % self.dir)
        s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "destination_denied")
        self.assertIn("not in allow_unix_sockets", s.details)

    def test_symlink_out_of_the_allowed_directory_is_denied(self):
        other = tempfile.mkdtemp(prefix="wsgu-other-")
        try:
            target = EchoServer(unix_path=os.path.join(other, "target.sock")).start()
            try:
                link = os.path.join(self.dir, "link.sock")
                os.symlink(target.unix_path, link)
                s = self.session()
                s.send_open("ws+unix://%s:/x" % link)
                s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "destination_denied")
                self.assertIn("is a symlink to it", s.details)
                self.assertEqual(target.connections, [])
            finally:
                target.stop()
        finally:
            shutil.rmtree(other, ignore_errors=True)

    def test_bad_unix_urls_are_refused_before_any_io(self):
        too_long = "/" + "a" * 107  # sun_path holds 107 bytes and the NUL
        for url, needle in [
                ("ws+unix://%s:/x" % too_long, "longer than a unix socket path may be"),
                ("ws+unix://relative.sock:/x", "absolute socket path"),
                ("ws+unix:///run/../x.sock:/x", "component"),
                ("wss+unix://%s/echo.sock:/x" % self.dir, "wss+unix is not supported")]:
            with self.subTest(url=url):
                s = self.session()
                s.send_open(url)
                s.expect_failure(grpc.StatusCode.INVALID_ARGUMENT, "bad_request")
                self.assertIn(needle, s.details)


class UnixUpstreamDeniedByDefaultTest(DaemonTestCase):
    """No allow_unix_sockets: every unix socket is refused, even one that listens."""

    def test_denied_by_default(self):
        d = tempfile.mkdtemp(prefix="wsgu-")
        server = EchoServer(unix_path=os.path.join(d, "echo.sock")).start()
        try:
            s = self.session()
            s.send_open(server.url)
            s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "destination_denied")
            self.assertIn("unix sockets are denied by default", s.details)
            self.assertEqual(server.connections, [])
        finally:
            server.stop()
            shutil.rmtree(d, ignore_errors=True)


class UnixUpstreamPerPathLimitTest(DaemonTestCase):
    """limits.max_sessions_per_host counts a unix socket per path ("unix:/path")."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="wsgu-")
        cls.CONFIG = {"policy": {"allow_unix_sockets": [cls.dir + "/*.sock"]},
                      "limits": {"max_sessions_per_host": 1}}
        super().setUpClass()
        cls.one = EchoServer(unix_path=os.path.join(cls.dir, "one.sock")).start()
        cls.two = EchoServer(unix_path=os.path.join(cls.dir, "two.sock")).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.one.stop()
            cls.two.stop()
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def test_one_slot_per_socket_path(self):
        first, _ = self.open_session(self.one.url)
        second = self.session()
        second.send_open(self.one.url)
        second.expect_failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "session_limit")
        self.assertIn("unix:" + self.one.unix_path, second.details)
        # Another path is another destination.
        other, _ = self.open_session(self.two.url)
        for s in (first, other):
            s.send_close(1000)
            self.assertEqual(s.recv_kind("closed").code, 1000)


if __name__ == "__main__":
    unittest.main()
