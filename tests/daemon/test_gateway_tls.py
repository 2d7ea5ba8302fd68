"""wss:// through the gateway: trust from ca_pem, ca_file and the daemon's tls.ca_file; untrusted
CAs and name mismatches fail the TLS handshake; insecure_skip_verify skips verification; a
session's end sends TLS close_notify."""
import ssl
import unittest

import grpc

from daemon_fixture import TlsEchoServerTestCase, gateway_pb2
from servers import RawServer, close_payload, frame


class TlsTestBase(TlsEchoServerTestCase):
    def echo_round_trip(self, url, **tls):
        s, opened = self.open_session(url, tls=gateway_pb2.TlsOptions(**tls))
        self.assertEqual(opened.http_status, 101)
        s.send_text("over tls")
        self.assertEqual(s.recv_kind("message").data, b"over tls")
        s.send_binary(b"\x00" * 70000)
        self.assertEqual(s.recv_kind("message").data, b"\x00" * 70000)
        s.send_close(1000)
        closed = s.recv_kind("closed")
        self.assertEqual((closed.code, closed.clean), (1000, True))
        self.assertEqual(s.wait_done(), grpc.StatusCode.OK)

    def expect_tls_failure(self, url, **tls):
        s = self.session()
        s.send_open(url, tls=gateway_pb2.TlsOptions(**tls))
        return s.expect_failure(grpc.StatusCode.UNAVAILABLE, "tls_handshake_failed")


class GatewayTlsTest(TlsTestBase):
    @classmethod
    def configure(cls):
        cls.CONFIG = {"tls": {"allow_client_file_paths": True}}

    def test_ca_pem(self):
        self.echo_round_trip(self.server.url, ca_pem=self.ca_pem)

    def test_ca_pem_by_host_name(self):
        self.echo_round_trip(self.server.url.replace("127.0.0.1", "localhost"), ca_pem=self.ca_pem)

    def test_ca_file(self):
        self.echo_round_trip(self.server.url, ca_file=self.pki["ca.pem"])

    def test_tls_1_3_minimum(self):
        self.echo_round_trip(self.server.url, ca_pem=self.ca_pem,
                             min_version=gateway_pb2.TLS_VERSION_1_3)

    def test_untrusted_ca(self):
        self.expect_tls_failure(self.server.url, ca_pem=self.other_ca_pem)

    def test_untrusted_by_the_system_store(self):
        self.expect_tls_failure(self.server.url)

    def test_hostname_mismatch(self):
        detail = self.expect_tls_failure(self.server.url, ca_pem=self.ca_pem,
                                         server_name="wrong.example")
        self.assertEqual(detail.http_status, 0)

    def test_insecure_skip_verify(self):
        self.echo_round_trip(self.server.url, insecure_skip_verify=True)
        self.echo_round_trip(self.server.url, insecure_skip_verify=True,
                             server_name="wrong.example", ca_pem=self.other_ca_pem)
        self.assertIn("TLS verification disabled", self.daemon.log_text())

    def raw_tls_server(self, script):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki["server.pem"], self.pki["server.key"])
        raw = RawServer(script, ssl_context=context).start()
        self.addCleanup(raw.stop)
        return raw

    def test_client_close_ends_tls_with_close_notify(self):
        def script(conn):
            conn.read_request()
            conn.send(conn.response_101())
            conn.result["close"] = conn.read_frame()
            conn.send(frame(0x8, close_payload(1000)))
            conn.result["end"] = conn.read_end()
        raw = self.raw_tls_server(script)
        s, _ = self.open_session(raw.url, tls=gateway_pb2.TlsOptions(ca_pem=self.ca_pem))
        s.send_close(1000)
        closed = s.recv_kind("closed")
        self.assertEqual((closed.code, closed.clean), (1000, True))
        conn = raw.wait_connection()
        self.assertIsNone(conn.error)
        self.assertEqual(conn.result["close"][1], 0x8)
        # The TLS stream ended with the gateway's close_notify, not cut short.
        self.assertEqual(conn.result["end"], "eof")

    def test_server_close_ends_tls_with_close_notify(self):
        def script(conn):
            conn.read_request()
            conn.send(conn.response_101())
            conn.send(frame(0x8, close_payload(4000, b"bye")))
            conn.result["answer"] = conn.read_frame()
            conn.result["end"] = conn.read_end()
        raw = self.raw_tls_server(script)
        s, _ = self.open_session(raw.url, tls=gateway_pb2.TlsOptions(ca_pem=self.ca_pem))
        closed = s.recv_kind("closed")
        self.assertEqual((closed.code, closed.initiator), (4000, gateway_pb2.INITIATOR_SERVER))
        conn = raw.wait_connection()
        self.assertIsNone(conn.error)
        self.assertEqual(conn.result["answer"][1], 0x8)
        self.assertEqual(conn.result["end"], "eof")

    def test_daemon_survives_tls_failures(self):
        for _ in range(3):
            self.expect_tls_failure(self.server.url, ca_pem=self.other_ca_pem)
        self.echo_round_trip(self.server.url, ca_pem=self.ca_pem)
        self.assert_alive_and_serving()


class GatewayTlsDefaultsTest(TlsTestBase):
    """Default [tls]: clients may not name files; the daemon's tls.ca_file is the trust store."""

    @classmethod
    def configure(cls):
        cls.CONFIG = {"tls": {"ca_file": cls.pki["ca.pem"]}}

    def test_daemon_ca_file_is_the_default_trust(self):
        self.echo_round_trip(self.server.url)

    def test_client_file_paths_are_refused(self):
        s = self.session()
        s.send_open(self.server.url, tls=gateway_pb2.TlsOptions(ca_file=self.pki["ca.pem"]))
        s.expect_failure(grpc.StatusCode.PERMISSION_DENIED, "bad_request")

    def test_ca_pem_adds_to_the_daemon_ca_file(self):
        # service/net/tls_context.h: ca_pem is added to the CA file (here the daemon's), while
        # without any CA file it replaces the system store (test_untrusted_ca above).
        self.echo_round_trip(self.server.url, ca_pem=self.other_ca_pem)


if __name__ == "__main__":
    unittest.main()
