"""Starts wsgated for the daemon tests and talks to it over gRPC.

Environment (set by tests/daemon/CMakeLists.txt; for manual runs the newest build-*/ directory
of the repository is used when unset):
    WSGATED              the wsgated binary
    WSGATE_PROTO_PYTHON  the generated Python stubs (build-*/proto/python)

Daemon: a wsgated process on a unix socket in a fresh temporary directory, with a generated TOML
configuration. start() waits (with a deadline) until the socket accepts connections and the gRPC
channel is ready; stop() sends SIGTERM and returns the exit code. The daemon's log (stderr) goes
to a file; log_text() reads it.

Session: one Gateway.Connect stream. Client messages are queued (the request iterator reads the
queue), server messages are read by a thread into an inbox; every wait has a timeout.
"""
import glob
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _newest(pattern):
    found = [p for p in glob.glob(os.path.join(REPO, pattern)) if os.path.exists(p)]
    return max(found, key=os.path.getmtime) if found else None


WSGATED = os.environ.get("WSGATED") or _newest("build*/service/daemon/wsgated")
PROTO_PYTHON = os.environ.get("WSGATE_PROTO_PYTHON") or _newest("build*/proto/python")
if not WSGATED or not os.access(WSGATED, os.X_OK):
    raise RuntimeError("wsgated not found: set WSGATED (got %r)" % WSGATED)
if not PROTO_PYTHON or not os.path.isdir(os.path.join(PROTO_PYTHON, "wsgate", "v1")):
    raise RuntimeError("Python stubs not found: set WSGATE_PROTO_PYTHON (got %r)" % PROTO_PYTHON)
if PROTO_PYTHON not in sys.path:
    sys.path.insert(0, PROTO_PYTHON)

import grpc  # noqa: E402
from google.rpc import status_pb2  # noqa: E402
from certs import make_certs  # noqa: E402
from servers import EchoServer  # noqa: E402
from wsgate.v1 import (  # noqa: E402,F401
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    gateway_pb2,
    gateway_pb2_grpc,
    protocol_component_pb2,
    protocol_component_pb2_grpc,
)

# Every wait in these tests is bounded by one of these.
START_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0
RECV_TIMEOUT = 15.0


def sanitized(path=None):
    """Is the binary (wsgated by default) built with ASan or TSan?"""
    with open(path or WSGATED, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def wait_for(condition, timeout, interval=0.01, what="condition"):
    """Polls condition() until it returns a true value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)  # polling interval of a deadline-bounded wait


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError("no TOML for %r" % (v,))


def make_config(sections):
    """{"limits": {"max_sessions": 1}, ...} -> TOML text. Top-level keys go in section None."""
    lines = []
    for key, value in (sections.get(None) or {}).items():
        lines.append("%s = %s" % (key, toml_value(value)))
    for name, values in sections.items():
        if name is None:
            continue
        lines.append("[%s]" % name)
        for key, value in values.items():
            lines.append("%s = %s" % (key, toml_value(value)))
    return "\n".join(lines) + "\n"


def _merge(base, extra):
    out = {k: dict(v) for k, v in base.items()}
    for section, values in (extra or {}).items():
        out.setdefault(section, {}).update(values)
    return out


class Daemon:
    DEFAULTS = {
        "log": {"level": "info"},
        "timeouts": {"drain_ms": 8000, "close_ms": 3000},
    }

    # The daemon reads these (HTTP CONNECT proxy, service/net/http_proxy.h): the tests' own
    # environment must not send their sessions through the machine's proxy.
    PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                       "ALL_PROXY", "no_proxy", "NO_PROXY")

    def __init__(self, config=None, log_level=None, preexec_fn=None, env=None):
        """preexec_fn: run in the child before exec (e.g. to set a resource limit). env: extra
        environment variables of the daemon (the proxy variables are otherwise unset)."""
        self.config = _merge(self.DEFAULTS, config)
        self.preexec_fn = preexec_fn
        self.env = {k: v for k, v in os.environ.items() if k not in self.PROXY_VARIABLES}
        self.env.update(env or {})
        if log_level:
            self.config["log"]["level"] = log_level
        self.dir = tempfile.mkdtemp(prefix="wsgd-")
        self.socket_path = os.path.join(self.dir, "gw.sock")
        self.config_path = os.path.join(self.dir, "wsgated.toml")
        self.log_path = os.path.join(self.dir, "wsgated.log")
        self.proc = None
        self.channel = None
        self.exit_code = None

    # --- lifetime --------------------------------------------------------------------------

    def start(self):
        with open(self.config_path, "w") as f:
            f.write(make_config(self.config))
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [WSGATED, "--config", self.config_path, "--socket", self.socket_path],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            preexec_fn=self.preexec_fn, env=self.env)
        try:
            wait_for(self._socket_accepts, START_TIMEOUT, what="wsgated's socket")
            self.channel = self.new_channel()
            grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT)
        except BaseException:
            self.kill()
            raise
        return self

    def new_channel(self, extra_options=()):
        """A channel to the daemon's socket with the tests' message-size limits (64 MiB each
        way) and `extra_options` (gRPC channel arguments); the caller closes it."""
        return grpc.insecure_channel(
            "unix:" + self.socket_path,
            options=[("grpc.max_receive_message_length", 64 << 20),
                     ("grpc.max_send_message_length", 64 << 20), *extra_options])

    def _socket_accepts(self):
        if self.proc.poll() is not None:
            raise AssertionError("wsgated exited with %s during start-up:\n%s"
                                 % (self.proc.returncode, self.log_text()))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(1.0)
            s.connect(self.socket_path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for the process to exit; returns the exit code."""
        self.exit_code = self.proc.wait(timeout=timeout)
        return self.exit_code

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; returns the exit code (the caller asserts it)."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.wait(timeout)
        finally:
            self._cleanup()
        return code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._cleanup()

    def _cleanup(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        try:
            self._log_file.close()
        except Exception:
            pass

    def remove_files(self):
        """Removes the temporary directory, unless WSGATE_TEST_KEEP_LOGS is set."""
        if os.environ.get("WSGATE_TEST_KEEP_LOGS"):
            sys.stderr.write("wsgated log kept in %s\n" % self.log_path)
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- inspection --------------------------------------------------------------------------

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return "\n--- wsgated log (tail) ---\n" + "\n".join(self.log_text().splitlines()[-lines:])

    # --- stubs -------------------------------------------------------------------------------

    def gateway(self):
        return gateway_pb2_grpc.GatewayStub(self.channel)

    def admin(self):
        return admin_pb2_grpc.AdminStub(self.channel)

    def protocol_component(self):
        return protocol_component_pb2_grpc.ProtocolComponentStub(self.channel)

    def session(self, timeout=90):
        return Session(self.gateway(), timeout=timeout)

    def health(self, service="", timeout=5):
        """grpc.health.v1.Health/Check with hand-encoded bytes; returns the status number
        (1 = SERVING, 2 = NOT_SERVING)."""
        request = b""
        if service:
            data = service.encode()
            request = b"\x0a" + encode_varint(len(data)) + data
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check")
        response = check(request, timeout=timeout)
        fields = parse_fields(response)
        return fields.get(1, 0)


# --- tiny protobuf wire helpers (for the health check) ----------------------------------------

def encode_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def parse_fields(data):
    """Varint fields of a protobuf message: {field number: value}."""
    fields, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], i = _read_varint(data, i)
        elif wire == 2:
            length, i = _read_varint(data, i)
            fields[number] = data[i:i + length]
            i += length
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return fields


def _read_varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


SERVING = 1


# --- error details ------------------------------------------------------------------------------

def error_detail_from_trailers(trailers):
    """The wsgate.v1.ErrorDetail in 'grpc-status-details-bin', or None."""
    for key, value in trailers or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            if not status.details:
                return None
            detail = common_pb2.ErrorDetail()
            if not status.details[0].Unpack(detail):
                raise AssertionError("details[0] is %s, not an ErrorDetail"
                                     % status.details[0].type_url)
            return detail
    return None


def rpc_error_detail(error):
    """The ErrorDetail of a grpc.RpcError raised by a unary call."""
    return error_detail_from_trailers(error.trailing_metadata())


# --- Gateway sessions ---------------------------------------------------------------------------

_END = object()


class Session:
    """One Gateway.Connect stream driven from the test thread."""

    def __init__(self, stub, timeout=90):
        self._requests = queue.Queue()
        self.inbox = queue.Queue()
        self.done = threading.Event()
        self.code = None
        self.details = None
        self.trailers = None
        self.ended = False
        self.call = stub.Connect(self._request_iterator(), timeout=timeout)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _request_iterator(self):
        while True:
            message = self._requests.get()
            if message is None:
                return
            yield message

    def _read(self):
        try:
            for message in self.call:
                self.inbox.put(message)
        except grpc.RpcError:
            pass
        finally:
            try:
                self.code = self.call.code()
                self.details = self.call.details()
                self.trailers = self.call.trailing_metadata()
            finally:
                self.done.set()
                self.inbox.put(_END)

    # --- sending -----------------------------------------------------------------------------

    def send(self, message):
        self._requests.put(message)

    def send_open(self, url, **kwargs):
        self.send(gateway_pb2.ClientMessage(open=gateway_pb2.Open(url=url, **kwargs)))

    def send_text(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.send(gateway_pb2.ClientMessage(text=data))

    def send_binary(self, data):
        self.send(gateway_pb2.ClientMessage(binary=data))

    def send_fragment(self, data, text=False, final=False):
        if isinstance(data, str):
            data = data.encode()
        self.send(gateway_pb2.ClientMessage(
            fragment=gateway_pb2.Fragment(text=text, data=data, final=final)))

    def send_ping(self):
        self.send(gateway_pb2.ClientMessage(ping=gateway_pb2.Ping()))

    def send_close(self, code, reason=""):
        self.send(gateway_pb2.ClientMessage(close=gateway_pb2.Close(code=code, reason=reason)))

    def end(self):
        """Half-closes the request stream (no more client messages)."""
        if not self.ended:
            self.ended = True
            self._requests.put(None)

    # --- receiving ---------------------------------------------------------------------------

    def recv(self, timeout=RECV_TIMEOUT):
        """The next ServerMessage, or None once the stream has ended."""
        try:
            item = self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no ServerMessage within %.1f s" % timeout) from None
        if item is _END:
            self.inbox.put(_END)  # later calls see the end too
            return None
        return item

    def recv_kind(self, kind, timeout=RECV_TIMEOUT):
        """The next ServerMessage, which must be of `kind` ("message", "closed"...)."""
        m = self.recv(timeout)
        if m is None:
            raise AssertionError("stream ended (%s: %s) while waiting for %s"
                                 % (self.code, self.details, kind))
        if m.WhichOneof("kind") != kind:
            raise AssertionError("expected %s, got %s" % (kind, m))
        return getattr(m, kind)

    def open(self, url, timeout=RECV_TIMEOUT, **kwargs):
        """Sends open and returns the `opened` message (fails on anything else)."""
        self.send_open(url, **kwargs)
        m = self.recv(timeout)
        if m is None or m.WhichOneof("kind") != "opened":
            self.wait_done(timeout)
            raise AssertionError("open %s failed: %s / %s %s" % (url, m, self.code, self.details))
        return m.opened

    def wait_done(self, timeout=RECV_TIMEOUT):
        if not self.done.wait(timeout):
            raise AssertionError("the stream did not end within %.1f s" % timeout)
        return self.code

    def error_detail(self):
        return error_detail_from_trailers(self.trailers)

    def expect_failure(self, code, cause=None, timeout=RECV_TIMEOUT):
        """The stream must end with `code`, preceded by an in-band `error` message whose
        detail equals the trailer's. Returns the detail."""
        m = self.recv(timeout)
        if m is None or m.WhichOneof("kind") != "error":
            raise AssertionError("expected an error message, got %s (status %s %s)"
                                 % (m, self.code, self.details))
        self.wait_done(timeout)
        if self.code != code:
            raise AssertionError("status %s (%s), expected %s" % (self.code, self.details, code))
        if m.error.code != code.name:
            raise AssertionError("in-band error code %s, expected %s" % (m.error.code, code.name))
        detail = self.error_detail()
        if detail is None:
            raise AssertionError("no ErrorDetail in the trailers: %s" % (self.trailers,))
        if detail != m.error.detail:
            raise AssertionError("trailer detail %s differs from in-band detail %s"
                                 % (detail, m.error.detail))
        if cause is not None and detail.cause != cause:
            raise AssertionError("cause %r, expected %r (%s)" % (detail.cause, cause, self.details))
        return detail

    def cleanup(self):
        self.end()
        if not self.done.wait(0):
            self.call.cancel()
        self.done.wait(5)


class DaemonTestCase(unittest.TestCase):
    """One daemon per test class (CONFIG: extra configuration); stopped with SIGTERM in
    tearDownClass, which asserts exit code 0."""

    CONFIG = None
    LOG_LEVEL = None
    ENV = None  # extra environment variables of the daemon

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = Daemon(cls.CONFIG, cls.LOG_LEVEL, env=cls.ENV).start()

    @classmethod
    def tearDownClass(cls):
        daemon = cls.daemon
        try:
            code = daemon.stop()
            if code != 0:
                raise AssertionError("wsgated exited with %s after SIGTERM%s"
                                     % (code, daemon.log_tail()))
        finally:
            daemon.remove_files()
            super().tearDownClass()

    def setUp(self):
        self._sessions = []
        self.assertIsNone(self.daemon.proc.poll(), "wsgated is not running" + self.daemon.log_tail())

    def tearDown(self):
        for s in self._sessions:
            s.cleanup()

    def session(self, daemon=None, timeout=90):
        s = (daemon or self.daemon).session(timeout=timeout)
        self._sessions.append(s)
        return s

    def open_session(self, url, daemon=None, **kwargs):
        s = self.session(daemon)
        opened = s.open(url, **kwargs)
        return s, opened

    def assert_alive_and_serving(self, daemon=None):
        daemon = daemon or self.daemon
        self.assertIsNone(daemon.proc.poll(), "wsgated died" + daemon.log_tail())
        self.assertEqual(daemon.health(), SERVING)


class EchoServerTestCase(DaemonTestCase):
    """DaemonTestCase plus one EchoServer (servers.py) per test class, as cls.server, made with
    ECHO_SERVER_OPTIONS (keyword arguments of EchoServer)."""

    ECHO_SERVER_OPTIONS = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = EchoServer(**cls.ECHO_SERVER_OPTIONS).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            super().tearDownClass()


class TlsEchoServerTestCase(DaemonTestCase):
    """DaemonTestCase plus a TLS EchoServer (cls.server) with a certificate of a test CA made by
    the openssl CLI (certs.py): cls.pki (paths), cls.ca_pem, cls.other_ca_pem. TLS_MAX_VERSION
    (an ssl.TLSVersion) caps the server's protocol version; configure() runs before the daemon
    starts (e.g. to set CONFIG from the PKI)."""

    TLS_MAX_VERSION = None

    @classmethod
    def setUpClass(cls):
        cls.pki_dir = tempfile.mkdtemp(prefix="wsgate-pki-")
        cls.pki = make_certs(cls.pki_dir)
        with open(cls.pki["ca.pem"], "rb") as f:
            cls.ca_pem = f.read()
        with open(cls.pki["other-ca.pem"], "rb") as f:
            cls.other_ca_pem = f.read()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cls.pki["server.pem"], cls.pki["server.key"])
        if cls.TLS_MAX_VERSION is not None:
            context.maximum_version = cls.TLS_MAX_VERSION
        cls.server = EchoServer(ssl_context=context).start()
        cls.configure()
        super().setUpClass()

    @classmethod
    def configure(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.server.stop()
            shutil.rmtree(cls.pki_dir, ignore_errors=True)
