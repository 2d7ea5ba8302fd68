"""Gateway sessions through an HTTP CONNECT proxy: a real tinyproxy (Debian's package) started by
the tests on 127.0.0.1 with a generated configuration, plus a proxy that accepts and never
answers, scripted proxies (bytes after the 200, an endless head) and a closed port. ws:// and
wss:// echo through the tunnel (TLS verified against the target host), refusals (403),
authentication (407 without credentials, success with them), timeouts, unreachable proxies,
Open.proxy ("direct" and per-session URLs), the destination policy, and the proxy environment
variables with curl's conventions (NO_PROXY bypass, upper-case HTTP_PROXY ignored,
proxy.from_environment = false)."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

import grpc

from certs import make_certs
from daemon_fixture import DaemonTestCase, gateway_pb2, wait_for
from servers import EchoServer

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
CONNECT_LINE = re.compile(r"Request \(file descriptor \d+\): CONNECT (\S+) HTTP/1\.1")


def closed_port():
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyProxy:
    """tinyproxy in the foreground with its own configuration, pid and log files in a temporary
    directory. `extra`: more configuration lines (ConnectPort, BasicAuth...)."""

    def __init__(self, extra=()):
        self.dir = tempfile.mkdtemp(prefix="wsgate-tinyproxy-")
        self.log_path = os.path.join(self.dir, "tinyproxy.log")
        self.extra = list(extra)
        self.port = None
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        # A free port: tinyproxy cannot be told to pick one. Another process could take it in
        # between, so a start that does not come up is retried on a new port.
        for _ in range(3):
            self.port = closed_port()
            conf = os.path.join(self.dir, "tinyproxy.conf")
            with open(conf, "w") as f:
                f.write("\n".join([
                    "Port %d" % self.port,
                    "Listen 127.0.0.1",
                    "Timeout 30",
                    'LogFile "%s"' % self.log_path,
                    'PidFile "%s"' % os.path.join(self.dir, "tinyproxy.pid"),
                    "LogLevel Connect",
                    "MaxClients 50",
                    "Allow 127.0.0.1",
                ] + self.extra) + "\n")
            self.proc = subprocess.Popen([TINYPROXY, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for(self._accepts, 10, what="tinyproxy on port %d" % self.port)
                return self
            except AssertionError:
                self.stop(remove=False)
        raise AssertionError("tinyproxy did not start: " + self.log())

    def _accepts(self):
        if self.proc.poll() is not None:
            raise AssertionError("tinyproxy exited with %s: %s" % (self.proc.returncode,
                                                                   self.log()))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def connects(self):
        """The targets of the CONNECT requests tinyproxy logged, in order."""
        return CONNECT_LINE.findall(self.log())

    def stop(self, remove=True):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


class SilentProxy:
    """Accepts connections, reads what comes, never answers; stop() closes everything."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.accepted = threading.Event()
        self.connections = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _run(self):
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections.append(conn)
            self.accepted.set()

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        for c in self.connections:
            c.close()
        self.listener.close()


class ScriptedProxy(SilentProxy):
    """Reads each CONNECT request head, answers `reply` and keeps the connection open."""

    def __init__(self, reply):
        self.reply = reply
        super().__init__()

    def _run(self):
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections.append(conn)
            conn.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                conn.sendall(self.reply)
            except OSError:
                pass
            self.accepted.set()


class ProxyTestBase(DaemonTestCase):
    """Echo servers (ws:// and wss://, a test CA's certificate for 127.0.0.1 and localhost) and
    tinyproxy instances, made before the daemon starts (configure() sets CONFIG/ENV from them)."""

    @classmethod
    def setUpClass(cls):
        cls.pki_dir = tempfile.mkdtemp(prefix="wsgate-pki-")
        cls.pki = make_certs(cls.pki_dir)
        with open(cls.pki["ca.pem"], "rb") as f:
            cls.ca_pem = f.read()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cls.pki["server.pem"], cls.pki["server.key"])
        cls.ws = EchoServer().start()
        cls.wss = EchoServer(ssl_context=context).start()
        cls.proxy = TinyProxy().start()
        cls.configure()
        try:
            super().setUpClass()
        except BaseException:
            cls._stop_servers()
            raise

    @classmethod
    def configure(cls):
        pass

    @classmethod
    def _stop_servers(cls):
        cls.proxy.stop()
        cls.ws.stop()
        cls.wss.stop()
        shutil.rmtree(cls.pki_dir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._stop_servers()

    def echo(self, url, **open_kwargs):
        if url.startswith("wss:"):
            open_kwargs.setdefault("tls", gateway_pb2.TlsOptions(ca_pem=self.ca_pem))
        s, opened = self.open_session(url, **open_kwargs)
        self.assertEqual(opened.http_status, 101)
        s.send_text("through")
        self.assertEqual(s.recv_kind("message").data, b"through")
        s.send_close(1000)
        self.assertEqual(s.recv_kind("closed").code, 1000)
        self.assertEqual(s.wait_done(), grpc.StatusCode.OK)

    def failure(self, url, code, cause, **open_kwargs):
        s = self.session()
        s.send_open(url, **open_kwargs)
        return s.expect_failure(code, cause)

    @staticmethod
    def authority(url):
        return url.split("://", 1)[1].split("/", 1)[0]


class ConfiguredProxyTest(ProxyTestBase):
    """proxy.url from the configuration, per-session proxies allowed; a policy with a denied
    host and address."""

    @classmethod
    def configure(cls):
        cls.refusing = TinyProxy(["ConnectPort 1"]).start()  # any other port: 403
        cls.auth = TinyProxy(["BasicAuth wsuser s3cret-pw"]).start()
        cls.silent = SilentProxy()
        cls.CONFIG = {
            "proxy": {"url": cls.proxy.url, "allow_session_proxies": True},
            "policy": {"deny_hosts": ["denied.example", "denied-proxy.example"],
                       "deny_cidrs": ["127.0.0.2/32"]},
        }
        cls.LOG_LEVEL = "debug"

    @classmethod
    def _stop_servers(cls):
        for p in (cls.refusing, cls.auth, cls.silent):
            p.stop()
        super()._stop_servers()

    def test_ws_echo_through_the_proxy(self):
        self.echo(self.ws.url)
        self.assertIn(self.authority(self.ws.url), self.proxy.connects())

    def test_wss_echo_through_the_tunnel_verifies_the_target(self):
        # TLS runs end to end through the tunnel: SNI and the certificate check name the target.
        url = self.wss.url.replace("127.0.0.1", "localhost")
        self.echo(url)
        self.assertIn(self.authority(url), self.proxy.connects())
        detail = self.failure(self.wss.url, grpc.StatusCode.UNAVAILABLE, "tls_handshake_failed",
                              tls=gateway_pb2.TlsOptions(ca_pem=self.ca_pem,
                                                           server_name="wrong.example"))
        self.assertEqual(detail.http_status, 0)

    def test_direct_bypasses_the_proxy(self):
        before = len(self.proxy.connects())
        self.echo(self.ws.url, proxy="direct")
        self.echo(self.wss.url, proxy="DIRECT")
        self.assertEqual(len(self.proxy.connects()), before)

    def test_session_proxy_url(self):
        other = TinyProxy().start()
        try:
            self.echo(self.wss.url, proxy=other.url)
            self.assertEqual(other.connects(), [self.authority(self.wss.url)])
        finally:
            other.stop()

    def test_refusal_carries_the_proxys_status(self):
        detail = self.failure(self.ws.url, grpc.StatusCode.PERMISSION_DENIED, "proxy_refused",
                              proxy=self.refusing.url)
        self.assertEqual(detail.http_status, 403)
        s = self._sessions[-1]
        self.assertIn("refused CONNECT 127.0.0.1:%d: 403" % self.ws.port, s.details)
        self.assertIn(self.authority(self.ws.url), self.refusing.connects())

    def test_auth_required_then_credentials(self):
        detail = self.failure(self.ws.url, grpc.StatusCode.UNAUTHENTICATED, "proxy_auth_required",
                              proxy=self.auth.url)
        self.assertEqual(detail.http_status, 407)
        self.assertIn("no credentials were sent", self._sessions[-1].details)
        wrong = self.auth.url.replace("http://", "http://wsuser:wrong@")
        self.failure(self.ws.url, grpc.StatusCode.UNAUTHENTICATED, "proxy_auth_required",
                     proxy=wrong)
        self.assertIn("credentials sent were refused", self._sessions[-1].details)
        # Percent-encoded user info works: "s3cret-pw" with its '-' escaped.
        good = self.auth.url.replace("http://", "http://wsuser:s3cret%2Dpw@")
        self.echo(self.ws.url, proxy=good)
        self.echo(self.wss.url, proxy=good)
        # The credentials never reach the daemon's log (debug level).
        log = self.daemon.log_text()
        self.assertNotIn("s3cret", log)
        self.assertNotIn("d3N1c2VyOnMzY3JldC1wdw", log)  # base64("wsuser:s3cret-pw")

    def test_proxy_that_never_answers_times_out(self):
        detail = self.failure(self.ws.url, grpc.StatusCode.DEADLINE_EXCEEDED, "proxy_timeout",
                              proxy=self.silent.url, timeouts=gateway_pb2.Timeouts(connect_ms=400))
        self.assertTrue(self.silent.accepted.is_set())
        self.assertIn("did not answer CONNECT", self._sessions[-1].details)
        self.assertEqual(detail.http_status, 0)

    def test_bytes_after_the_200_are_refused(self):
        # A CONNECT tunnel carries nothing before the client speaks: these bytes mean the peer
        # is not a CONNECT proxy, and they are never handed to TLS or the upgrade.
        proxy = ScriptedProxy(b"HTTP/1.1 200 Connection established\r\n\r\n"
                              b"HTTP/1.1 101 x\r\n\r\n")
        try:
            self.failure(self.ws.url, grpc.StatusCode.UNAVAILABLE, "proxy_connect_failed",
                         proxy=proxy.url)
            self.assertIn("bytes after its 200 answer to CONNECT", self._sessions[-1].details)
        finally:
            proxy.stop()

    def test_endless_answer_head_is_bounded(self):
        # limits.max_header_bytes (16 KiB) bounds the answer: an endless head is refused at once.
        proxy = ScriptedProxy(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 40000 + b"\r\n")
        try:
            self.failure(self.ws.url, grpc.StatusCode.UNAVAILABLE, "proxy_connect_failed",
                         proxy=proxy.url)
            self.assertIn("exceeds 16384 bytes", self._sessions[-1].details)
        finally:
            proxy.stop()

    def test_closed_port_is_proxy_connect_failed(self):
        self.failure(self.ws.url, grpc.StatusCode.UNAVAILABLE, "proxy_connect_failed",
                     proxy="http://127.0.0.1:%d" % closed_port())
        self.assertIn("cannot connect to the HTTP proxy", self._sessions[-1].details)

    def test_bad_proxy_urls_are_invalid_argument(self):
        for proxy, words in (("https://127.0.0.1:3128", "https:// proxies"),
                             ("socks5://127.0.0.1:1080", "SOCKS proxies are not supported"),
                             ("http://127.0.0.1:3128/path", "no path")):
            self.failure(self.ws.url, grpc.StatusCode.INVALID_ARGUMENT, "bad_request", proxy=proxy)
            self.assertIn("open.proxy: ", self._sessions[-1].details)
            self.assertIn(words, self._sessions[-1].details)

    def test_policy_judges_the_target_and_a_session_proxy(self):
        before = len(self.proxy.connects())
        # The target's name, before anything is sent to the proxy.
        self.failure("ws://denied.example/", grpc.StatusCode.PERMISSION_DENIED,
                     "destination_denied")
        # An IP-literal target's address.
        self.failure("ws://127.0.0.2:%d/" % self.ws.port, grpc.StatusCode.PERMISSION_DENIED,
                     "destination_denied")
        self.assertEqual(len(self.proxy.connects()), before)
        # A proxy a session names passes the policy like any destination (name and address).
        self.failure(self.ws.url, grpc.StatusCode.PERMISSION_DENIED, "destination_denied",
                     proxy="http://denied-proxy.example:3128")
        self.assertIn("the proxy: ", self._sessions[-1].details)
        self.failure(self.ws.url, grpc.StatusCode.PERMISSION_DENIED, "destination_denied",
                     proxy="http://127.0.0.2:%d" % self.proxy.port)
        self.assertEqual(len(self.proxy.connects()), before)

    def test_start_up_log_names_the_proxy(self):
        self.assertIn("HTTP proxy: ws:// http://127.0.0.1:%d (proxy.url)" % self.proxy.port,
                      self.daemon.log_text())


class SessionProxiesDisabledTest(ProxyTestBase):
    """The default: Open.proxy may say "direct" but not name a proxy."""

    def test_session_proxy_is_permission_denied(self):
        self.failure(self.ws.url, grpc.StatusCode.PERMISSION_DENIED, "bad_request",
                     proxy=self.proxy.url)
        self.assertIn("proxy.allow_session_proxies", self._sessions[-1].details)
        self.echo(self.ws.url, proxy="direct")
        self.assertEqual(self.proxy.connects(), [])


class EnvironmentProxyTest(ProxyTestBase):
    """http_proxy (ws://), HTTPS_PROXY (wss://) and NO_PROXY on the daemon's environment."""

    @classmethod
    def configure(cls):
        cls.ENV = {"http_proxy": cls.proxy.url, "HTTPS_PROXY": cls.proxy.url,
                   "NO_PROXY": "localhost"}

    def test_ws_and_wss_go_through_the_environments_proxy(self):
        self.echo(self.ws.url)
        self.echo(self.wss.url)
        connects = self.proxy.connects()
        self.assertIn(self.authority(self.ws.url), connects)
        self.assertIn(self.authority(self.wss.url), connects)

    def test_no_proxy_bypass(self):
        before = len(self.proxy.connects())
        self.echo(self.ws.url.replace("127.0.0.1", "localhost"))
        self.echo(self.wss.url.replace("127.0.0.1", "localhost"))
        self.assertEqual(len(self.proxy.connects()), before)

    def test_start_up_log_names_the_variables(self):
        log = self.daemon.log_text()
        self.assertIn("(http_proxy)", log)
        self.assertIn("(HTTPS_PROXY)", log)
        self.assertIn("(NO_PROXY)", log)


class EnvironmentIgnoredTest(ProxyTestBase):
    """Upper-case HTTP_PROXY is ignored (curl's rule); proxy.from_environment = false ignores the
    rest. Both point at a closed port, so a session that used them would fail."""

    @classmethod
    def configure(cls):
        dead = "http://127.0.0.1:%d" % closed_port()
        cls.ENV = {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead}
        cls.CONFIG = {"proxy": {"from_environment": False}}

    def test_sessions_go_direct(self):
        self.echo(self.ws.url)
        self.echo(self.wss.url)
        self.assertIn("HTTP proxy: ws:// direct, wss:// direct", self.daemon.log_text())


class UpperCaseHttpProxyTest(ProxyTestBase):
    """With the environment read, HTTP_PROXY alone still leaves ws:// direct."""

    @classmethod
    def configure(cls):
        cls.ENV = {"HTTP_PROXY": "http://127.0.0.1:%d" % closed_port()}

    def test_ws_goes_direct(self):
        self.echo(self.ws.url)


if __name__ == "__main__":
    unittest.main()
