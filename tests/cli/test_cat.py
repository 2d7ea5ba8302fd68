"""`wsgate cat` in pipe mode against the real daemon and real WebSocket servers: text, binary,
1 MiB messages, close codes and the exit status mapping (client-sdk/cli/exit_status.h), refused
upgrades, network and TLS failures, subprotocols and headers, Ctrl-C."""
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from cli_fixture import CatProcess, run_cli
from certs import make_certs
from daemon_fixture import PROTO_PYTHON, REPO, DaemonTestCase, EchoServerTestCase
from servers import (EchoServer, EchoSubprocess, RawServer, close_payload, frame, pattern_bytes,
                     wait_closed)

MIB = 1 << 20


class CatEchoTest(EchoServerTestCase):
    ECHO_SERVER_OPTIONS = {"subprotocols": ["chat.v2", "chat.v1"]}

    def cat(self, *args):
        p = CatProcess(list(args), self.daemon)
        self.addCleanup(p.kill)
        return p

    def test_text_lines_round_trip_and_eof_closes_with_1000(self):
        url = self.server.unique_url("text")
        p = self.cat(url)
        p.write("hello\n")
        self.assertEqual(p.read_record(), b"hello")
        p.write("gr\xfc\xdfe \U0001F600\n")
        self.assertEqual(p.read_record().decode(), "gr\xfc\xdfe \U0001F600")
        code, rest, err = p.finish()
        self.assertEqual((code, rest, err), (0, b"", ""))
        conn = self.server.connection(url)
        self.assertEqual(wait_closed(conn), 1000)
        self.assertEqual(conn.received, ["hello", "gr\xfc\xdfe \U0001F600"])

    def test_last_record_without_newline_is_sent_and_linger_waits_for_the_server(self):
        url = self.server.unique_url("linger")
        # The last record, sent at end of input, makes the server close: --linger keeps the
        # session open after end of input until then (its 60 s idle period never runs out here),
        # so the echoes of the earlier records are all printed first.
        code, out, err = run_cli(["cat", url, "--linger", "60"], self.daemon,
                                 input=b"one\ntwo\nclose-me")
        self.assertEqual(out, b"one\ntwo\n")
        self.assertEqual(code, 8, err)
        self.assertEqual(self.server.connection(url).received, ["one", "two", "close-me"])

    def test_one_mebibyte_text_line(self):
        url = self.server.unique_url("big-text")
        p = self.cat(url)
        line = ("0123456789abcdef" * (MIB // 16)).encode()
        p.write(line + b"\n")
        self.assertEqual(p.read_record(timeout=30), line)
        code, _, err = p.finish()
        self.assertEqual(code, 0, err)
        self.assertEqual(len(self.server.connection(url).received[0]), MIB)

    def test_binary_null_separated_records_print_as_hex(self):
        url = self.server.unique_url("bin-null")
        p = self.cat(url, "--binary", "--null")
        p.write(b"abc\0\xff\x01\n\0")
        self.assertEqual(p.read_record(b"\0"), b"616263")
        self.assertEqual(p.read_record(b"\0"), b"ff010a")
        code, _, err = p.finish()
        self.assertEqual(code, 0, err)
        self.assertEqual(self.server.connection(url).received, [b"abc", b"\xff\x01\n"])

    def test_binary_raw_one_mebibyte(self):
        url = self.server.unique_url("bin-raw")
        p = self.cat(url, "--binary", "--binary-output", "raw")
        data = pattern_bytes(MIB)
        # Written by a thread while the echoes are read here: neither pipe may fill up and stall
        # the other direction.
        writer = threading.Thread(target=p.write, args=(data,), daemon=True)
        writer.start()
        got = p.read_exactly(MIB, timeout=60)
        writer.join(20)
        self.assertEqual(got, data)
        code, rest, err = p.finish()
        self.assertEqual((code, rest), (0, b""), err)
        received = self.server.connection(url).received
        self.assertTrue(all(isinstance(m, bytes) for m in received))
        self.assertEqual(b"".join(received), data)

    def test_server_close_code_gives_exit_8(self):
        url = self.server.unique_url("close-me")
        p = self.cat(url)
        p.write("close-me\n")
        code, out, err = p.wait()
        self.assertEqual(code, 8, err)
        self.assertEqual(err, 'wsgate: closed by the server with 4000 "server closing"\n')

    def test_close_option_sends_code_and_reason(self):
        url = self.server.unique_url("close-opt")
        code, _, err = run_cli(["cat", url, "--close", "4001", "bye now"], self.daemon)
        self.assertEqual(code, 8, err)
        self.assertIn('closed with 4001 "bye now"', err)
        conn = self.server.connection(url)
        self.assertEqual(wait_closed(conn), 4001)
        self.assertEqual(conn.close_reason, "bye now")

    def test_close_option_1000_exits_0(self):
        url = self.server.unique_url("close-1000")
        code, _, err = run_cli(["cat", url, "--close", "1000"], self.daemon)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(wait_closed(self.server.connection(url)), 1000)

    def test_subprotocol_and_headers(self):
        url = self.server.unique_url("proto")
        p = self.cat(url, "--subprotocol", "chat.v1", "-H", "X-Token: abc",
                     "--header", "X-Other:2")
        p.write("x\n")
        self.assertEqual(p.read_record(), b"x")
        conn = self.server.connection(url)
        self.assertEqual(conn.subprotocol, "chat.v1")
        self.assertEqual(conn.request_headers["X-Token"], "abc")
        self.assertEqual(conn.request_headers["X-Other"], "2")
        self.assertEqual(p.finish()[0], 0)

    def test_sigint_aborts_with_130_and_upstream_sees_1001(self):
        url = self.server.unique_url("sigint")
        p = self.cat(url)
        p.write("x\n")
        self.assertEqual(p.read_record(), b"x")
        p.proc.send_signal(signal.SIGINT)
        code, _, err = p.wait()
        self.assertEqual(code, 130)
        self.assertEqual(err, "wsgate: interrupted\n")
        self.assertEqual(wait_closed(self.server.connection(url)), 1001)

    def test_closed_stdout_aborts_exit_1(self):
        url = self.server.unique_url("epipe")
        p = self.cat(url)
        p.write("one\n")
        self.assertEqual(p.read_record(), b"one")
        p.proc.stdout.close()  # as `wsgate cat URL | head -1` does once it has its line
        p.write("two\n")
        self.assertEqual(p.proc.wait(20), 1)
        self.assertEqual(p.proc.stderr.read(), b"wsgate: writing stdout: Broken pipe\n")
        self.assertEqual(wait_closed(self.server.connection(url)), 1001)

    def test_connection_lost_exit_9(self):
        server = EchoSubprocess().start()
        self.addCleanup(server.kill)
        p = self.cat(server.url)
        p.write("x\n")
        self.assertEqual(p.read_record(), b"x")
        server.kill()  # SIGKILL: the TCP connection ends without a close frame
        code, _, err = p.wait()
        self.assertEqual(code, 9, err)
        self.assertTrue(err.startswith("wsgate: connection lost (1006"), err)

    def test_connection_refused_exit_5(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        code, _, err = run_cli(["cat", "ws://127.0.0.1:%d/" % port], self.daemon)
        self.assertEqual(code, 5, err)
        self.assertRegex(err, r"^wsgate: connection refused: .*\n$")

    def test_unreachable_daemon_exit_3(self):
        missing = tempfile.mktemp(prefix="wsgate-none-", suffix=".sock")
        code, _, err = run_cli(["--address", "unix:" + missing, "cat", self.server.url])
        self.assertEqual(code, 3)
        self.assertTrue(err.startswith("wsgate: cannot reach wsgated at unix:" + missing), err)
        self.assertEqual(err.count("\n"), 1)

    def test_invalid_url_exit_7(self):
        code, _, err = run_cli(["cat", "http://127.0.0.1/"], self.daemon)
        self.assertEqual(code, 7, err)
        self.assertTrue(err.startswith("wsgate: bad request: "), err)


def refuse_403(conn):
    conn.read_request()
    conn.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def expect_two_pings_then_close(conn):
    conn.read_request()
    conn.send(conn.response_101())
    conn.result["opcodes"] = []
    for _ in range(2):
        fin, opcode, payload, masked = conn.read_frame()
        conn.result["opcodes"].append(opcode)
        conn.send(frame(0xA, payload))
    conn.send(frame(0x8, close_payload(1000, b"two pings seen")))
    conn.result["close_reply"] = conn.read_frame()[1]


class CatRawServerTest(DaemonTestCase):
    def test_refused_upgrade_exit_4_with_one_line(self):
        server = RawServer(refuse_403).start()
        self.addCleanup(server.stop)
        code, out, err = run_cli(["cat", server.url], self.daemon, input=b"never sent\n")
        self.assertEqual((code, out), (4, b""))
        self.assertEqual(err, "wsgate: upgrade refused: HTTP 403 Forbidden\n")

    def test_ping_interval_sends_pings(self):
        server = RawServer(expect_two_pings_then_close).start()
        self.addCleanup(server.stop)
        p = CatProcess([server.url, "--ping-interval", "0.05"], self.daemon)
        self.addCleanup(p.kill)
        conn = server.wait_connection()  # stdin stays open: only the pings make frames
        self.assertIsNone(conn.error)
        self.assertEqual(conn.result["opcodes"], [0x9, 0x9])
        self.assertEqual(conn.result["close_reply"], 0x8)
        code, out, err = p.wait()
        self.assertEqual((code, out, err), (0, b"", ""))


class CatTlsTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki_dir = tempfile.mkdtemp(prefix="wsgate-pki-")
        cls.pki = make_certs(cls.pki_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cls.pki["server.pem"], cls.pki["server.key"])
        cls.server = EchoServer(ssl_context=context).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
            shutil.rmtree(cls.pki_dir, ignore_errors=True)
        finally:
            super().tearDownClass()

    def test_test_ca_trusts_the_server(self):
        self.round_trip("--ca", self.pki["ca.pem"])

    def round_trip(self, *args):
        p = CatProcess([self.server.url] + list(args), self.daemon)
        self.addCleanup(p.kill)
        p.write("over tls\n")
        self.assertEqual(p.read_record(), b"over tls")
        self.assertEqual(p.finish(), (0, b"", ""))

    def test_wrong_name_exit_6(self):
        code, _, err = run_cli(["cat", self.server.url, "--ca", self.pki["ca.pem"],
                                "--server-name", "wrong.example"], self.daemon)
        self.assertEqual(code, 6, err)
        self.assertRegex(err, r"^wsgate: tls handshake failed: .*\n$")

    def test_untrusted_ca_exit_6(self):
        code, _, err = run_cli(["cat", self.server.url, "--ca", self.pki["other-ca.pem"]],
                               self.daemon)
        self.assertEqual(code, 6, err)

    def test_insecure_skips_verification(self):
        self.round_trip("--insecure")

    def test_unreadable_ca_file_is_a_usage_error(self):
        code, _, err = run_cli(["cat", self.server.url, "--ca", self.pki_dir + "/missing.pem"],
                               self.daemon)
        self.assertEqual(code, 2)
        self.assertIn("--ca", err)
        self.assertIn("usage: wsgate cat", err)


class ReadmeEchoServerTest(DaemonTestCase):
    """README's "Trying it": scripts/echo-server.py, then wsgate cat and wsgate sessions."""

    def test_echo_server_script_with_wsgate_cat(self):
        script = os.path.join(REPO, "scripts", "echo-server.py")
        server = subprocess.Popen(["/usr/bin/python3", script, "--port", "0"],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: (server.kill(), server.wait(10), server.stdout.close()))
        ready, _, _ = select.select([server.stdout], [], [], 15)
        self.assertTrue(ready, "scripts/echo-server.py printed nothing within 15 s")
        line = server.stdout.readline().decode()
        self.assertRegex(line, r"^listening on ws://127\.0\.0\.1:\d+/\n$")
        url = line.split()[-1]
        p = CatProcess([url], self.daemon)
        self.addCleanup(p.kill)
        p.write("hello\n")
        self.assertEqual(p.read_record(), b"hello")
        code, out, _ = run_cli(["sessions"], self.daemon)
        self.assertEqual(code, 0)
        self.assertIn(url, out.decode())
        self.assertEqual(p.finish(), (0, b"", ""))

    def test_readme_python_snippet(self):
        """The README's Python snippet, pointed at this test's daemon, server and stubs."""
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        section = readme.split("### Trying it", 1)[1].split("\n## ", 1)[0]
        snippet = section.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
        self.assertIn("/usr/bin/python3 scripts/echo-server.py --port 8765", section)
        server = EchoServer().start()
        self.addCleanup(server.stop)
        snippet = (snippet.replace("ws://127.0.0.1:8765/", server.url)
                   .replace("unix:/tmp/wsgated.sock", "unix:" + self.daemon.socket_path)
                   .replace('"build/proto/python"', repr(PROTO_PYTHON)))
        r = subprocess.run(["/usr/bin/python3", "-c", snippet], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn('data: "hello"', out)
        self.assertIn("code: 1000", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
